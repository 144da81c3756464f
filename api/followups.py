"""What happens after an inbound message is committed: start the journey, signal the events,
send the answers through the send gate. Each step that cannot happen now is left to what
already retries it: the relay starts journeys and delivers events; an answer that the provider
refused is in the ledger with its reason."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from activities.messaging import Messaging
from activities.providers import ProviderError
from api.event_delivery import deliver, load_pending
from api.inbound import Followup
from api.journey_starter import start_journey
from api.temporal import TemporalConnection
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
