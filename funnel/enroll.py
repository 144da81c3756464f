"""Bulk enrollment: past patients who are due — recall due, a quote gone quiet, lapsed — put
into the right journeys at a controlled rate (docs/funnel.md, "Bulk enrollment").

Two phases, both resumable:
1. `plan` picks who is due from the imported history and writes one `enrollment` row per
   (patient, line) with its journey row — unique, so a second run plans nobody twice.
2. `run` starts the planned ones, oldest first, at `rate` per second, marking each row as it
   goes. Interrupted, it resumes with the rows still `planned`; a start that reached Temporal
   but not the database is found running (same workflow id) and marked, never started twice.
   With an `InFlight` bound it also waits while that many of its journeys have not yet reached
   their first wait, so the starts follow what the workers finish."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.journey_starter import reachable_channels
from models.enums import TERMINAL_STATUSES, Channel, JourneyStatus, RevenueLine, Stage
from models.journey_types import (
    JOURNEY_WORKFLOW_NAME,
    JourneyInput,
    JourneyStart,
    journey_workflow_id,
)
from models.tables import (
    Enrollment,
    HistoryPatient,
    HistoryRecord,
    Journey,
    Patient,
    Practice,
    utcnow,
)
from runtime.db import session_scope
from runtime.settings import Settings
from runtime.temporal_client import journey_search_attributes
from workflows.catalog import find_service

QUIET_QUOTE_AFTER = timedelta(days=14)  # a consult attended, nothing treated since
TOO_OLD = timedelta(days=3 * 365)  # beyond this a "past patient" is a stranger again
RECALL_EARLY = timedelta(days=21)  # recall due: from three weeks before the due day ...
RECALL_LATE = timedelta(days=30)  # ... to a month after it; later than that is lapsed
SERIES_LAPSED_AFTER = 35  # days past the session interval (the track's own threshold)

REASONS = {
    "recall_due": (Stage.REBOOK, "post_treatment", "enrolled: recall due"),
    "quiet_quote": (Stage.REACTIVATION, "reactivation_quiet_quote", "enrolled: quote went quiet"),
    "lapsed": (Stage.REACTIVATION, "reactivation_lapsed", "enrolled: lapsed"),
}


@dataclass(frozen=True)
class Due:
    patient_id: uuid.UUID
    line: RevenueLine
    reason: str
    since: datetime
    service: str | None


def due_reason(
    records: list[HistoryRecord], now: datetime
) -> tuple[str, datetime, str | None] | None:
    """(reason, since, service) for one patient's records on one line, or None if not due."""
    treatments = sorted((r for r in records if r.kind == "treatment"), key=lambda r: r.at)
    if treatments:
        last = treatments[-1]
        age = now - last.at
        if age > TOO_OLD or age < timedelta(0):
            return None
        service = find_service(last.service) if last.service else None
        if service is not None and service.is_series:
            gap = timedelta(days=(service.session_interval_days or 42) + SERIES_LAPSED_AFTER)
            return ("lapsed", last.at, last.service) if age > gap else None
        due = timedelta(days=(service.recall_days if service and service.recall_days else 365))
        if due - RECALL_EARLY <= age <= due + RECALL_LATE:
            return "recall_due", last.at, last.service
        if age > due + RECALL_LATE:
            return "lapsed", last.at, last.service
        return None
    consults = sorted(
        (r for r in records if r.kind == "appointment" and r.status == "completed"),
        key=lambda r: r.at,
    )
    if consults and QUIET_QUOTE_AFTER <= now - consults[-1].at <= TOO_OLD:
        return "quiet_quote", consults[-1].at, consults[-1].service
    return None


