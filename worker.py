"""Wiring only: settings -> clients -> Worker(workflows, activities)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

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
from runtime.logs import configure_logging
from runtime.settings import Settings, get_settings
from runtime.temporal_client import connect, metrics_runtime
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
    graceful_shutdown: timedelta | None = None,
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
            emr.consult_outcome,
            emr.find_or_create_patient,
            emr.booking_link,
        ],
        # Activities are synchronous database code; they run on this pool.
        activity_executor=ThreadPoolExecutor(max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        # On shutdown the worker stops polling at once; activities already running get this
        # long to finish (a send half-way through completes rather than being retried).
        graceful_shutdown_timeout=graceful_shutdown
        or timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    # Prometheus at WORKER_METRICS_ADDRESS: the SDK's metrics and the app's (activities/metrics.py).
    runtime = (
        metrics_runtime(settings.worker_metrics_address)
        if settings.worker_metrics_address
        else None
    )
    engine = make_engine(settings.database_url)
    client = await connect(settings, runtime=runtime)
    worker = build_worker(client, settings, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s", settings.temporal_task_queue)
    if runtime is not None:
        log.info("worker metrics on http://%s/metrics", settings.worker_metrics_address)
    async with worker:
        await stop.wait()
        # Leaving the block is Worker.shutdown(): polls stop, in-flight activities get the
        # grace period, then anything left is cancelled (and retried by Temporal elsewhere).
        log.info(
            "worker shutting down (grace %.0fs for in-flight activities)",
            settings.worker_graceful_shutdown_seconds,
        )
    log.info("worker stopped")
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
    # Stopped cleanly, engine disposed: leave without interpreter finalization. During it the
    # SDK's Rust threads can still touch Python and abort a clean stop with "Fatal Python error:
    # PyGILState_Release" (exit 134; temporalio/sdk-python#300, seen here on SIGTERM).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
