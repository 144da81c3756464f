"""GET /metrics: Prometheus text format (api/metrics.py).

Open like /healthz by default: nothing in it names a patient or a practice. With METRICS_TOKEN
set it takes `Authorization: Bearer <token>` (for a scraper that crosses a network you do not
trust); either way keep it off the public ingress (docs/operations.md)."""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import EngineDep, SettingsDep
from api.metrics import update_backlog

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 401: {"description": "METRICS_TOKEN is set"}},
)
async def metrics(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    token = settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        await asyncio.to_thread(update_backlog, engine)
    except Exception as exc:  # the database down must not take the metrics with it
        log.warning("relay backlog not read: %s", type(exc).__name__)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
