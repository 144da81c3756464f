"""Webhook vendors end to end (Boulevard, Zenoti, generic FHIR R4): a booked -> rescheduled ->
arrived -> treated sequence in the vendor's shape moves a journey exactly as the same events
through POST /v1/journeys/{id}/events; a duplicate or forged webhook changes nothing; a booking
for a patient we do not know enrols them; with Temporal down nothing is lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, select

from models.tables import (
    EmrInboundEvent,
    Inquiry,
    Journey,
    JourneyEventRow,
    Patient,
    PatientExternalId,
)
from tests.api.conftest import Api, StackFactory, Tenant, eventually, sqlite_url
from tests.api.emr_helpers import (
    PHONE_A,
    create_integration,
    delivered_events,
    post_webhook,
    same_journey,
    twins,
)
from tests.integrations import vendor_shapes as shapes

Shape = Callable[[str, shapes.Timeline], dict[str, Any]]

VENDORS: dict[str, tuple[dict[str, Any], Shape]] = {
    "boulevard": (
        {
            "credentials": {"api_key": "k", "api_secret": "c2VjcmV0", "business_id": "b"},
            "service_map": {"Tox - Forehead & Glabella": "botox"},
        },
        shapes.boulevard,
    ),
    "zenoti": (
        {
            "credentials": {"api_key": "k"},
            "service_map": {"b7c6d5e4-f3a2-4b1c-8d0e-9f8a7b6c5d4e": "botox"},
        },
        shapes.zenoti,
    ),
    "fhir_r4": ({"service_map": {"TOX20": "botox"}}, shapes.fhir_bundle),
}


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize("vendor", list(VENDORS))
async def test_vendor_sequence_moves_the_journey_as_our_api_does(
    api: Api, tenant: Tenant, vendor: str
) -> None:
    config, shape = VENDORS[vendor]
    integration = await create_integration(api, tenant, vendor=vendor, name=vendor, **config)
    assert integration["webhook_secret"] and "credentials" not in integration
    a, b = await twins(api, tenant)
    t = shapes.timeline()
    last_raw = b""
    for n, step in enumerate(shapes.STEPS, start=1):
        last_raw = _raw(shape(step, t))
        r = await post_webhook(api, integration, last_raw)
        assert r.status_code == 200, r.text
        assert r.json() == {"received": 1, "applied": 1, "duplicates": 0}, step
        body = shapes.api_body(vendor, step, t) | {"id": f"api-{step}"}
        r = await api.http.post(
            f"/v1/journeys/{b['journey_id']}/events", headers=tenant.headers, json=body
        )
        assert r.status_code == 202, r.text
        seen = await same_journey(api, tenant, a["journey_id"], b["journey_id"], n)
        if step == "booked":
            assert seen[0] == "consult_booked"
    stages = [h[1] for h in seen[5]]
    assert "consult_booked" in stages and "treatment" in stages

    # The same delivery again: a duplicate, nothing changes.
    r = await post_webhook(api, integration, last_raw)
    assert r.status_code == 200 and r.json()["duplicates"] == 1 and r.json()["applied"] == 0
    # Forged: a body the secret did not sign, or no signature at all.
    forged = _raw(shape("booked", shapes.timeline()) | {"forged": True})
    assert (await post_webhook(api, integration, forged, "sha256=" + "0" * 64)).status_code == 401
    r = await api.http.post(integration["webhook_path"], content=forged)
    assert r.status_code == 401
    assert len(delivered_events(api, a["journey_id"])) == len(shapes.STEPS)

    with Session(api.engine) as session:
        links = session.exec(
            select(PatientExternalId).where(
                PatientExternalId.patient_id == PatientExternalId.patient_id
            )
        ).all()
        assert any(str(link.patient_id) == a["patient_id"] for link in links)

    r = await api.http.get(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
    assert r.json()["events_received"] == len(shapes.STEPS)
    assert integration["webhook_secret"] not in r.text  # shown once, at creation
    assert r.json()["last_event_at"] is not None


async def test_booking_for_an_unknown_patient_enrols_them(api: Api, tenant: Tenant) -> None:
    config, _ = VENDORS["boulevard"]
    integration = await create_integration(api, tenant, vendor="boulevard", name="b", **config)
    body = shapes.boulevard("booked", shapes.timeline(), phone="+12125550177", appt="-new")
    r = await post_webhook(api, integration, _raw(body))
    assert r.status_code == 200 and r.json()["applied"] == 1
    with Session(api.engine) as session:
        inquiry = session.exec(
            select(Inquiry)
            .where(Inquiry.practice_id == Inquiry.practice_id)
            .where(Inquiry.channel == "emr")
        ).all()
        ours = [i for i in inquiry if str(i.practice_id) == tenant.id]
        assert len(ours) == 1 and ours[0].service == "botox"
        journey_id = str(ours[0].journey_id)

    async def booked() -> bool:
        return bool((await api.journey(tenant, journey_id))["stage"] == "consult_booked")

    await eventually(booked, "the enrolled patient's journey is booked")


async def test_unmapped_or_unusable_events_change_nothing(api: Api, tenant: Tenant) -> None:
    integration = await create_integration(
        api,
        tenant,
        vendor="boulevard",
        name="b",
        credentials=VENDORS["boulevard"][0]["credentials"],
    )
    a, _ = await twins(api, tenant)
    body = shapes.boulevard("arrived", shapes.timeline())  # never heard as booked: no journey step?
    body["data"]["node"]["appointmentServices"] = []
    r = await post_webhook(api, integration, _raw(body))
    assert r.status_code == 200
    # A patient we know, an appointment without a service: the patient's live journey hears it.
    assert r.json()["applied"] == 1
    unknown = shapes.boulevard("booked", shapes.timeline(), phone="+12125550166", appt="-x")
    unknown["data"]["node"]["appointmentServices"] = []
    r = await post_webhook(api, integration, _raw(unknown))
    assert r.status_code == 200 and r.json()["applied"] == 0
    with Session(api.engine) as session:
        outcomes = {
            e.outcome
            for e in session.exec(
                select(EmrInboundEvent).where(EmrInboundEvent.source == "webhook")
            ).all()
            if str(e.practice_id) == tenant.id
        }
    assert "unmapped" in outcomes
    r = await post_webhook(api, integration, b"not json")
    assert r.status_code == 422 and "not json" not in r.text.lower().replace("not valid", "")
    assert a["journey_id"]


async def test_unknown_or_other_vendor_integration_is_404(api: Api, tenant: Tenant) -> None:
    integration = await create_integration(
        api, tenant, vendor="zenoti", name="z", credentials={"api_key": "k"}
    )
    raw = _raw(shapes.zenoti("booked", shapes.timeline()))
    wrong = integration["webhook_path"].replace("/zenoti/", "/boulevard/")
    assert (await api.http.post(wrong, content=raw)).status_code == 404
    r = await api.http.delete(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert (await post_webhook(api, integration, raw)).status_code == 404


async def test_temporal_down_loses_nothing(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = sqlite_url(tmp_path_factory.mktemp("emr-down"))
    async with api_stack(url, temporal="127.0.0.1:1", worker=False) as down:
        tenant = await down.create_practice()
        config, _ = VENDORS["boulevard"]
        integration = await create_integration(down, tenant, vendor="boulevard", name="b", **config)
        lead = await down.lead(tenant, phone=PHONE_A, email=None)
        r = await post_webhook(
            down, integration, _raw(shapes.boulevard("booked", shapes.timeline()))
        )
        assert r.status_code == 200 and r.json()["applied"] == 1
        with Session(down.engine) as session:
            rows = session.exec(select(JourneyEventRow)).all()
            journey = session.get(Journey, uuid.UUID(lead["journey_id"]))
        assert [(r.type, r.status) for r in rows] == [("consult_booked", "pending")]
        assert journey is not None and journey.status == "pending"


async def test_guest_updated_fills_in_a_known_patient_and_links_them(
    api: Api, tenant: Tenant
) -> None:
    integration = await create_integration(
        api, tenant, vendor="zenoti", name="z", credentials={"api_key": "k"}
    )
    lead = await api.lead(tenant, phone=PHONE_A, email=None)
    body = shapes.fixture("zenoti_guest_created")
    body["event_type"] = "Guest.Updated"
    r = await post_webhook(api, integration, _raw(body))
    assert r.status_code == 200 and r.json()["applied"] == 1
    with Session(api.engine) as session:
        patient = session.get(Patient, uuid.UUID(lead["patient_id"]))
        assert patient is not None and patient.email == "ada.lovelace@example.com"
        assert patient.first_name == "Ada"  # the lead's own name is never overwritten
        link = session.exec(
            select(PatientExternalId).where(PatientExternalId.patient_id == patient.id)
        ).one()
    assert link.vendor_patient_id == body["data"]["guest"]["id"]
    # A guest we have never heard of is not a lead: nothing is created.
    body["id"] = "other"
    body["data"]["guest"] |= {"id": "g-2", "mobile_phone": None, "email": "new@example.com"}
    r = await post_webhook(api, integration, _raw(body))
    assert r.status_code == 200 and r.json()["applied"] == 0


async def test_zenoti_visit_completed_then_invoiced_is_one_treatment_with_its_amount(
    api: Api, tenant: Tenant
) -> None:
    config, _ = VENDORS["zenoti"]
    integration = await create_integration(api, tenant, vendor="zenoti", name="z", **config)
    lead = await api.lead(tenant, phone=PHONE_A, email=None)
    t = shapes.timeline()
    completed = shapes.zenoti("arrived", t)
    completed |= {"id": completed["id"] + "-done", "event_type": "Appointment.Completed"}
    for body in (shapes.zenoti("booked", t), completed, shapes.zenoti("treated", t)):
        r = await post_webhook(api, integration, _raw(body))
        assert r.status_code == 200, r.text
    with Session(api.engine) as session:
        rows = session.exec(
            select(JourneyEventRow).where(
                JourneyEventRow.journey_id == uuid.UUID(lead["journey_id"])
            )
        ).all()
    treatments = [row.payload for row in rows if row.type == "treatment_completed"]
    assert [(p["service"], p["amount"]) for p in treatments] == [("botox", 488.0)]


async def test_export_shows_emr_records_and_erasure_scrubs_the_treatment(
    api: Api, tenant: Tenant
) -> None:
    config, _ = VENDORS["boulevard"]
    integration = await create_integration(api, tenant, vendor="boulevard", name="b", **config)
    lead = await api.lead(tenant, phone=PHONE_A, email=None)
    t = shapes.timeline()
    r = await post_webhook(api, integration, _raw(shapes.boulevard("booked", t)))
    assert r.json()["applied"] == 1
    path = f"/v1/patients/{lead['patient_id']}"
    export = (await api.http.get(f"{path}/export", headers=tenant.headers)).json()
    [link] = export["emr_links"]
    assert link["integration_id"] == integration["id"] and link["vendor_patient_id"]
    [appointment] = export["emr_appointments"]
    assert appointment["service"] == "botox" and appointment["status"] == "booked"

    assert (await api.http.post(f"{path}/erase", headers=tenant.headers)).status_code == 202
    export = (await api.http.get(f"{path}/export", headers=tenant.headers)).json()
    assert export["emr_appointments"][0]["service"] is None
    # The EMR goes on talking about them: recognised by the link, and ignored.
    r = await post_webhook(api, integration, _raw(shapes.boulevard("arrived", t)))
    assert r.status_code == 200 and r.json()["applied"] == 0


async def test_enrolment_can_be_switched_off(api: Api, tenant: Tenant) -> None:
    config, _ = VENDORS["boulevard"]
    integration = await create_integration(
        api, tenant, vendor="boulevard", name="b", enrol_unknown_patients=False, **config
    )
    assert integration["enrol_unknown_patients"] is False
    body = shapes.boulevard("booked", shapes.timeline(), phone="+12125550155", appt="-off")
    r = await post_webhook(api, integration, _raw(body))
    assert r.status_code == 200 and r.json()["applied"] == 0
    r = await api.http.get("/v1/journeys", headers=tenant.headers)
    assert r.json()["items"] == []
    r = await api.http.patch(
        f"/v1/integrations/{integration['id']}",
        headers=tenant.headers,
        json={"enrol_unknown_patients": True},
    )
    assert r.json()["enrol_unknown_patients"] is True
    body["idempotencyKey"] += "-again"  # the EMR's next delivery about that booking
    r = await post_webhook(api, integration, _raw(body))
    assert r.json()["applied"] == 1