def find_due(session: Session, practice_id: uuid.UUID, now: datetime) -> list[Due]:
    groups: dict[tuple[uuid.UUID, str], list[HistoryRecord]] = defaultdict(list)
    rows = session.exec(
        select(HistoryRecord, HistoryPatient.patient_id)
        .join(HistoryPatient, col(HistoryPatient.id) == col(HistoryRecord.history_patient_id))
        .where(HistoryRecord.practice_id == practice_id)
        .where(col(HistoryPatient.patient_id).is_not(None))
    ).all()
    for record, patient_id in rows:
        assert patient_id is not None
        groups[(patient_id, record.revenue_line)].append(record)
    out = []
    for (patient_id, line), records in groups.items():
        found = due_reason(records, now)
        if found is not None:
            out.append(Due(patient_id, RevenueLine(line), *found))
    out.sort(key=lambda d: (d.since, str(d.patient_id), d.line.value))
    return out


@dataclass
class Planned:
    due: int
    planned: int  # new enrollment rows this time
    already: int  # enrolled before (a second run)
    journeying: int  # skipped: a live journey on that line already


def plan(engine: Engine, practice_id: uuid.UUID, now: datetime | None = None) -> Planned:
    """Phase 1: one enrollment row (and journey row) per due (patient, line), at most once."""
    now = now or utcnow()
    with session_scope(engine) as session:
        practice = session.get(Practice, practice_id)
        if practice is None:
            raise LookupError("no such practice")
        due = find_due(session, practice_id, now)
        enrolled = {
            (pid, line)
            for pid, line in session.exec(
                select(Enrollment.patient_id, Enrollment.revenue_line).where(
                    Enrollment.practice_id == practice_id
                )
            ).all()
        }
        journeys = {
            j.workflow_id: j
            for j in session.exec(select(Journey).where(Journey.practice_id == practice_id))
        }
        erased = set(
            session.exec(
                select(Patient.id)
                .where(Patient.practice_id == practice_id)
                .where(col(Patient.erased_at).is_not(None))
            ).all()
        )
        result = Planned(len(due), 0, 0, 0)
        new_journeys: list[dict[str, object]] = []
        reopened: list[uuid.UUID] = []
        rows: list[dict[str, object]] = []
        for d in due:
            if (d.patient_id, d.line.value) in enrolled:
                result.already += 1
                continue
            if d.patient_id in erased:
                continue
            workflow_id = journey_workflow_id(str(practice_id), str(d.patient_id), d.line)
            journey = journeys.get(workflow_id)
            if journey is not None and journey.status not in TERMINAL_STATUSES:
                result.journeying += 1
                continue
            # Plain rows, not model objects: constructing thousands of SQLModel objects is
            # what would make planning slow.
            now_ = utcnow()
            if journey is None:
                journey_id = uuid.uuid4()
                new_journeys.append(
                    {
                        "id": journey_id,
                        "practice_id": practice_id,
                        "patient_id": d.patient_id,
                        "revenue_line": d.line.value,
                        "workflow_id": workflow_id,
                        "stage": REASONS[d.reason][0].value,
                        "status": JourneyStatus.PENDING.value,
                        "cycle": 0,
                        "created_at": now_,
                        "updated_at": now_,
                    }
                )
            else:  # a closed journey starts afresh, as a new inquiry would reopen it
                journey_id = journey.id
                reopened.append(journey.id)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "practice_id": practice_id,
                    "patient_id": d.patient_id,
                    "journey_id": journey_id,
                    "revenue_line": d.line.value,
                    "reason": d.reason,
                    "service": d.service,
                    "since": d.since,
                    "status": "planned",
                    "created_at": now_,
                }
            )
            result.planned += 1
        # Core inserts in one transaction: thousands of rows in well under a second, and an
        # interrupted plan leaves nothing half-written (the unique keys keep a re-plan exact).
        for chunk in range(0, len(new_journeys), 1000):
            session.execute(
                sa.insert(SQLModel.metadata.tables["journey"]), new_journeys[chunk : chunk + 1000]
            )
        if reopened:
            session.execute(
                sa.update(Journey)
                .where(col(Journey.id).in_(reopened))
                .values(status=JourneyStatus.PENDING.value, exit_reason=None, updated_at=utcnow())
            )
        for chunk in range(0, len(rows), 1000):
            session.execute(
                sa.insert(SQLModel.metadata.tables["enrollment"]), rows[chunk : chunk + 1000]
            )
        session.commit()
    return result


