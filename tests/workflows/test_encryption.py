"""Payload encryption over months of a journey on the time-skipping server: a patient with a
name, phone and email, an instant reply, a consult, a treatment (continue-as-new into a second
run) and the recall months later. Both runs, read from the server without the codec, hold no
PHI and no clear payload; the messages themselves (in the app database) do name the patient,
so PHI was in play the whole way."""

from __future__ import annotations

from models.enums import EventType
from tests.phi import EMAIL, FIRST, LAST, assert_run_sealed, raw_client
from tests.workflows.conftest import Harness
from tests.workflows.test_journey_paths import D, H, at_local


async def test_a_journey_over_months_leaves_no_phi_on_the_server(harness: Harness) -> None:
    seeded = harness.seed(first_name=FIRST, last_name=LAST, phone="+14155550199", email=EMAIL)
    start = await at_local(harness, "America/Los_Angeles", weekday=1, hour=10)
    handle = await harness.start(seeded)
    first_run = handle.result_run_id
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=start + 3 * D)
    await harness.advance(3 * D + H)
    await harness.signal(handle, EventType.ARRIVED)
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, service="tox", amount=450.0)
    await harness.settle()
    await harness.advance(95 * D)  # review ask, recall reminders
    latest_run = (await handle.describe()).run_id
    assert latest_run != first_run, "the treatment should have continued the journey as new"

    bodies = [m.body or "" for m in harness.sent(seeded)]
    assert len(bodies) >= 3 and any(FIRST in b for b in bodies)

    raw = await raw_client(harness.client)
    for run_id in (first_run, latest_run):
        assert await assert_run_sealed(raw.get_workflow_handle(handle.id, run_id=run_id)) > 3
