"""Journeys started mid-map by bulk enrollment (JourneyInput.start): no inquiry and no instant
reply; the recall counts from the patient's past treatment; a lapsed patient gets the
reactivation campaign. Under the time-skipping server, and replayed afterwards."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer

from models.enums import Channel, EventType, JourneyStatus, RevenueLine, Stage
from models.journey_types import JourneyInput, JourneyResult, JourneyStart
from runtime.temporal_client import data_converter, journey_search_attributes
from tests.conftest import encrypted_settings
from tests.seed import Seeded
from tests.workflows.conftest import Harness
from workflows.journey import JourneyWorkflow

D = timedelta(days=1)


async def start_enrolled(
    h: Harness, seeded: Seeded, start: JourneyStart
) -> WorkflowHandle[JourneyWorkflow, JourneyResult]:
    j = seeded.journey
    handle = await h.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(
            journey_id=str(j.id),
            practice_id=str(j.practice_id),
            patient_id=str(j.patient_id),
            revenue_line=RevenueLine(j.revenue_line),
            # Email only: no send window, so message times are exact.
            channels=[Channel.EMAIL],
            timezone=seeded.practice.timezone,
            start=start,
        ),
        id=j.workflow_id,
        task_queue=h.task_queue,
        search_attributes=journey_search_attributes(
            str(j.practice_id), str(j.patient_id), j.revenue_line, start.stage.value
        ),
    )
    h.started.append(handle.id)
    return handle


async def replays(handle: WorkflowHandle[JourneyWorkflow, JourneyResult]) -> None:
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=[JourneyWorkflow], data_converter=data_converter(encrypted_settings())
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_recall_due_counts_from_the_past_treatment(harness: Harness) -> None:
    seeded = harness.seed(phone=None)
    now = await harness.now()
    treated = now - 80 * D  # tox: heads-up at day 76 (passed), recall due at day 90
    handle = await start_enrolled(
        harness,
        seeded,
        JourneyStart(Stage.REBOOK, "post_treatment", treated, "enrolled: recall due", "botox"),
    )
    await harness.settle()
    [first] = harness.stages(seeded)
    assert (first.from_stage, first.to_stage, first.reason) == (
        None,
        "rebook",
        "enrolled: recall due",
    )
    assert harness.sent(seeded) == []  # no instant reply: nobody asked
    assert harness.tasks(seeded) == []  # and no new-lead task for staff
    journey = harness.journey(seeded)
    assert (journey.stage, journey.status) == ("rebook", "active")
    assert journey.next_action == "recall_due_tox"
    assert journey.next_action_at == treated + 90 * D

    await harness.advance_to(treated + 90 * D + timedelta(minutes=1))
    assert [m.template for m in harness.sent(seeded)] == ["recall_due_tox"]

    # The patient comes back: a treatment starts the next cycle like any journey's.
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, service="botox", amount=420.0)
    await harness.settle()
    assert [s.reason for s in harness.stages(seeded)][-1] == "treatment completed"
    assert harness.journey(seeded).cycle == 1
    await handle.terminate("test over")
    await replays(handle)


async def test_a_lapsed_patient_gets_the_reactivation_campaign(harness: Harness) -> None:
    seeded = harness.seed(phone=None)
    now = await harness.now()
    handle = await start_enrolled(
        harness,
        seeded,
        JourneyStart(Stage.REACTIVATION, "reactivation_lapsed", now, "enrolled: lapsed", "botox"),
    )
    await harness.advance(2 * D)
    assert [m.template for m in harness.sent(seeded)] == ["reactivation_lapsed_tox"]
    await harness.advance(50 * D)
    result = await handle.result()
    assert result.status is JourneyStatus.CLOSED_LOST
    assert [(s.from_stage, s.to_stage) for s in harness.stages(seeded)] == [
        (None, "reactivation"),
        ("reactivation", "reactivation"),
    ]
    await replays(handle)


async def test_a_quiet_quote_is_followed_up(harness: Harness) -> None:
    seeded = harness.seed(phone=None)
    now = await harness.now()
    handle = await start_enrolled(
        harness,
        seeded,
        JourneyStart(
            Stage.REACTIVATION,
            "reactivation_quiet_quote",
            now,
            "enrolled: quote went quiet",
            "botox",
        ),
    )
    await harness.advance(2 * D)
    [sent] = harness.sent(seeded)
    assert sent.template.startswith("reactivation_quote_")
    # Booking from reactivation goes to consult_booked as for any journey.
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=now + 10 * D)
    await harness.settle()
    assert harness.journey(seeded).stage == "consult_booked"
    await handle.terminate("test over")
    await replays(handle)
