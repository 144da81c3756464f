"""Zenoti: appointment, guest and invoice webhooks in, the REST API (v1) for look-ups.

Built from Zenoti's public documentation (docs/integrations.md says what a sandbox must confirm):
every webhook body is `{id, event_id, event_schema, event_resource, event_type, event_timestamp,
data}`; the REST API takes `Authorization: apikey <key>`. Appointment times without a zone are
the center's local time: read in the practice's zone."""

from __future__ import annotations

from typing import Any

import httpx

from integrations.model import ApptStatus, Kind, NormalizedEvent, PatientRef, PayloadError
from integrations.vendors.common import obj, text, when

DEFAULT_URL = "https://api.zenoti.com"

# Appointment status, as a name or Zenoti's numeric code.
STATUS: dict[str, ApptStatus] = {
    "new": ApptStatus.BOOKED,
    "booked": ApptStatus.BOOKED,
    "confirm": ApptStatus.BOOKED,
    "confirmed": ApptStatus.BOOKED,
    "checkin": ApptStatus.ARRIVED,
    "checked_in": ApptStatus.ARRIVED,
    "started": ApptStatus.ARRIVED,
    "closed": ApptStatus.COMPLETED,
    "completed": ApptStatus.COMPLETED,
    "cancelled": ApptStatus.CANCELLED,
    "canceled": ApptStatus.CANCELLED,
    "deleted": ApptStatus.CANCELLED,
    "noshow": ApptStatus.NO_SHOW,
    "no_show": ApptStatus.NO_SHOW,
    "0": ApptStatus.BOOKED,
    "4": ApptStatus.BOOKED,
    "2": ApptStatus.ARRIVED,
    "1": ApptStatus.COMPLETED,
    "-1": ApptStatus.CANCELLED,
    "-2": ApptStatus.NO_SHOW,
}
STATUS_KIND = {
    ApptStatus.BOOKED: Kind.APPOINTMENT_OBSERVED,
    ApptStatus.ARRIVED: Kind.APPOINTMENT_ARRIVED,
    ApptStatus.COMPLETED: Kind.APPOINTMENT_COMPLETED,
    ApptStatus.CANCELLED: Kind.APPOINTMENT_CANCELLED,
    ApptStatus.NO_SHOW: Kind.APPOINTMENT_NO_SHOW,
}


def _status(value: Any) -> ApptStatus:
    key = (text(value) or "").strip().lower().replace(" ", "_").replace("-", "_")
    return STATUS.get(key, ApptStatus.TENTATIVE)


def _guest(node: dict[str, Any]) -> PatientRef:
    phone = node.get("mobile_phone") or node.get("mobile")
    if isinstance(phone, dict):
        number = text(phone.get("number"))
        code = text(phone.get("country_code"))
        phone = f"+{code}{number}" if number and code else number
    return PatientRef(
        vendor_id=text(node.get("id") or node.get("guest_id")),
        first_name=text(node.get("first_name")),
        last_name=text(node.get("last_name")),
        phone=text(phone),
        email=text(node.get("email")),
    )


def _service_names(item: dict[str, Any]) -> list[str]:
    service = item.get("service") or item.get("item") or {}
    if not isinstance(service, dict):
        return []
    return [v for v in (text(service.get("id")), text(service.get("name"))) if v]


def _appointment(
    event_id: str, kind: Kind, item: dict[str, Any], guest: PatientRef, at: Any, tz: str | None
) -> NormalizedEvent:
    appointment_id = text(item.get("appointment_id") or item.get("id"))
    if appointment_id is None:
        raise PayloadError("Zenoti appointment has no appointment_id")
    start = item.get("start_time_utc") or item.get("start_time")
    status = _status(item.get("status")) if "status" in item else ApptStatus.BOOKED
    return NormalizedEvent(
        kind=kind,
        vendor_event_id=event_id,
        patient=guest,
        occurred_at=when(at),
        appointment_id=appointment_id,
        appointment_at=when(start, tz if "start_time_utc" not in item else "UTC"),
        status=status,
        services=_service_names(item),
    )