@dataclass(frozen=True)
class StartItem:
    """What a start needs, PHI-free."""

    enrollment_id: uuid.UUID
    journey_id: uuid.UUID
    practice_id: uuid.UUID
    patient_id: uuid.UUID
    workflow_id: str
    line: RevenueLine
    reason: str
    since: datetime
    service: str | None
    timezone: str
    channels: tuple[str, ...]


# A starter answers True when it started the journey, False when it found it already running.
Starter = Callable[[StartItem], Awaitable[bool]]


def journey_input(item: StartItem, now: datetime) -> JourneyInput:
    stage, sequence, reason = REASONS[item.reason]
    # Recall counts from the past treatment; a reactivation campaign starts now.
    anchor = item.since if stage is Stage.REBOOK else now
    return JourneyInput(
        journey_id=str(item.journey_id),
        practice_id=str(item.practice_id),
        patient_id=str(item.patient_id),
        revenue_line=item.line,
        channels=[Channel(c) for c in item.channels],
        timezone=item.timezone,
        start=JourneyStart(stage, sequence, anchor, reason, item.service),
    )


def temporal_starter(client: Client, settings: Settings) -> Starter:
    async def start(item: StartItem) -> bool:
        try:
            await client.start_workflow(
                JOURNEY_WORKFLOW_NAME,
                journey_input(item, utcnow()),
                id=item.workflow_id,
                task_queue=settings.temporal_task_queue,
                search_attributes=journey_search_attributes(
                    str(item.practice_id),
                    str(item.patient_id),
                    item.line.value,
                    REASONS[item.reason][0].value,
                ),
                static_summary=f"{item.line.value} journey (enrolled: {item.reason})",
            )
        except WorkflowAlreadyStartedError:
            return False
        return True

    return start


def _load_planned(engine: Engine, practice_id: uuid.UUID, limit: int) -> list[StartItem]:
    with session_scope(engine) as session:
        practice = session.get(Practice, practice_id)
        assert practice is not None
        rows = session.exec(
            select(Enrollment, Journey, Patient)
            .join(Journey, col(Journey.id) == col(Enrollment.journey_id))
            .join(Patient, col(Patient.id) == col(Enrollment.patient_id))
            .where(Enrollment.practice_id == practice_id)
            .where(Enrollment.status == "planned")
            .order_by(col(Enrollment.created_at), col(Enrollment.id))
            .limit(limit)
        ).all()
        return [
            StartItem(
                e.id,
                j.id,
                practice_id,
                p.id,
                j.workflow_id,
                RevenueLine(e.revenue_line),
                e.reason,
                e.since,
                e.service,
                p.timezone or practice.timezone,
                tuple(c.value for c in reachable_channels(p)),
            )
            for e, j, p in rows
        ]


def _mark(engine: Engine, done: list[tuple[uuid.UUID, uuid.UUID, bool]]) -> None:
    if not done:
        return
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(
            sa.update(Enrollment)
            .where(col(Enrollment.id).in_([d[0] for d in done]))
            .values(status="started", started_at=now)
        )
        # Only still-pending rows: the worker may already have written the live status.
        session.execute(
            sa.update(Journey)
            .where(col(Journey.id).in_([d[1] for d in done]))
            .where(col(Journey.status) == JourneyStatus.PENDING.value)
            .values(status=JourneyStatus.ACTIVE.value, updated_at=now)
        )
        session.commit()


