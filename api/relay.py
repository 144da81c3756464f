"""The relay: catches up on whatever the request handlers could not hand to Temporal.

Every `relay_interval_seconds` it starts journeys for inquiries still "received" and delivers
pending journey events, oldest first. Safe in several API replicas at once: starts are
signal-with-start keyed by the journey's workflow id with the inquiry id as the signal's id, and
the workflow drops duplicate ids. It leaves alone rows younger than the start timeout, which the
request that wrote them may still be handing over itself."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from api.event_delivery import deliver, load_pending
from api.journey_starter import load_received_plans, start_journey
from api.metrics import RELAY_ROUNDS
from api.temporal import TemporalConnection
from integrations.schedules import reconcile as reconcile_schedules
from models.tables import utcnow
from runtime.settings import Settings

log = logging.getLogger(__name__)

BATCH = 200
MAX_FAILED_STARTS_PER_ROUND = 3  # Temporal is probably down: stop hammering it until next round


@dataclass
class RelayReport:
    started: int = 0
    failed: int = 0
    delivered: int = 0


class Relay:
    def __init__(self, engine: Engine, temporal: TemporalConnection, settings: Settings) -> None:
        self._engine = engine
        self._temporal = temporal
        self._settings = settings

    async def run_once(self) -> RelayReport:
        report = RelayReport()
        client = self._temporal.client
        if client is None:
            return report
        cutoff = utcnow() - timedelta(seconds=self._settings.temporal_start_timeout_seconds)
        plans = await asyncio.to_thread(load_received_plans, self._engine, cutoff, BATCH)
        for plan in plans:
            if await start_journey(client, self._settings, self._engine, plan):
                report.started += 1
            else:
                report.failed += 1
                if report.failed >= MAX_FAILED_STARTS_PER_ROUND:
                    return report
        events = await asyncio.to_thread(
            lambda: load_pending(self._engine, received_before=cutoff, limit=BATCH)
        )
        report.delivered = await deliver(client, self._settings, self._engine, events)
        # EMR poll Schedules created or deleted while Temporal was down.
        await reconcile_schedules(client, self._settings, self._engine)
        return report

    async def run_forever(self) -> None:
        while True:
            try:
                report = await self.run_once()
                RELAY_ROUNDS.labels("started").inc(report.started)
                RELAY_ROUNDS.labels("failed").inc(report.failed)
                RELAY_ROUNDS.labels("delivered").inc(report.delivered)
                if report.started or report.failed or report.delivered:
                    log.info(
                        "relay: started=%d failed=%d delivered=%d",
                        report.started,
                        report.failed,
                        report.delivered,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the database briefly unavailable: try next round
                log.warning("relay round failed: %s", type(exc).__name__)
            await asyncio.sleep(self._settings.relay_interval_seconds)
