"""Bulk enrollment of 10,000 past patients: who is due, progress, an interrupted run resumed,
a second run that enrolls nobody twice. The starter here is a stand-in with Temporal's one
guarantee that matters (a workflow id runs once); tests/workflows/test_enrolled_journeys.py runs
enrolled journeys for real and bench/enroll.py measures the rate against a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, func, select

from funnel import enroll
from funnel.enroll import StartItem
from models.enums import JourneyStatus
from models.tables import (
    Enrollment,
    HistoryImport,
    HistoryRecord,
    Journey,
    Practice,
)
from tests.api.conftest import eventually

NOW = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
D = timedelta(days=1)
PATIENTS = 10_000


class Interrupted(Exception):
    pass


class FakeTemporal:
    """Starts are remembered by workflow id: a second start of a running id answers False
    (Temporal's WorkflowAlreadyStartedError). `fail_after` interrupts the run like a Ctrl-C."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.running: set[str] = set()
        self.attempts: Counter[str] = Counter()
        self.fail_after = fail_after

    async def __call__(self, item: StartItem) -> bool:
        if self.fail_after is not None and len(self.running) >= self.fail_after:
            raise Interrupted
        self.attempts[item.workflow_id] += 1
        if item.workflow_id in self.running:
            return False
        self.running.add(item.workflow_id)
        return True


def practice_with_history(engine: Engine, patients: int, now: datetime = NOW) -> uuid.UUID:
    """`patients` past patients, a third each recall due (tox 80 days ago), lapsed (tox 200 days
    ago) and quiet quote (consult 30 days ago, never treated); every 10th treated 20 days ago
    (not due) — so 9,000 are due out of 10,000."""
    with Session(engine) as s:
        practice = Practice(
            name="Bulk",
            timezone="America/New_York",
            state="NY",
            booking_url="https://book.example.com",
            revenue_lines=["injectables"],
        )
        s.add(practice)
        s.flush()
        batch = HistoryImport(practice_id=practice.id, kind="treatments", preset="generic")
        s.add(batch)
        s.flush()
        people: list[dict[str, object]] = []
        links: list[dict[str, object]] = []
        records: list[dict[str, object]] = []
        for n in range(patients):
            patient_id, link_id = uuid.uuid4(), uuid.uuid4()
            people.append(
                {
                    "id": patient_id,
                    "practice_id": practice.id,
                    "timezone": "America/New_York",
                    "email": f"p{n}@example.com",
                    "email_consent": True,
                    "sms_consent": False,
                    "sms_suppressed": False,
                    "email_suppressed": False,
                    "created_at": now,
                }
            )
            links.append(
                {
                    "id": link_id,
                    "practice_id": practice.id,
                    "ref": f"R{n}",
                    "patient_id": patient_id,
                }
            )
            if n % 10 == 9:
                kind, ago, status = "treatment", 20, None
            else:
                kind, ago, status = {
                    0: ("treatment", 80, None),
                    1: ("treatment", 200, None),
                    2: ("appointment", 30, "completed"),
                }[n % 3]
            records.append(
                {
                    "id": uuid.uuid4(),
                    "practice_id": practice.id,
                    "import_id": batch.id,
                    "history_patient_id": link_id,
                    "key": f"k{n}",
                    "kind": kind,
                    "revenue_line": "injectables",
                    "service": "botox",
                    "at": now - ago * D,
                    "status": status,
                    "referred": False,
                    "amount": 400.0 if kind == "treatment" else None,
                }
            )
        # Core inserts of plain rows: 30,000 model objects would take most of the test's time.
        for table, rows in (
            ("patient", people),
            ("history_patient", links),
            ("history_record", records),
        ):
            s.execute(sa.insert(SQLModel.metadata.tables[table]), rows)
        s.commit()
        return practice.id


def count(engine: Engine, status: str | None = None) -> int:
    with Session(engine) as s:
        query = select(func.count()).select_from(Enrollment)
        if status is not None:
            query = query.where(Enrollment.status == status)
        return s.exec(query).one()


async def test_ten_thousand_patients_enrolled_once_with_progress_and_resumed(
    sqlite_engine: Engine,
) -> None:
    practice_id = practice_with_history(sqlite_engine, PATIENTS)
    due = 9_000

    planned = enroll.plan(sqlite_engine, practice_id, NOW)
    assert (planned.due, planned.planned, planned.already) == (due, due, 0)
    with Session(sqlite_engine) as s:
        reasons = Counter(s.exec(select(Enrollment.reason)).all())
    assert reasons == {"recall_due": 3000, "lapsed": 3000, "quiet_quote": 3000}

    # First run: interrupted after 4,000 starts.
    temporal = FakeTemporal(fail_after=4_000)
    ticks: list[int] = []
    with pytest.raises(ExceptionGroup):
        await enroll.run(
            sqlite_engine, practice_id, temporal, rate=0, concurrency=16, progress=ticks.append
        )
    assert len(temporal.running) == 4_000
    started_first = count(sqlite_engine, "started")
    # Every start that returned was recorded; at most the ones in flight were not.
    assert 4_000 - 16 <= started_first <= 4_000
    assert sum(ticks) == started_first

    # The re-run resumes: the rest start, the unrecorded ones in flight are found running.
    temporal.fail_after = None
    ticks.clear()
    again = enroll.plan(sqlite_engine, practice_id, NOW)
    assert (again.planned, again.already) == (0, due)  # nobody planned twice
    result = await enroll.run(
        sqlite_engine, practice_id, temporal, rate=0, concurrency=16, progress=ticks.append
    )
    assert result.remaining == 0
    assert len(temporal.running) == due  # every due patient's journey runs ...
    assert sum(1 for n in temporal.attempts.values() if n > 1) == 4_000 - started_first
    assert result.started == due - 4_000
    assert sum(ticks) == due - started_first
    assert count(sqlite_engine, "started") == due

    # A second enrollment later starts nobody.
    third = enroll.plan(sqlite_engine, practice_id, NOW)
    assert third.planned == 0
    before = sum(temporal.attempts.values())
    result = await enroll.run(sqlite_engine, practice_id, temporal, rate=0)
    assert (result.started, result.already_running) == (0, 0)
    assert sum(temporal.attempts.values()) == before
    with Session(sqlite_engine) as s:
        statuses = Counter(s.exec(select(Journey.status)).all())
    assert statuses == {JourneyStatus.ACTIVE.value: due}


async def test_the_rate_is_held(sqlite_engine: Engine) -> None:
    """At 200 starts a second, 100 starts cannot finish in under ~half a second."""
    practice_id = practice_with_history(sqlite_engine, 120)
    enroll.plan(sqlite_engine, practice_id, NOW)
    temporal = FakeTemporal()
    result = await enroll.run(sqlite_engine, practice_id, temporal, rate=200, limit=100)
    assert result.started == 100
    assert result.seconds >= 99 / 200 * 0.95  # a lower bound only: the machine may be slow
    assert result.remaining == 108 - 100


class SettlingTemporal(FakeTemporal):
    """Checks, at every start, what the database says is still on its way to a first wait:
    the bound must hold by the rows the worker writes, not by the run's own bookkeeping."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.ids: dict[str, uuid.UUID] = {}
        self.unsettled_seen: list[int] = []

    async def __call__(self, item: StartItem) -> bool:
        self.unsettled_seen.append(len(unsettled(self.engine, list(self.ids.values()))))
        self.ids[item.workflow_id] = item.journey_id
        return await super().__call__(item)


def unsettled(engine: Engine, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(Journey.id)
                .where(col(Journey.id).in_(ids))
                .where(col(Journey.next_action_at).is_(None))
                .where(col(Journey.status).in_(["pending", "active"]))
            ).all()
        )


def settle(engine: Engine, ids: list[uuid.UUID], how: str) -> None:
    """What the worker writes: the journey's next wait, or a status that ended its run."""
    values: dict[str, object] = (
        {"next_action_at": NOW + 30 * D, "status": "active"}
        if how == "asleep"
        else {"status": how, "next_action_at": None}
    )
    with Session(engine) as s:
        s.execute(sa.update(Journey).where(col(Journey.id).in_(ids)).values(**values))
        s.commit()


async def test_starts_wait_while_too_many_journeys_have_not_reached_their_first_wait(
    sqlite_engine: Engine,
) -> None:
    practice_id = practice_with_history(sqlite_engine, 60)  # 54 due
    enroll.plan(sqlite_engine, practice_id, NOW)
    temporal = SettlingTemporal(sqlite_engine)
    bound = enroll.InFlight(sqlite_engine, limit=10, poll=0.01)
    run = asyncio.create_task(
        enroll.run(
            sqlite_engine, practice_id, temporal, rate=0, concurrency=4, limit=25, in_flight=bound
        )
    )

    async def waiting() -> bool:  # the bound is full and has been rechecked a few times
        return bound.checks >= 5 and not run.done()

    await eventually(waiting, "the run to wait at its bound")
    assert len(temporal.running) == 10  # ten started, none settled: the eleventh waits

    # Settled the ways a journey can be: asleep, ended, paused by a reply.
    first = list(temporal.ids.values())
    settle(sqlite_engine, first[:6], "asleep")
    settle(sqlite_engine, first[6:8], JourneyStatus.CLOSED_LOST.value)
    settle(sqlite_engine, first[8:], JourneyStatus.PAUSED.value)

    async def at_bound_again() -> bool:
        return len(temporal.running) == 20 and bound.checks >= 10

    await eventually(at_bound_again, "ten more starts, then a wait")
    assert not run.done()
    settle(sqlite_engine, list(temporal.ids.values())[10:], "asleep")
    result = await asyncio.wait_for(run, timeout=30)
    assert result.started == 25
    assert max(temporal.unsettled_seen) == 9  # never an 11th while 10 were on their way
    assert bound.peak == 10
    assert len(unsettled(sqlite_engine, list(temporal.ids.values()))) == 5


async def test_a_failed_start_frees_its_place(sqlite_engine: Engine) -> None:
    practice_id = practice_with_history(sqlite_engine, 20)
    enroll.plan(sqlite_engine, practice_id, NOW)
    bound = enroll.InFlight(sqlite_engine, limit=3, poll=0.01)
    with pytest.raises(ExceptionGroup):
        await enroll.run(
            sqlite_engine, practice_id, FakeTemporal(fail_after=2), rate=0, in_flight=bound
        )
    assert (bound.starting, len(bound.pending)) == (0, 2)
    with pytest.raises(ValueError, match="max_in_flight"):
        enroll.InFlight(sqlite_engine, limit=0)
    # The options' reading: 0 is no bound, anything else a bound of that size.
    assert enroll.InFlight.at_most(sqlite_engine, 0) is None
    bounded = enroll.InFlight.at_most(sqlite_engine, 7)
    assert bounded is not None and bounded.limit == 7


def test_who_is_due() -> None:
    def rec(
        kind: str, days_ago: int, service: str = "botox", status: str | None = None
    ) -> HistoryRecord:
        return HistoryRecord(
            practice_id=uuid.uuid4(),
            import_id=uuid.uuid4(),
            history_patient_id=uuid.uuid4(),
            key="k",
            kind=kind,
            revenue_line="injectables",
            service=service,
            at=NOW - days_ago * D,
            status=status,
        )

    due = enroll.due_reason
    assert due([rec("treatment", 60)], NOW) is None  # tox recall at 90: not yet
    assert due([rec("treatment", 70)], NOW) == ("recall_due", NOW - 70 * D, "botox")
    assert due([rec("treatment", 120)], NOW) == ("recall_due", NOW - 120 * D, "botox")
    assert due([rec("treatment", 121)], NOW) == ("lapsed", NOW - 121 * D, "botox")
    assert due([rec("treatment", 4 * 365)], NOW) is None  # a stranger by now
    # A series (laser hair removal) lapses when a session is overdue by the track's margin.
    assert due([rec("treatment", 30, "laser_hair_removal")], NOW) is None
    assert due([rec("treatment", 200, "laser_hair_removal")], NOW) is not None
    consult = rec("appointment", 30, status="completed")
    assert due([consult], NOW) == ("quiet_quote", consult.at, "botox")
    assert due([rec("appointment", 5, status="completed")], NOW) is None
    assert due([rec("appointment", 30, status="no_show")], NOW) is None
    # The latest treatment decides, not the consult before it.
    assert due([consult, rec("treatment", 25)], NOW) is None
