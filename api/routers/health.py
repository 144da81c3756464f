"""Liveness and readiness. Readiness checks what a request needs: the database and Temporal."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.deps import EngineDep, TemporalDep
from api.temporal import TemporalConnection

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


async def _temporal_ok(temporal: TemporalConnection) -> bool:
    client = temporal.client
    if client is None:
        return False
    try:
        await asyncio.wait_for(
            client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS)
            ),
            timeout=CHECK_TIMEOUT_SECONDS,
        )
        return True
    except Exception:
        return False


@router.get("/readyz", responses={503: {"description": "a dependency is unavailable"}})
async def readyz(engine: EngineDep, temporal: TemporalDep) -> JSONResponse:
    database, temporal_up = await asyncio.gather(
        asyncio.wait_for(asyncio.to_thread(_database_ok, engine), CHECK_TIMEOUT_SECONDS),
        _temporal_ok(temporal),
        return_exceptions=True,
    )
    checks = {
        "database": "ok" if database is True else "unavailable",
        "temporal": "ok" if temporal_up is True else "unavailable",
    }
    ready = database is True and temporal_up is True
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
