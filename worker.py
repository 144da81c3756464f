"""Wiring only: settings -> clients -> Worker(workflows, activities)."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.channels import build_provider
from activities.emr import EmrActivities
from activities.journey_records import JourneyRecords
from activities.library import LibraryActivities
from activities.messaging import Messaging
from activities.providers import Provider
from runtime.db import make_engine
from runtime.settings import Settings, get_settings
from runtime.temporal_client import connect
from workflows.emr_poll import EmrPollWorkflow
from workflows.journey import JourneyWorkflow

log = logging.getLogger("worker")


def build_worker(
    client: Client,
    settings: Settings,
    engine: Engine,
    *,
    task_queue: str | None = None,
    provider: Provider | None = None,
    max_concurrent_activities: int = 16,
) -> Worker:
    records = JourneyRecords(engine)
    library = LibraryActivities(engine)
    messaging = Messaging(
        engine, provider or build_provider(settings, engine), daily_cap=settings.daily_message_cap
    )
    emr = EmrActivities(engine, client, settings)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=[JourneyWorkflow, EmrPollWorkflow],
        activities=[
            records.write,
            messaging.send,
            library.resolve_track,
            emr.poll,
            emr.read_appointment,
            emr.find_or_create_patient,
            emr.booking_link,
        ],
        # Activities are synchronous database code; they run on this pool.
        activity_executor=ThreadPoolExecutor(max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    engine = make_engine(settings.database_url)
    client = await connect(settings)
    worker = build_worker(client, settings, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s", settings.temporal_task_queue)
    async with worker:
        await stop.wait()
        log.info("worker shutting down")
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