class InFlight:
    """Journeys this run started whose first step has not settled, bounded by `limit`.

    A journey is settled once the worker has written its next wait (`next_action_at`) or it
    left the active statuses (ended, opted out, paused). The bound exists because a rate alone
    can exceed what the workers finish: on a busy box the backlog of half-run journeys then
    outgrows the worker's sticky cache and the server's, every task replays from history, and
    throughput collapses to a fraction (docs/benchmarks.md). Waiting on the app database rather
    than Temporal's visibility keeps the check cheap and the same on every server."""

    def __init__(self, engine: Engine, limit: int, poll: float = 0.5) -> None:
        if limit < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.engine = engine
        self.limit = limit
        self.poll = poll
        self.pending: set[uuid.UUID] = set()
        self.starting = 0
        # The tests read these two: most journeys unsettled at once, and database checks made.
        self.peak = 0
        self.checks = 0
        self._lock = asyncio.Lock()

    @classmethod
    def at_most(cls, engine: Engine, limit: int) -> InFlight | None:
        """The bound for a `--max-in-flight`-style option: 0 means no bound."""
        return cls(engine, limit) if limit else None

    def _full(self) -> bool:
        return len(self.pending) + self.starting >= self.limit

    async def reserve(self) -> None:
        """Wait for room for one more start; pair with `started` once it is made."""
        async with self._lock:
            while self._full():
                await asyncio.to_thread(self._settle)
                if self._full():
                    await asyncio.sleep(self.poll)  # the workers' pace, not a journey step
            self.starting += 1

    def started(self, journey_id: uuid.UUID, started: bool) -> None:
        self.starting -= 1
        if started:
            self.pending.add(journey_id)
            self.peak = max(self.peak, len(self.pending))

    def _settle(self) -> None:
        self.checks += 1
        if not self.pending:
            return
        active = (JourneyStatus.PENDING.value, JourneyStatus.ACTIVE.value)
        ids = list(self.pending)
        with session_scope(self.engine) as session:
            for chunk in range(0, len(ids), 500):
                settled = session.exec(
                    select(Journey.id)
                    .where(col(Journey.id).in_(ids[chunk : chunk + 500]))
                    .where(
                        sa.or_(
                            col(Journey.next_action_at).is_not(None),
                            col(Journey.status).not_in(active),
                        )
                    )
                ).all()
                self.pending.difference_update(settled)


@dataclass
class RunResult:
    started: int = 0
    already_running: int = 0
    remaining: int = 0
    seconds: float = 0.0


async def run(
    engine: Engine,
    practice_id: uuid.UUID,
    starter: Starter,
    *,
    rate: float = 50.0,
    concurrency: int = 8,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = 500,
    in_flight: InFlight | None = None,
) -> RunResult:
    """Phase 2: start the planned enrollments at no more than `rate` per second and, with
    `in_flight`, no more than its limit of journeys not yet at their first wait."""
    result = RunResult()
    began = time.monotonic()
    interval = 1.0 / rate if rate > 0 else 0.0
    next_slot = time.monotonic()
    gate = asyncio.Semaphore(concurrency)
    todo = limit
    while todo is None or todo > 0:
        size = batch if todo is None else min(batch, todo)
        items = await asyncio.to_thread(_load_planned, engine, practice_id, size)
        if not items:
            break
        done: list[tuple[uuid.UUID, uuid.UUID, bool]] = []

        async def one(item: StartItem, done: list[tuple[uuid.UUID, uuid.UUID, bool]]) -> None:
            nonlocal next_slot
            async with gate:
                if in_flight is not None:
                    await in_flight.reserve()
                started = False
                try:
                    now = time.monotonic()
                    wait = next_slot - now
                    next_slot = max(now, next_slot) + interval
                    if wait > 0:
                        await asyncio.sleep(wait)  # the rate limit, not a journey step
                    started = await starter(item)
                finally:
                    # A failed or cancelled start gives its place back.
                    if in_flight is not None:
                        in_flight.started(item.journey_id, started)
                done.append((item.enrollment_id, item.journey_id, started))
                if progress is not None:
                    progress(1)

        try:
            # A failed start (or an interrupt) cancels the batch's other starts.
            async with asyncio.TaskGroup() as group:
                for item in items:
                    group.create_task(one(item, done))
        finally:
            # Whatever got started is recorded even when the run is interrupted mid-batch.
            await asyncio.to_thread(_mark, engine, done)
        result.started += sum(1 for d in done if d[2])
        result.already_running += sum(1 for d in done if not d[2])
        if todo is not None:
            todo -= len(items)
    with session_scope(engine) as session:
        result.remaining = len(
            session.exec(
                select(Enrollment.id)
                .where(Enrollment.practice_id == practice_id)
                .where(Enrollment.status == "planned")
            ).all()
        )
    result.seconds = time.monotonic() - began
    return result