def parse_webhook(body: dict[str, Any], tz: str | None = None) -> list[NormalizedEvent]:
    event_id = text(body.get("id"))
    event_type = text(body.get("event_type"))
    if event_id is None or event_type is None:
        raise PayloadError("Zenoti webhook needs id and event_type")
    data = obj(body.get("data"), "data")
    at = body.get("event_timestamp")
    if event_type in ("Guest.Created", "Guest.Updated"):
        node = obj(data.get("guest") or data, "data.guest")
        return [NormalizedEvent(Kind.PATIENT_UPSERTED, event_id, _guest(node), when(at))]
    if event_type == "Invoice.Closed":
        invoice = obj(data.get("invoice") or data, "data.invoice")
        guest = _guest(obj(invoice.get("guest"), "data.invoice.guest"))
        items = [i for i in invoice.get("items") or [] if isinstance(i, dict)]
        services = [
            n for i in items if (i.get("type") or "Service") == "Service" for n in _service_names(i)
        ]
        prices = invoice.get("total_price")
        total = prices.get("sum_total") if isinstance(prices, dict) else None
        appointment_id = next(
            (text(i.get("appointment_id")) for i in items if i.get("appointment_id")), None
        )
        if not services:
            return []  # a product, gift card or membership sale: no treatment
        return [
            NormalizedEvent(
                kind=Kind.TREATMENT_COMPLETED,
                vendor_event_id=event_id,
                patient=guest,
                occurred_at=when(at),
                appointment_id=appointment_id,
                services=services,
                amount=float(total)
                if isinstance(total, (int, float)) and not isinstance(total, bool) and total >= 0
                else None,
                invoice_id=text(invoice.get("id")),
            )
        ]
    if event_type in ("AppointmentGroup.Created", "AppointmentGroup.Status"):
        guest = _guest(obj(data.get("guest"), "data.guest"))
        appointments = [a for a in data.get("appointments") or [] if isinstance(a, dict)]
        events = []
        for n, item in enumerate(appointments):
            status = _status(item.get("status")) if "status" in item else ApptStatus.BOOKED
            kind = (
                Kind.APPOINTMENT_BOOKED
                if event_type.endswith("Created")
                else STATUS_KIND.get(status, Kind.APPOINTMENT_OBSERVED)
            )
            # One webhook, several appointments: each gets its own stable id.
            events.append(_appointment(f"{event_id}#{n}", kind, item, guest, at, tz))
        return events
    if event_type in ("Appointment.Started", "Appointment.Completed"):
        item = obj(data.get("appointment") or data, "data.appointment")
        guest = _guest(obj(item.get("guest") or data.get("guest"), "data.guest"))
        kind = (
            Kind.APPOINTMENT_ARRIVED
            if event_type.endswith("Started")
            else (Kind.APPOINTMENT_COMPLETED)
        )
        event = _appointment(event_id, kind, item, guest, at, tz)
        # Zenoti closes an invoice for every visit: that carries the amount, so it is the one
        # that tells the journey of the treatment.
        event.awaits_invoice = kind is Kind.APPOINTMENT_COMPLETED
        return [event]
    return []  # memberships, packages, classes, employees: not journey events


class ZenotiClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str | None, creds: dict[str, Any]):
        self._http = http
        self._url = (base_url or DEFAULT_URL).rstrip("/")
        self._headers = {"Authorization": f"apikey {creds['api_key']}"}

    async def probe(self) -> None:
        r = await self._http.get(f"{self._url}/v1/centers", headers=self._headers)
        r.raise_for_status()

    async def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        r = await self._http.get(
            f"{self._url}/v1/appointments/{appointment_id}", headers=self._headers
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    async def find_or_create_guest(
        self,
        center_id: str,
        phone: str | None,
        email: str | None,
        first: str | None,
        last: str | None,
    ) -> tuple[str, bool]:
        """(guest id, created). Search by phone, then email; else create in the center."""
        for key, value in (("phone", phone), ("email", email)):
            if not value:
                continue
            r = await self._http.get(
                f"{self._url}/v1/guests/search",
                params={"center_id": center_id, key: value},
                headers=self._headers,
            )
            r.raise_for_status()
            guests = r.json().get("guests") or []
            if guests and isinstance(guests[0], dict) and guests[0].get("id"):
                return str(guests[0]["id"]), False
        personal: dict[str, Any] = {"first_name": first, "last_name": last, "email": email}
        if phone and phone.startswith("+1"):
            personal["mobile_phone"] = {"country_code": 1, "number": phone[2:]}
        r = await self._http.post(
            f"{self._url}/v1/guests",
            json={"center_id": center_id, "personal_info": personal},
            headers=self._headers,
        )
        r.raise_for_status()
        created = r.json().get("id")
        if not isinstance(created, str):
            raise RuntimeError("Zenoti guest create answered without an id")
        return created, True
