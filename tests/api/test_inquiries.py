"""POST /v1/inquiries end to end: committed, journey started, first reply sent — on SQLite and
on PostgreSQL — plus idempotency and tenant isolation."""

from __future__ import annotations

import asyncio
import uuid

from sqlmodel import Session, select
from temporalio.client import WorkflowExecution
from temporalio.testing import WorkflowEnvironment

from models.tables import Inquiry, Journey, Patient
from runtime.temporal_client import SA_JOURNEY_STAGE
from tests.api.conftest import Api, Tenant, eventually


async def _journey_in_visibility(
    env: WorkflowEnvironment, practice_id: str, workflow_id: str
) -> WorkflowExecution | None:
    async for wf in env.client.list_workflows(f"PracticeId = '{practice_id}'"):
        if wf.id == workflow_id and wf.typed_search_attributes.get(SA_JOURNEY_STAGE) == (
            "speed_to_lead"
        ):
            return wf
    return None


async def test_inquiry_starts_a_journey_and_the_reply_goes_out(
    any_api: Api, temporal_dev: WorkflowEnvironment
) -> None:
    tenant = await any_api.create_practice()
    r = await any_api.inquiry(tenant, external_id="form-1")
    assert r.status_code == 202, r.text
    lead = r.json()
    assert set(lead) == {"inquiry_id", "patient_id", "journey_id", "status"}

    sent = await eventually(lambda: any_api.sent(tenant, lead["patient_id"]), "the first reply")
    assert len(sent) == 1
    assert sent[0]["channel"] == "sms" and sent[0]["journey_id"] == lead["journey_id"]

    journey = await any_api.journey(tenant, lead["journey_id"])
    assert journey["revenue_line"] == "injectables"
    wf = await eventually(
        lambda: _journey_in_visibility(temporal_dev, tenant.id, journey["workflow_id"]),
        "the journey in Temporal visibility at speed_to_lead",
    )
    assert wf is not None and wf.workflow_type == "JourneyWorkflow"

    # The patient row holds normalized contact details; the workflow id holds none of them.
    patient = any_api.get(Patient, lead["patient_id"])
    assert (patient.phone, patient.email) == ("+12125550123", "ada@example.com")
    assert (patient.sms_consent, patient.email_consent) == (True, False)
    # Exactly ids and the line: journey-{practice}-{patient}-{line} (a substring check for "555"
    # would be fooled by a UUID that happens to contain it).
    assert journey["workflow_id"] == (
        f"journey-{tenant.id}-{lead['patient_id']}-{journey['revenue_line']}"
    )
    inquiry = any_api.get(Inquiry, lead["inquiry_id"])
    assert inquiry.status == "journey_started"


async def test_same_external_id_is_one_inquiry_and_one_reply(
    api: Api, tenant: Tenant, temporal_dev: WorkflowEnvironment
) -> None:
    first = await api.lead(tenant, external_id="crm-42")
    again = await api.lead(tenant, external_id="crm-42")
    assert again == first | {"status": again["status"]}
    # The Idempotency-Key header stands in for external_id.
    r1 = await api.http.post(
        "/v1/inquiries",
        headers=tenant.headers | {"Idempotency-Key": "hdr-1"},
        json={"channel": "call", "phone": "+12125550150", "interest": "surgical"},
    )
    r2 = await api.http.post(
        "/v1/inquiries",
        headers=tenant.headers | {"Idempotency-Key": "hdr-1"},
        json={"channel": "call", "phone": "+12125550150", "interest": "surgical"},
    )
    assert r1.status_code == r2.status_code == 202
    assert r1.json()["inquiry_id"] == r2.json()["inquiry_id"]

    sent = await eventually(lambda: api.sent(tenant, first["patient_id"]), "the first reply")
    assert len(sent) == 1
    # Exactly one start signal reached the workflow: the repeat was answered from the database.
    workflow_id = (await api.journey(tenant, first["journey_id"]))["workflow_id"]
    history = await temporal_dev.client.get_workflow_handle(workflow_id).fetch_history()
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals == ["inquiry"]
    assert len(await api.sent(tenant, first["patient_id"])) == 1

    # Same key, different body: a conflict, and nothing new stored.
    before = api.count(Inquiry)
    r = await api.inquiry(tenant, external_id="crm-42", message="something else")
    assert r.status_code == 409
    assert api.count(Inquiry) == before


