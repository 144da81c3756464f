"""One appointment's life (booked -> rescheduled -> arrived -> treated) in each vendor's shape,
built from the doc-derived fixtures (fixtures/README.md), next to the same step as a body for
POST /v1/journeys/{id}/events: the two must move a journey identically."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
STEPS = ("booked", "rescheduled", "arrived", "treated")
PHONE = "+12125550123"  # the fixtures' patient (fictional)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Timeline:
    """Times relative to now, so the journey's next actions land in the future."""

    now: datetime

    @property
    def first(self) -> datetime:
        return (self.now + timedelta(days=7)).replace(hour=15, minute=0, second=0, microsecond=0)

    @property
    def second(self) -> datetime:
        return self.first + timedelta(days=2)

    def at(self, step: str) -> datetime:
        return (self.now - timedelta(minutes=10 - STEPS.index(step))).replace(microsecond=0)

    def appointment(self, step: str) -> datetime | None:
        return {"booked": self.first, "rescheduled": self.second}.get(step)


def timeline() -> Timeline:
    return Timeline(datetime.now(UTC).replace(microsecond=0))


AMOUNTS = {"boulevard": 450.0, "zenoti": 488.0}


def api_body(vendor: str, step: str, t: Timeline, service: str = "botox") -> dict[str, Any]:
    """The same step through our own API."""
    body: dict[str, Any] = {"at": t.at(step).isoformat()}
    if step == "booked":
        body |= {
            "type": "consult_booked",
            "appointment_at": t.first.isoformat(),
            "service": service,
        }
    elif step == "rescheduled":
        body |= {
            "type": "appointment_rescheduled",
            "appointment_at": t.second.isoformat(),
            "service": service,
        }
    elif step == "arrived":
        body |= {"type": "arrived"}
    else:
        body |= {"type": "treatment_completed", "service": service}
        if vendor in AMOUNTS:
            body["amount"] = AMOUNTS[vendor]
    return body


# ---- Boulevard ---------------------------------------------------------------------------------

BOULEVARD_EVENTS = {
    "booked": ("APPOINTMENT_CREATED", "BOOKED"),
    "rescheduled": ("APPOINTMENT_RESCHEDULED", "BOOKED"),
    "arrived": ("APPOINTMENT_ARRIVED", "ARRIVED"),
    "treated": ("APPOINTMENT_COMPLETED", "FINAL"),
}


def boulevard(step: str, t: Timeline, *, phone: str = PHONE, appt: str = "") -> dict[str, Any]:
    body = fixture("boulevard_appointment_created")
    event, state = BOULEVARD_EVENTS[step]
    body["event"] = event
    body["idempotencyKey"] = f"{body['idempotencyKey']}-{step}{appt}"
    body["timestamp"] = iso(t.at(step))
    node = body["data"]["node"]
    node["state"] = state
    node["id"] += appt
    node["startAt"] = iso(t.second if step != "booked" else t.first)
    node["client"]["mobilePhone"] = phone
    if phone != PHONE:
        node["client"]["id"] += phone[-4:]
        node["client"]["email"] = f"{phone[-4:]}@example.com"
    return body


# ---- Zenoti ------------------------------------------------------------------------------------


def zenoti(step: str, t: Timeline) -> dict[str, Any]:
    if step == "treated":
        body = fixture("zenoti_invoice_closed")
        body["event_timestamp"] = iso(t.at(step))
        return body
    body = fixture("zenoti_appointment_group_created")
    appointment = body["data"]["appointments"][0]
    start = t.first if step == "booked" else t.second
    appointment["start_time_utc"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    appointment["start_time"] = appointment["start_time_utc"]  # (local time: not used when utc)
    body["event_timestamp"] = iso(t.at(step))
    if step == "rescheduled":
        body["id"] += "-moved"
        body["event_type"] = "AppointmentGroup.Status"
    elif step == "arrived":
        body["id"] += "-started"
        body["event_type"] = "Appointment.Started"
        body["event_resource"] = "Appointment"
        body["data"] = {**appointment, "guest": body["data"]["guest"]}
    return body


# ---- FHIR (R4 webhook/polling, STU3 polling) ----------------------------------------------------

FHIR_STATUS = {
    "booked": "booked",
    "rescheduled": "booked",
    "arrived": "checked-in",
    "treated": "fulfilled",
}
STU3_STATUS = FHIR_STATUS | {"arrived": "arrived"}


def fhir_bundle(step: str, t: Timeline, *, stu3: bool = False) -> dict[str, Any]:
    body = fixture("nextech_stu3_appointment_bundle" if stu3 else "fhir_r4_appointment_bundle")
    body = copy.deepcopy(body)
    appointment = body["entry"][0]["resource"]
    appointment["status"] = (STU3_STATUS if stu3 else FHIR_STATUS)[step]
    start = t.first if step == "booked" else t.second
    appointment["start"] = iso(start)
    appointment["end"] = iso(start + timedelta(minutes=30))
    appointment["meta"] = {
        "versionId": str(STEPS.index(step) + 1),
        "lastUpdated": iso(t.at(step)),
    }
    return body
