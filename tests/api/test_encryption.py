"""THE test of payload encryption: a real journey, driven through the API with a patient's name,
phone and email, then its history read straight from the Temporal server by a client WITHOUT the
codec - what anyone with access to the server (or its database) sees. No PHI anywhere in it;
every payload sealed; ids, search attributes and the task queue opaque."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from runtime.temporal_client import payload_codec
from tests.api.conftest import Api, eventually
from tests.phi import EMAIL, FIRST, LAST, PHONE, assert_run_sealed, raw_client


async def test_temporal_never_sees_the_patient_in_the_clear(
    api: Api, temporal_dev: WorkflowEnvironment
) -> None:
    tenant = await api.create_practice()
    lead = await api.lead(
        tenant,
        first_name=FIRST,
        last_name=LAST,
        phone=PHONE,
        email=EMAIL,
        message=f"Hi, {FIRST} {LAST} here, call me on {PHONE}",
        consent={"sms": True, "email": True},
    )
    await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the first reply")
    # Some events, so the history holds signals, timers, activities and upserts too.
    appointment = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    r = await api.event(
        tenant, lead["journey_id"], type="consult_booked", appointment_at=appointment
    )
    assert r.status_code == 202, r.text
    r = await api.event(tenant, lead["journey_id"], type="patient_replied", channel="sms")
    assert r.status_code == 202, r.text

    async def booked() -> bool:
        journey = await api.journey(tenant, lead["journey_id"])
        return journey["stage"] == "consult_booked"

    await eventually(booked, "the journey at consult_booked")
    workflow_id = (await api.journey(tenant, lead["journey_id"]))["workflow_id"]

    # What the server holds, read with the SDK's default converter: no codec, no key.
    handle = (await raw_client(temporal_dev.client)).get_workflow_handle(workflow_id)
    assert await assert_run_sealed(handle) > 5
    assert (await handle.describe()).typed_search_attributes  # present, and opaque (above)

    # And the key does open them: the journey's input decodes to its ids.
    codec = payload_codec(api.settings)
    assert codec is not None
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [decoded] = await codec.decode(started.input.payloads)
    assert decoded.metadata["encoding"] == b"json/plain"
    assert tenant.id.encode() in decoded.data
