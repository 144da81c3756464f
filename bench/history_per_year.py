"""History per journey-year (DESIGN §9: "a journey of ten simulated years stays under a few
hundred events per run"): a tox patient treated every 95 days for `--years`, run by the real
journey worker under the time-skipping test server, then every run of the chain measured.

    .venv/bin/python bench/history_per_year.py [--years 10]

Prints events per run (first, typical, largest), runs, and events per journey-year in total.
Continue-as-new at each treatment keeps every run as short as the first year's, so the figure
that matters — the largest run — does not grow with the years.
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stopping  # bench/, the script's own folder

from models.enums import EventType, RevenueLine
from models.journey_types import (
    SIGNAL_INQUIRY,
    InquirySignal,
    JourneyEvent,
    JourneyInput,
    journey_workflow_id,
)
from models.tables import Journey, Patient, Practice
from runtime.codec import generate_key
from runtime.db import make_engine
from runtime.migrate import upgrade
from runtime.settings import Settings
from runtime.temporal_client import (
    SEARCH_ATTRIBUTES,
    data_converter,
    journey_search_attributes,
)
from worker import build_worker
from workflows.journey import JourneyWorkflow

console = Console()
TEST_SERVER = Path(sys.prefix) / "bin" / "temporal-test-server"
CYCLE_DAYS = 95


def seed(engine: Engine) -> Journey:
    with Session(engine, expire_on_commit=False) as session:
        practice = Practice(
            name="Bench Aesthetics",
            timezone="America/Los_Angeles",
            state="CA",
            booking_url="https://book.example.com/bench",
            revenue_lines=[RevenueLine.INJECTABLES.value],
        )
        session.add(practice)
        session.flush()
        patient = Patient(
            practice_id=practice.id,
            first_name="Bench",
            phone="+14155550100",
            timezone=practice.timezone,
            state="CA",
            sms_consent=True,
        )
        session.add(patient)
        session.flush()
        journey = Journey(
            practice_id=practice.id,
            patient_id=patient.id,
            revenue_line=RevenueLine.INJECTABLES.value,
            workflow_id=journey_workflow_id(
                str(practice.id), str(patient.id), RevenueLine.INJECTABLES
            ),
        )
        session.add(journey)
        session.commit()
        return journey


async def measure(years: int) -> tuple[list[int], float]:
    settings = Settings(
        _env_file=None, environment="test", payload_encryption_keys=f"bench:{generate_key()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        journey = seed(engine)
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=data_converter(settings)
        ) as env:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=env.client.namespace,
                    search_attributes={
                        n: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{k.upper()}")
                        for n, k in SEARCH_ATTRIBUTES.items()
                    },
                )
            )
            queue = f"bench-{uuid.uuid4()}"
            started = time.perf_counter()
            async with build_worker(env.client, settings, engine, task_queue=queue):
                handle = await env.client.start_workflow(
                    JourneyWorkflow.run,
                    JourneyInput(
                        journey_id=str(journey.id),
                        practice_id=str(journey.practice_id),
                        patient_id=str(journey.patient_id),
                        revenue_line=RevenueLine.INJECTABLES,
                        timezone="America/Los_Angeles",
                    ),
                    id=journey.workflow_id,
                    task_queue=queue,
                    start_signal=SIGNAL_INQUIRY,
                    start_signal_args=[
                        InquirySignal(
                            str(uuid.uuid4()), await env.get_current_time(), "form", "botox"
                        )
                    ],
                    search_attributes=journey_search_attributes(
                        str(journey.practice_id), str(journey.patient_id), "injectables"
                    ),
                )
                first_run = handle.result_run_id
                cycles = years * 365 // CYCLE_DAYS
                for n in range(cycles):
                    await env.sleep(timedelta(days=CYCLE_DAYS if n else 3))
                    at: datetime = await env.get_current_time()
                    await handle.signal(
                        EventType.TREATMENT_COMPLETED.value,
                        JourneyEvent(
                            EventType.TREATMENT_COMPLETED,
                            f"t{n}",
                            at=at.astimezone(UTC),
                            service="botox",
                        ),
                    )
                await env.sleep(timedelta(days=CYCLE_DAYS))
                elapsed = time.perf_counter() - started
                lengths = []
                run_id = first_run
                while run_id:
                    history = await env.client.get_workflow_handle(
                        handle.id, run_id=run_id
                    ).fetch_history()
                    lengths.append(len(history.events))
                    last = history.events[-1]
                    attrs = last.workflow_execution_continued_as_new_event_attributes
                    run_id = attrs.new_execution_run_id or None
        engine.dispose()
    return lengths, elapsed


def main(years: Annotated[int, typer.Option(min=1, max=50)] = 10) -> None:
    """Run a tox patient for `years` simulated years and print history figures."""
    lengths, elapsed = stopping.run(measure(years))
    table = Table(title=f"History of a tox journey over {years} simulated years")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("runs (continue-as-new per treatment)", str(len(lengths)))
    table.add_row("events, first run", str(lengths[0]))
    table.add_row("events per run, median", f"{statistics.median(lengths):.0f}")
    table.add_row("events per run, largest", str(max(lengths)))
    table.add_row("events, last full year's runs", str(max(lengths[-5:-1] or lengths)))
    table.add_row("events per journey-year, all runs", f"{sum(lengths) / years:.0f}")
    table.add_row("wall time (time-skipping)", f"{elapsed:.1f} s")
    table.add_row("machine", f"{platform.machine()}, Python {platform.python_version()}")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
