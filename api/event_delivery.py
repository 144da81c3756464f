"""Deliver persisted journey events to their workflows as signals, oldest first per journey.

An event row is written before it is signalled, so the endpoint can answer 202 while Temporal is
down and the relay delivers later. Per journey, delivery stops at the first failure so a later
event (a reschedule) never overtakes an earlier one (the booking). Duplicated deliveries (endpoint
and relay racing, several replicas) are harmless: the workflow drops event ids it has seen."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models.enums import Channel, EventStatus, EventType, JourneyStatus
from models.journey_types import JourneyEvent
from models.tables import Journey, JourneyEventRow, utcnow
from runtime.db import session_scope
from runtime.settings import Settings

log = logging.getLogger(__name__)

DROPPED = EventStatus.DROPPED.value


@dataclass(frozen=True)
class PendingEvent:
    row_id: uuid.UUID
    journey_id: uuid.UUID
    workflow_id: str
    event: JourneyEvent


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def event_from_payload(payload: dict[str, Any]) -> JourneyEvent:
    """The stored (JSON) request body back into the signal argument."""
    amount = payload.get("amount")
    channel = payload.get("channel")
    return JourneyEvent(
        type=EventType(payload["type"]),
        id=payload["id"],
        at=_when(payload.get("at")),
        appointment_at=_when(payload.get("appointment_at")),
        service=payload.get("service"),
        amount=float(amount) if amount is not None else None,
        channel=Channel(channel) if channel else None,
    )


def load_pending(
    engine: Engine,
    *,
    journey_ids: Iterable[uuid.UUID] | None = None,
    received_before: datetime | None = None,
    limit: int = 200,
) -> list[PendingEvent]:
    """Pending events of journeys whose workflow has been started, in received order."""
    query = (
        select(JourneyEventRow, Journey.workflow_id)
        .join(Journey, col(Journey.id) == col(JourneyEventRow.journey_id))
        .where(JourneyEventRow.status == EventStatus.PENDING.value)
        .where(Journey.status != JourneyStatus.PENDING.value)
        .order_by(col(JourneyEventRow.received_at), col(JourneyEventRow.id))
        .limit(limit)
    )
    if journey_ids is not None:
        query = query.where(col(JourneyEventRow.journey_id).in_(list(journey_ids)))
    if received_before is not None:
        query = query.where(col(JourneyEventRow.received_at) < received_before)
    with session_scope(engine) as session:
        return [
            PendingEvent(row.id, row.journey_id, workflow_id, event_from_payload(row.payload))
            for row, workflow_id in session.exec(query).all()
        ]


def _finish(engine: Engine, row_id: uuid.UUID, status: str) -> None:
    with session_scope(engine) as session:
        session.execute(
            sa.update(JourneyEventRow)
            .where(col(JourneyEventRow.id) == row_id)
            .values(status=status, delivered_at=utcnow())
        )
        session.commit()


async def deliver(
    client: Client, settings: Settings, engine: Engine, events: list[PendingEvent]
) -> int:
    """Signal each event; returns how many were delivered."""
    delivered = 0
    blocked: set[uuid.UUID] = set()  # journeys with an undelivered earlier event
    for pending in events:
        if pending.journey_id in blocked:
            continue
        handle = client.get_workflow_handle(pending.workflow_id)
        try:
            await asyncio.wait_for(
                handle.signal(pending.event.type.value, pending.event),
                timeout=settings.temporal_start_timeout_seconds,
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                # The journey's run has ended: nothing will ever receive this event.
                log.info("event dropped, journey closed: event_row=%s", pending.row_id)
                await asyncio.to_thread(_finish, engine, pending.row_id, DROPPED)
                continue
            blocked.add(pending.journey_id)
            log.warning(
                "event delivery deferred: event_row=%s error=%s", pending.row_id, exc.status
            )
            continue
        except Exception as exc:
            blocked.add(pending.journey_id)
            log.warning(
                "event delivery deferred: event_row=%s error=%s", pending.row_id, type(exc).__name__
            )
            continue
        await asyncio.to_thread(_finish, engine, pending.row_id, EventStatus.DELIVERED.value)
        delivered += 1
    return delivered