async def test_concurrent_duplicates_resolve_to_one_inquiry(any_api: Api) -> None:
    tenant = await any_api.create_practice()
    same = await asyncio.gather(
        *(any_api.inquiry(tenant, external_id="race-1", phone="+12125550170") for _ in range(5))
    )
    assert [r.status_code for r in same] == [202] * 5
    assert len({r.json()["inquiry_id"] for r in same}) == 1
    with Session(any_api.engine) as session:
        rows = session.exec(
            select(Patient)
            .where(Patient.practice_id == uuid.UUID(tenant.id))
            .where(Patient.phone == "+12125550170")
        ).all()
        assert len(rows) == 1

    # Same key, different patients: nothing serializes these but the unique constraint, and
    # the losers must see the winner (a 409: their bodies differ), not a 500.
    racing = await asyncio.gather(
        *(
            any_api.inquiry(tenant, external_id="race-2", phone=f"+1212555014{i}", email=None)
            for i in range(5)
        )
    )
    assert sorted(r.status_code for r in racing) == [202, 409, 409, 409, 409]


async def test_same_patient_same_line_shares_the_journey(api: Api, tenant: Tenant) -> None:
    a = await api.lead(tenant, phone="+12125550180", email=None, interest="botox")
    # Matched by phone; a new email is added, consent only ever turned on.
    b = await api.lead(
        tenant,
        phone="212.555.0180",
        email="grace@example.com",
        interest="filler",
        consent={"sms": False, "email": True},
    )
    c = await api.lead(tenant, phone=None, email="GRACE@example.com", interest="surgical")
    assert a["patient_id"] == b["patient_id"] == c["patient_id"]
    assert a["journey_id"] == b["journey_id"] != c["journey_id"]
    patient = api.get(Patient, a["patient_id"])
    assert (patient.sms_consent, patient.email_consent) == (True, True)
    assert patient.email == "grace@example.com"


async def test_a_closed_journey_reopens_for_a_new_inquiry(api: Api, tenant: Tenant) -> None:
    lead = await api.lead(tenant, phone="+12125550190")
    r = await api.event(tenant, lead["journey_id"], type="erase")
    assert r.status_code == 202, r.text

    async def ended() -> bool:
        return (await api.journey(tenant, lead["journey_id"]))["status"] == "erased"

    await eventually(ended, "the journey to end")
    again = await api.lead(tenant, phone="+12125550190")
    assert again["journey_id"] == lead["journey_id"]
    journey = api.get(Journey, lead["journey_id"])
    assert journey.status in ("pending", "active")

    async def restarted() -> bool:
        j = await api.journey(tenant, lead["journey_id"])
        return j["status"] == "active" and j["stage"] == "speed_to_lead"

    await eventually(restarted, "the new run")


async def test_practices_see_only_their_own_data(api: Api, tenant: Tenant) -> None:
    lead = await api.lead(tenant)
    other = await api.create_practice(name="Other Spa")
    h = other.headers
    for path in (
        f"/v1/journeys/{lead['journey_id']}",
        f"/v1/patients/{lead['patient_id']}/messages",
    ):
        r = await api.http.get(path, headers=h)
        assert r.status_code == 404, path
    r = await api.event(other, lead["journey_id"], type="staff_paused")
    assert r.status_code == 404
    r = await api.http.get("/v1/journeys", headers=h, params={"patient_id": lead["patient_id"]})
    assert r.status_code == 200 and r.json()["items"] == []
    # Referring a patient of another practice is a bad field, not a leak.
    r = await api.inquiry(other, referred_by=lead["patient_id"])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "referred_by"]
    # The owner sees it.
    r = await api.http.get(
        "/v1/journeys", headers=tenant.headers, params={"patient_id": lead["patient_id"]}
    )
    assert [j["id"] for j in r.json()["items"]] == [lead["journey_id"]]


async def test_referral_from_a_patient_of_the_practice(api: Api, tenant: Tenant) -> None:
    referrer = await api.lead(tenant, phone="+12125550111", email=None)
    friend = await api.lead(
        tenant, channel="referral", phone="+12125550112", referred_by=referrer["patient_id"]
    )
    assert str(api.get(Patient, friend["patient_id"]).referred_by) == referrer["patient_id"]


async def test_a_line_the_practice_does_not_offer(api: Api) -> None:
    spa = await api.create_practice(revenue_lines=["injectables"])
    before = api.count(Patient)
    r = await api.inquiry(spa, interest="rhinoplasty")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "interest"]
    assert api.count(Patient) == before
