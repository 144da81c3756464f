"""One Temporal Schedule per polling integration, registered when the integration is created and
removed when it is deleted. When Temporal is down at that moment the row says `pending` and the
relay (api/relay.py) registers or removes it later: `reconcile`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.service import RPCError, RPCStatusCode

from models.emr_types import EMR_POLL_WORKFLOW_NAME, EmrPollInput, poll_schedule_id
from models.tables import Integration, utcnow
from runtime.db import session_scope
from runtime.settings import Settings

log = logging.getLogger(__name__)

PENDING, REGISTERED, NONE = "pending", "registered", "none"


async def register(
    client: Client, settings: Settings, integration_id: str, interval_seconds: int
) -> None:
    sid = poll_schedule_id(integration_id)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            EMR_POLL_WORKFLOW_NAME,
            EmrPollInput(integration_id=integration_id),
            id=sid,
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_seconds))]
        ),
        # A slow poll is never doubled: the next tick is skipped while one runs.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await asyncio.wait_for(
            client.create_schedule(sid, schedule), settings.temporal_start_timeout_seconds
        )
    except ScheduleAlreadyRunningError:
        # Registered before (a retry, or the interval changed): make it say what the row says.
        await asyncio.wait_for(
            client.get_schedule_handle(sid).update(lambda _: ScheduleUpdate(schedule=schedule)),
            settings.temporal_start_timeout_seconds,
        )


async def remove(client: Client, settings: Settings, integration_id: str) -> None:
    handle = client.get_schedule_handle(poll_schedule_id(integration_id))
    try:
        await asyncio.wait_for(handle.delete(), settings.temporal_start_timeout_seconds)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


def _mark(engine: Engine, integration_id: str, state: str) -> None:
    with session_scope(engine) as session:
        row = session.get(Integration, uuid.UUID(integration_id))
        if row is not None:
            row.schedule_state = state
            row.updated_at = utcnow()
            session.add(row)
            session.commit()


async def apply(client: Client | None, settings: Settings, engine: Engine, row_id: str) -> bool:
    """Bring the integration's schedule in line with its row. True when done."""

    def wanted() -> tuple[bool, int | None] | None:
        with session_scope(engine) as session:
            row = session.get(Integration, uuid.UUID(row_id))
            return None if row is None else (row.status == "active", row.poll_interval_seconds)

    state = await asyncio.to_thread(wanted)
    if state is None:
        return True
    active, interval = state
    if client is None:
        return False
    try:
        if active and interval:
            await register(client, settings, str(row_id), interval)
            await asyncio.to_thread(_mark, engine, row_id, REGISTERED)
        else:
            await remove(client, settings, str(row_id))
            await asyncio.to_thread(_mark, engine, row_id, NONE)
    except Exception as exc:  # Temporal down or slow: the relay tries again
        log.warning("schedule change deferred: integration=%s error=%s", row_id, type(exc).__name__)
        return False
    return True


async def reconcile(client: Client, settings: Settings, engine: Engine) -> int:
    """Schedules still to register (created while Temporal was down) or to remove."""

    def todo() -> list[str]:
        with session_scope(engine) as session:
            rows = session.exec(
                select(Integration.id).where(col(Integration.schedule_state) == PENDING).limit(50)
            ).all()
            return [str(r) for r in rows]

    done = 0
    for row_id in await asyncio.to_thread(todo):
        if not await apply(client, settings, engine, row_id):
            break
        done += 1
    return done
