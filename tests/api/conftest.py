"""API test harness: the real app (lifespan and all) over httpx's ASGI transport, a real Temporal
dev server (session-wide), the real worker in-process on a task queue of its own, and a real
database (an SQLite file, or the shared throwaway PostgreSQL database of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, func, select
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from runtime.db import make_engine
from runtime.processes import search_attribute_args
from runtime.settings import Settings
from runtime.temporal_client import data_converter
from tests.conftest import TEMPORAL_CLI, TEST_PAYLOAD_KEYS, encrypted_settings
from worker import build_worker

T = TypeVar("T")
ADMIN_KEY = "test-admin-key-0123456789abcdef"
POLL_TIMEOUT_S = 20.0


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, within: float = POLL_TIMEOUT_S
) -> T:
    """Poll `probe` with short awaits until it returns something truthy (bounded, no long sleep)."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal CLI dev server from the venv (never downloaded), with our search attributes."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        ui=False,
        data_converter=data_converter(encrypted_settings()),
        dev_server_extra_args=search_attribute_args(),
    ) as env:
        yield env


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@dataclass
class Tenant:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Api:
    """One running app plus helpers; `engine` is the test's own view of the app's database."""

    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings
    engine: Engine
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN_KEY}"})

    async def create_practice(self, **overrides: Any) -> Tenant:
        body: dict[str, Any] = {
            "name": "Glow Aesthetics",
            "timezone": "America/New_York",
            "state": "NY",
            "booking_url": "https://book.example.com/glow",
            "review_url": "https://reviews.example.com/glow",
        } | overrides
        r = await self.http.post("/v1/practices", headers=self.admin, json=body)
        assert r.status_code == 201, r.text
        return Tenant(r.json()["id"], r.json()["api_key"])

    async def inquiry(self, tenant: Tenant, **overrides: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "channel": "form",
            "first_name": "Ada",
            "phone": "(212) 555-0123",
            "email": "Ada@Example.com",
            "interest": "botox",
            "message": "Anything Saturday?",
            "consent": {"sms": True, "email": False},
        } | overrides
        return await self.http.post("/v1/inquiries", headers=tenant.headers, json=body)

    async def lead(self, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
        r = await self.inquiry(tenant, **overrides)
        assert r.status_code == 202, r.text
        lead: dict[str, Any] = r.json()
        return lead

    async def messages(self, tenant: Tenant, patient_id: str) -> list[dict[str, Any]]:
        r = await self.http.get(f"/v1/patients/{patient_id}/messages", headers=tenant.headers)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def sent(self, tenant: Tenant, patient_id: str) -> list[dict[str, Any]]:
        return [
            m
            for m in await self.messages(tenant, patient_id)
            if m["direction"] == "outbound" and m["status"] == "sent"
        ]

    async def journey(self, tenant: Tenant, journey_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/v1/journeys/{journey_id}", headers=tenant.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def event(self, tenant: Tenant, journey_id: str, **body: Any) -> httpx.Response:
        body.setdefault("id", f"ev-{uuid.uuid4()}")
        return await self.http.post(
            f"/v1/journeys/{journey_id}/events", headers=tenant.headers, json=body
        )

    def count(self, table: type[SQLModel]) -> int:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(table)).one()

    def get(self, table: type[T], key: Any) -> T:
        with Session(self.engine) as session:
            row = session.get(table, uuid.UUID(str(key)))
            assert row is not None
            return row


def api_settings(database_url: str, temporal: str, task_queue: str) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        database_url=database_url,
        temporal_address=temporal,
        temporal_task_queue=task_queue,
        admin_api_key=ADMIN_KEY,
        relay_interval_seconds=0.2,
        temporal_start_timeout_seconds=2.0,
        max_body_bytes=4096,
        payload_encryption_keys=TEST_PAYLOAD_KEYS,
    )


StackFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture(scope="session")
def api_stack(temporal_dev: WorkflowEnvironment) -> StackFactory:
    """`async with api_stack(url, ...)`: an app on `url`, plus (by default) a worker for it.

    `temporal` overrides the address the *app* uses (a dead port, a proxy); the worker always
    talks to the dev server directly. `task_queue` lets two apps share one worker's queue.
    Other keyword arguments override settings (Twilio/SendGrid webhook secrets, limits)."""

    @asynccontextmanager
    async def stack(
        database_url: str,
        *,
        temporal: str | None = None,
        task_queue: str | None = None,
        worker: bool = True,
        **overrides: Any,
    ) -> AsyncIterator[Api]:
        queue = task_queue or f"api-{uuid.uuid4()}"
        settings = api_settings(database_url, temporal or temporal_address(temporal_dev), queue)
        if overrides:  # validated like the environment would be
            settings = Settings(_env_file=None, **(settings.model_dump() | overrides))
        app = create_app(settings)
        async with AsyncExitStack() as exits:
            await exits.enter_async_context(LifespanManager(app, startup_timeout=30))
            engine = make_engine(database_url)
            exits.callback(engine.dispose)
            if worker:
                await exits.enter_async_context(
                    build_worker(temporal_dev.client, settings, engine, task_queue=queue)
                )
            http = await exits.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
            )
            yield Api(app, http, settings, engine)

    return stack


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'api.db'}"


@pytest.fixture(scope="module")
async def api(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """One app + worker on an SQLite file per test module; tests isolate by practice."""
    async with api_stack(sqlite_url(tmp_path_factory.mktemp("api"))) as stack:
        yield stack


@pytest.fixture
async def tenant(api: Api) -> Tenant:
    return await api.create_practice()


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
async def any_api(
    request: pytest.FixtureRequest,
    api_stack: StackFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Api]:
    """The same app + worker on an SQLite file and on the throwaway PostgreSQL database."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("api"))
    else:
        url = request.getfixturevalue("postgres_url")
    async with api_stack(url) as stack:
        yield stack
