"""What happens after an inbound message is committed: start the journey, signal the events,
send the answers through the send gate. Each step that cannot happen now is left to what
retries it: the relay starts journeys and delivers events; the direct sender below sends
deferred messages outside journeys (a staff reply waiting for the recipient's window, an answer
the provider could not take a moment ago) when their time comes, from the same ledger row."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from activities.messaging import Messaging, direct_retry
from activities.providers import ProviderError
from api.event_delivery import deliver, load_pending
from api.inbound import Followup
from api.journey_starter import start_journey
from api.temporal import TemporalConnection
from models.enums import Direction, MessageStatus
from models.tables import Message, utcnow
from runtime.db import session_scope
from runtime.settings import Settings

log = logging.getLogger(__name__)


async def run_followup(
    app: FastAPI,
    followup: Followup,
    engine: Engine,
    settings: Settings,
    temporal: TemporalConnection,
) -> None:
    client = temporal.client
    if client is not None and followup.start is not None:
        await start_journey(client, settings, engine, followup.start)
    if client is not None and followup.signal_journeys:
        pending = await run_in_threadpool(
            load_pending, engine, journey_ids=followup.signal_journeys
        )
        await deliver(client, settings, engine, pending)
    messaging: Messaging = app.state.messaging
    for answer in followup.answers:
        try:
            result = await run_in_threadpool(messaging.send_direct, answer)
        except ProviderError as err:
            # Recorded in the ledger (deferred or sending); an answer is not worth a 500 to the
            # provider, which would only retry the webhook.
            log.warning("answer not sent now: provider %s", err.code)
            continue
        log.info("answer %s: %s", answer.template or "staff", result.status.value)


BATCH = 100
CLAIM = timedelta(minutes=2)  # a claimed row is left to its claimer this long


def claim_due(engine: Engine, now: datetime, limit: int = BATCH) -> list[Message]:
    """Deferred messages outside journeys whose time has come, each claimed by moving its
    `retry_at` forward first: with several API replicas only one takes a row."""
    claimed: list[Message] = []
    with session_scope(engine) as session:
        rows = session.exec(
            select(Message)
            .where(col(Message.journey_id).is_(None))
            .where(Message.direction == Direction.OUTBOUND.value)
            .where(Message.status == MessageStatus.DEFERRED.value)
            .where(col(Message.retry_at) <= now)
            .order_by(col(Message.retry_at))
            .limit(limit)
        ).all()
        for row in rows:
            won = session.execute(
                sa.update(Message)
                .where(col(Message.id) == row.id)
                .where(col(Message.retry_at) == row.retry_at)
                .values(retry_at=now + CLAIM)
            )
            session.commit()
            if won.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row)
    return claimed


async def send_due(messaging: Messaging, engine: Engine, now: datetime | None = None) -> int:
    """Send what is due; returns how many left (sent or settled otherwise)."""
    at = now or utcnow()
    done = 0
    for row in await asyncio.to_thread(claim_due, engine, at):
        try:
            result = await asyncio.to_thread(messaging.send_direct, direct_retry(row, at))
        except ProviderError as err:
            log.warning("deferred message %s not sent now: provider %s", row.id, err.code)
            continue
        done += result.status is not MessageStatus.DEFERRED
    return done


async def run_direct_sender_forever(messaging: Messaging, engine: Engine, interval: float) -> None:
    while True:
        try:
            sent = await send_due(messaging, engine)
            if sent:
                log.info("direct sender: %d deferred messages settled", sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database briefly unavailable: next round
            log.warning("direct sender round failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)
