"""The FastAPI application factory. Nothing connects at import time:

    uvicorn api.main:create_app --factory

Start-up migrates the database, makes the engine, tries Temporal once (briefly; a background task
keeps trying, so the API accepts inquiries while Temporal is down) and starts the relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from activities.channels import build_provider
from activities.messaging import Messaging
from api.cors import CodecCORS
from api.errors import validation_error_handler
from api.followups import run_direct_sender_forever
from api.metrics import RequestMetrics
from api.middleware import BodySizeLimit, ErrorShield
from api.ratelimit import TokenBucketLimiter
from api.relay import Relay
from api.routers import (
    api_keys,
    audit,
    codec,
    emr_webhooks,
    funnel,
    health,
    inquiries,
    integrations,
    journeys,
    library,
    metrics,
    patients,
    practices,
    web_chat,
    webhooks,
)
from api.routers.funnel import IMPORTS_PATH
from api.temporal import TemporalConnection
from runtime.db import make_engine
from runtime.logs import configure_logging
from runtime.migrate import upgrade
from runtime.settings import Settings, get_settings
from runtime.temporal_client import payload_codec


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    await asyncio.to_thread(upgrade, settings.database_url)
    engine = make_engine(settings.database_url)
    temporal = TemporalConnection(settings)
    await temporal.start()
    relay = Relay(engine, temporal, settings)
    # The API's own door to the send gate: answers to HELP/STOP/START, missed-call text-backs
    # and staff replies. Same providers as the worker's (outbox without credentials).
    app.state.messaging = Messaging(
        engine, build_provider(settings, engine), daily_cap=settings.daily_message_cap
    )
    app.state.engine = engine
    app.state.temporal = temporal
    app.state.relay = relay
    relay_task = asyncio.create_task(relay.run_forever(), name="relay")
    sender_task = asyncio.create_task(
        run_direct_sender_forever(app.state.messaging, engine, settings.relay_interval_seconds),
        name="direct-sender",
    )
    try:
        yield
    finally:
        for task in (relay_task, sender_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await temporal.close()
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Patient journeys",
        version="1",
        description="Leads to booked, treated and returning patients (DESIGN §7).",
        lifespan=lifespan,
    )
    app.state.settings = settings = settings or get_settings()
    if settings.log_format == "json":
        # uvicorn set up its text logging before calling the factory: JSON replaces it.
        configure_logging("json")
    # The codec server's codec (None without PAYLOAD_ENCRYPTION_KEYS); keys parsed once here.
    app.state.codec = payload_codec(settings)
    app.state.inquiry_limiters = {
        "key": TokenBucketLimiter(settings.inquiry_rate_per_key_per_minute),
        "ip": TokenBucketLimiter(settings.inquiry_rate_per_ip_per_minute),
    }
    app.state.web_chat_limiter = TokenBucketLimiter(settings.web_chat_rate_per_ip_per_minute)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    # Added later = further out. The size limit sees the raw request before the app does; CORS
    # (for /codec only) is outermost so even a 413 or 500 reaches the Temporal UI readable.
    app.add_middleware(ErrorShield)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        overrides=((IMPORTS_PATH, settings.import_max_bytes),),
    )
    app.add_middleware(CodecCORS, origins=app.state.settings.ui_origins)
    # Outermost: counts every answer by route template and status (api/metrics.py).
    app.add_middleware(RequestMetrics)
    for module in (
        health,
        metrics,
        practices,
        api_keys,
        inquiries,
        journeys,
        patients,
        audit,
        codec,
        library,
        integrations,
        emr_webhooks,
        webhooks,
        web_chat,
        funnel,
    ):
        app.include_router(module.router)
    return app
