"""Bulk enrollment against the real Temporal dev server and worker: due patients' journeys
start at their stage, a second run starts nobody."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from funnel import enroll
from models.tables import Enrollment, Journey, StageEvent, utcnow
from tests.api.conftest import Api, eventually
from tests.funnel.test_enroll import practice_with_history


async def test_enrollment_starts_real_journeys_once(
    api: Api, temporal_dev: WorkflowEnvironment
) -> None:
    now = utcnow()
    practice_id = practice_with_history(api.engine, 30, now)
    planned = enroll.plan(api.engine, practice_id, now)
    assert planned.planned == 27  # every 10th patient was treated too recently to be due
    starter = enroll.temporal_starter(temporal_dev.client, api.settings)
    ticks: list[int] = []
    result = await enroll.run(api.engine, practice_id, starter, rate=100, progress=ticks.append)
    assert (result.started, result.already_running, result.remaining) == (27, 0, 0)
    assert sum(ticks) == 27

    def first_stages() -> Counter[str] | None:
        with Session(api.engine) as s:
            rows = s.exec(
                select(StageEvent.reason)
                .join(Journey, Journey.id == StageEvent.journey_id)  # type: ignore[arg-type]
                .where(Journey.practice_id == practice_id)
                .where(StageEvent.from_stage == None)  # noqa: E711
            ).all()
        found = Counter(rows)
        return found if sum(found.values()) == 27 else None

    async def probe() -> Counter[str] | None:
        return first_stages()

    found = await eventually(probe, "enrolled journeys recorded")
    assert found == {
        "enrolled: recall due": 9,
        "enrolled: lapsed": 9,
        "enrolled: quote went quiet": 9,
    }
    # The README's staff list queries find them (search attributes: ids, enums, a time).
    client = temporal_dev.client

    def stamp(at: datetime) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    queries = {
        f'PracticeId="{practice_id}" AND JourneyStage="reactivation" '
        'AND ExecutionStatus="Running"': 18,
        f'PracticeId="{practice_id}" AND JourneyStage="rebook" AND RevenueLine="injectables"': 9,
        f'PracticeId="{practice_id}" AND NextActionAt BETWEEN "{stamp(now - timedelta(hours=1))}" '
        f'AND "{stamp(now + timedelta(days=30))}"': 27,
    }
    for query, expected in queries.items():

        async def counted(query: str = query, expected: int = expected) -> bool:
            return (await client.count_workflows(query)).count == expected

        await eventually(counted, f"list query {query}")

    # Running it again enrolls nobody and starts nothing.
    assert enroll.plan(api.engine, practice_id, now).planned == 0
    again = await enroll.run(api.engine, practice_id, starter, rate=100)
    assert (again.started, again.already_running) == (0, 0)
    # A start that reached Temporal but was never recorded is found running, not started twice.
    with Session(api.engine) as s:
        row = s.exec(select(Enrollment).where(Enrollment.practice_id == practice_id)).first()
        assert row is not None
        row.status = "planned"
        s.add(row)
        s.commit()
    resumed = await enroll.run(api.engine, practice_id, starter, rate=100)
    assert (resumed.started, resumed.already_running) == (0, 1)
