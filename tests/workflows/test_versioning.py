"""Track versions: a journey freezes its practice's track when a cycle starts, so an edit made
while it sleeps applies from its next cycle, never in the middle of one."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session

from models.enums import EventType, RevenueLine
from models.tables import PracticeLibrary
from tests.workflows.conftest import Harness
from workflows.journey import JourneyWorkflow

D = timedelta(days=1)


def edit_botox_recall(h: Harness, practice_id: uuid.UUID, days: int) -> None:
    with Session(h.engine) as session:
        session.add(
            PracticeLibrary(
                practice_id=practice_id,
                revision=1,
                services={"botox": {"recall_days": days, "min_interval_days": days}},
            )
        )
        session.commit()


async def test_an_edit_applies_from_the_next_cycle(harness: Harness) -> None:
    seeded = harness.seed()
    handle = await harness.start(seeded, service="botox")
    first = await harness.now()
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, "t1", at=first, service="botox")
    await harness.settle()
    edit_botox_recall(harness, seeded.practice.id, 120)  # while the journey sleeps

    await harness.advance(95 * D)
    recalls = [m for m in harness.sent(seeded) if m.template == "recall_due_tox"]
    assert len(recalls) == 1 and recalls[0].sent_at is not None
    # This cycle started before the edit: its recall is still due at day 90.
    assert 90 * D <= recalls[0].sent_at - first < 91 * D

    second = await harness.now()
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, "t2", at=second, service="botox")
    await harness.advance(125 * D)
    recalls = [m for m in harness.sent(seeded) if m.template == "recall_due_tox"]
    assert len(recalls) == 2 and recalls[1].sent_at is not None
    assert 120 * D <= recalls[1].sent_at - second < 121 * D  # the new cycle runs the edit
    state = await handle.query(JourneyWorkflow.state)
    assert any("track injectables.tox version 2.1" in line for line in state.history)


async def test_the_referral_ask_carries_the_patients_link(harness: Harness) -> None:
    seeded = harness.seed()
    handle = await harness.start(seeded, service="botox")
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, service="botox")
    await harness.advance(22 * D)
    [referral] = [m for m in harness.sent(seeded) if m.template == "referral_ask"]
    # The booking page hands `ref` back as the friend's inquiry's `referred_by`.
    assert f"https://book.example.com/glow?ref={seeded.patient.id}" in (referral.body or "")


async def test_a_reply_after_surgery_goes_to_staff_as_a_care_concern(harness: Harness) -> None:
    seeded = harness.seed(line=RevenueLine.SURGICAL)
    handle = await harness.start(seeded, service="rhinoplasty")
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, service="rhinoplasty")
    await harness.advance(2 * D)
    await harness.signal(handle, EventType.PATIENT_REPLIED, channel="sms")
    await harness.advance(8 * D)
    assert "post_op_reply" in harness.tasks(seeded)
    # Care check-ins continue (a reply pauses marketing, not care).
    sent = [m.template for m in harness.sent(seeded)]
    assert sent[-2:] == ["post_op_nose_d1", "post_op_w1"]
