"""POST /v1/journeys/{id}/events: persisted, then signalled; idempotent on the event id;
opt-out is patient-wide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from models.tables import JourneyEventRow, Patient
from tests.api.conftest import Api, Tenant, eventually


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


async def _stage_is(api: Api, tenant: Tenant, journey_id: str, stage: str) -> dict[str, Any] | None:
    journey = await api.journey(tenant, journey_id)
    return journey if journey["stage"] == stage else None


async def _speed_to_lead(api: Api, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    lead = await api.lead(tenant, **overrides)
    await eventually(
        lambda: _stage_is(api, tenant, lead["journey_id"], "speed_to_lead"), "speed_to_lead"
    )
    return lead


async def test_consult_booked_moves_the_journey(api: Api, tenant: Tenant) -> None:
    lead = await _speed_to_lead(api, tenant)
    r = await api.event(tenant, lead["journey_id"], type="consult_booked", appointment_at=later(7))
    assert r.status_code == 202, r.text
    assert r.json()["journey_ids"] == [lead["journey_id"]] and not r.json()["duplicate"]
    journey = await eventually(
        lambda: _stage_is(api, tenant, lead["journey_id"], "consult_booked"), "consult_booked"
    )
    assert [(h["from_stage"], h["to_stage"]) for h in journey["stage_history"]] == [
        (None, "inquiry"),
        ("inquiry", "speed_to_lead"),
        ("speed_to_lead", "consult_booked"),
    ]
    assert journey["next_action_at"] is not None
    r = await api.http.get(
        "/v1/journeys", headers=tenant.headers, params={"stage": "consult_booked"}
    )
    assert [j["id"] for j in r.json()["items"]] == [lead["journey_id"]]


async def test_duplicate_event_id_is_delivered_once(api: Api, tenant: Tenant) -> None:
    lead = await _speed_to_lead(api, tenant)
    body = {"type": "consult_booked", "id": "emr-7", "appointment_at": later(3)}
    first = await api.event(tenant, lead["journey_id"], **body)
    again = await api.event(tenant, lead["journey_id"], **body)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicate"] is True
    r = await api.event(tenant, lead["journey_id"], **(body | {"appointment_at": later(4)}))
    assert r.status_code == 409
    journey = await eventually(
        lambda: _stage_is(api, tenant, lead["journey_id"], "consult_booked"), "consult_booked"
    )
    booked = [h for h in journey["stage_history"] if h["to_stage"] == "consult_booked"]
    assert len(booked) == 1
    with Session(api.engine) as session:
        rows = session.exec(
            select(JourneyEventRow).where(JourneyEventRow.event_id == "emr-7")
        ).all()
    assert [row.status for row in rows] == ["delivered"]


async def test_opt_out_is_patient_wide(api: Api, tenant: Tenant) -> None:
    botox = await _speed_to_lead(api, tenant, phone="+12125550160", email=None)
    surgery = await _speed_to_lead(
        api, tenant, phone="+12125550160", email=None, interest="facelift"
    )
    assert botox["patient_id"] == surgery["patient_id"]
    assert botox["journey_id"] != surgery["journey_id"]

    r = await api.event(tenant, botox["journey_id"], type="opted_out", id="stop-1")
    assert r.status_code == 202, r.text
    assert set(r.json()["journey_ids"]) == {botox["journey_id"], surgery["journey_id"]}
    patient = api.get(Patient, botox["patient_id"])
    assert patient.sms_suppressed and patient.email_suppressed

    async def both_opted_out() -> bool:
        statuses = [
            (await api.journey(tenant, j))["status"]
            for j in (botox["journey_id"], surgery["journey_id"])
        ]
        return statuses == ["opted_out", "opted_out"]

    await eventually(both_opted_out, "both journeys to end opted_out")
    journey = await api.journey(tenant, botox["journey_id"])
    assert journey["exit_reason"] == "patient opted out"

    # A retried webhook is still fine; anything new on an ended journey is a conflict.
    r = await api.event(tenant, botox["journey_id"], type="opted_out", id="stop-1")
    assert (r.status_code, r.json()["duplicate"]) == (202, True)
    r = await api.event(tenant, botox["journey_id"], type="arrived")
    assert r.status_code == 409

    # Opting back in is about the patient: it works against an ended journey too.
    r = await api.event(tenant, botox["journey_id"], type="opted_in", id="start-1")
    assert r.status_code == 202, r.text
    patient = api.get(Patient, botox["patient_id"])
    assert not patient.sms_suppressed and not patient.email_suppressed


async def test_opt_in_clears_one_channel(api: Api, tenant: Tenant) -> None:
    lead = await _speed_to_lead(api, tenant)
    r = await api.event(tenant, lead["journey_id"], type="opted_out", channel="email")
    assert r.status_code == 202
    patient = api.get(Patient, lead["patient_id"])
    assert (patient.sms_suppressed, patient.email_suppressed) == (False, True)
    r = await api.event(tenant, lead["journey_id"], type="opted_in", channel="email")
    assert r.status_code == 202
    patient = api.get(Patient, lead["patient_id"])
    assert (patient.sms_suppressed, patient.email_suppressed) == (False, False)
    journey = await api.journey(tenant, lead["journey_id"])
    assert journey["status"] not in ("opted_out",)


async def test_unknown_journey_is_404(api: Api, tenant: Tenant) -> None:
    r = await api.event(tenant, "00000000-0000-4000-8000-000000000000", type="arrived")
    assert r.status_code == 404
