"""Each adapter against its doc-derived fixtures (fixtures/README.md): what the vendor says,
in our normalized words. No network, no database."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from integrations import fhir, mapping, signatures
from integrations.adapters import parse_webhook
from integrations.model import ApptStatus, Kind, PayloadError, Vendor
from integrations.vendors import boulevard, zenoti
from tests.integrations.vendor_shapes import (
    PHONE,
    fhir_bundle,
    fixture,
    timeline,
)
from tests.integrations.vendor_shapes import (
    boulevard as boulevard_shape,
)
from tests.integrations.vendor_shapes import (
    zenoti as zenoti_shape,
)


def test_boulevard_appointment_created() -> None:
    [event] = boulevard.parse_webhook(fixture("boulevard_appointment_created"), "America/New_York")
    assert event.kind is Kind.APPOINTMENT_BOOKED
    assert event.vendor_event_id == "b6f1d0c2-8a3e-4f5b-9d7c-1e2f3a4b5c6d"
    assert event.appointment_id == "urn:blvd:Appointment:9d2c4b6a-1e3f-4a5b-8c7d-6e5f4a3b2c1d"
    assert event.appointment_at == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    assert event.patient.vendor_id == "urn:blvd:Client:7e5c3a1b-9d8f-4e6c-a4b2-0f1e2d3c4b5a"
    assert event.patient.phone == PHONE
    assert "Tox - Forehead & Glabella" in event.services
    assert event.amount is None  # only a completed (checked-out) visit carries the amount


@pytest.mark.parametrize(
    ("step", "kind", "status"),
    [
        ("rescheduled", Kind.APPOINTMENT_RESCHEDULED, ApptStatus.BOOKED),
        ("arrived", Kind.APPOINTMENT_ARRIVED, ApptStatus.ARRIVED),
        ("treated", Kind.APPOINTMENT_COMPLETED, ApptStatus.COMPLETED),
    ],
)
def test_boulevard_lifecycle(step: str, kind: Kind, status: ApptStatus) -> None:
    [event] = boulevard.parse_webhook(boulevard_shape(step, timeline()))
    assert (event.kind, event.status) == (kind, status)
    if step == "treated":
        assert event.amount == 450.0  # cents in the Admin API


def test_boulevard_no_show_is_a_cancellation_with_that_reason() -> None:
    body = fixture("boulevard_appointment_created")
    body["event"] = "APPOINTMENT_CANCELLED"
    body["data"]["node"] |= {"state": "CANCELLED", "cancellation": {"reason": "NO_SHOW"}}
    [event] = boulevard.parse_webhook(body)
    assert event.kind is Kind.APPOINTMENT_NO_SHOW


def test_boulevard_other_subscriptions_are_ignored_and_bad_bodies_refused() -> None:
    body = fixture("boulevard_appointment_created") | {"event": "ORDER_COMPLETED"}
    assert boulevard.parse_webhook(body) == []
    with pytest.raises(PayloadError):
        boulevard.parse_webhook({"event": "APPOINTMENT_CREATED"})
    with pytest.raises(PayloadError):
        boulevard.parse_webhook({"event": "APPOINTMENT_CREATED", "id": "x", "data": []})


def test_boulevard_admin_token_follows_the_documented_recipe() -> None:
    secret = base64.b64encode(b"k" * 32).decode()
    header = boulevard.admin_token("key-1", secret, "biz-1", now=1_700_000_000)
    payload = "blvd-admin-v1biz-11700000000"
    signature = base64.b64encode(
        hmac.new(b"k" * 32, payload.encode(), hashlib.sha256).digest()
    ).decode()
    assert header == "Basic " + base64.b64encode(f"key-1:{signature}{payload}".encode()).decode()


def test_zenoti_appointment_group_created() -> None:
    [event] = zenoti.parse_webhook(fixture("zenoti_appointment_group_created"), "America/New_York")
    assert event.kind is Kind.APPOINTMENT_BOOKED
    assert event.vendor_event_id == "6390a1b2c3d4e5f601234567#0"
    assert event.appointment_at == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)  # start_time_utc
    assert event.patient.phone == "+12125550123"
    assert event.services[0] == "b7c6d5e4-f3a2-4b1c-8d0e-9f8a7b6c5d4e"


def test_zenoti_local_start_time_is_read_in_the_practice_zone() -> None:
    body = fixture("zenoti_appointment_group_created")
    del body["data"]["appointments"][0]["start_time_utc"]
    [event] = zenoti.parse_webhook(body, "America/New_York")
    assert event.appointment_at == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


def test_zenoti_invoice_closed_is_a_treatment_with_amount() -> None:
    [event] = zenoti.parse_webhook(fixture("zenoti_invoice_closed"))
    assert event.kind is Kind.TREATMENT_COMPLETED
    assert event.amount == 488.0
    assert event.appointment_id == "a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d"
    assert "Botox Cosmetic" in event.services and "SPF 50" not in event.services


def test_zenoti_product_only_invoice_is_not_a_treatment() -> None:
    body = fixture("zenoti_invoice_closed")
    body["data"]["invoice"]["items"] = [body["data"]["invoice"]["items"][1]]
    assert zenoti.parse_webhook(body) == []


def test_zenoti_guest_and_started() -> None:
    [guest] = zenoti.parse_webhook(fixture("zenoti_guest_created"))
    assert guest.kind is Kind.PATIENT_UPSERTED and guest.patient.email
    [started] = zenoti.parse_webhook(zenoti_shape("arrived", timeline()))
    assert started.kind is Kind.APPOINTMENT_ARRIVED


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("proposed", ApptStatus.TENTATIVE),
        ("pending", ApptStatus.TENTATIVE),
        ("waitlist", ApptStatus.TENTATIVE),
        ("booked", ApptStatus.BOOKED),
        ("arrived", ApptStatus.ARRIVED),
        ("checked-in", ApptStatus.ARRIVED),
        ("fulfilled", ApptStatus.COMPLETED),
        ("cancelled", ApptStatus.CANCELLED),
        ("noshow", ApptStatus.NO_SHOW),
        ("entered-in-error", ApptStatus.CANCELLED),
    ],
)
def test_fhir_r4_appointment_statuses(status: str, ours: ApptStatus) -> None:
    bundle = fixture("fhir_r4_appointment_bundle")
    bundle["entry"][0]["resource"]["status"] = status
    [event] = fhir.appointment_events(fhir.resources(bundle))
    assert event.status is ours
    assert event.patient.vendor_id == "pat-77" and event.patient.phone == "(212) 555-0123"
    assert event.vendor_event_id == "Appointment/appt-1001/1"
    assert "TOX20" in event.services


def test_fhir_r4_unknown_status_tells_nothing_and_bad_fields_are_refused_quietly() -> None:
    bundle = fixture("fhir_r4_appointment_bundle")
    bundle["entry"][0]["resource"]["status"] = "on-hold"
    [event] = fhir.appointment_events(fhir.resources(bundle))
    assert event.status is ApptStatus.TENTATIVE
    bundle["entry"][0]["resource"]["start"] = "Ada Lovelace"
    with pytest.raises(PayloadError) as caught:
        fhir.appointment_events(fhir.resources(bundle))
    assert "Ada" not in str(caught.value)


def test_nextech_stu3_bundle() -> None:
    bundle = fixture("nextech_stu3_appointment_bundle")
    [event] = fhir.appointment_events(fhir.resources(bundle, "STU3"), "STU3")
    assert event.status is ApptStatus.BOOKED
    assert event.patient.vendor_id == "8841"
    assert "Botox" in event.services
    assert fhir.last_updated(e["resource"] for e in bundle["entry"]) == datetime(
        2026, 11, 20, 14, 3, 11, tzinfo=UTC
    )


def test_fhir_webhook_accepts_a_bare_appointment() -> None:
    bundle = fhir_bundle("arrived", timeline())
    [event] = parse_webhook(Vendor.FHIR_R4, bundle["entry"][0]["resource"], None)
    assert event.status is ApptStatus.ARRIVED and event.patient.phone is None


def test_service_mapping() -> None:
    service_map = {"TOX20": "botox", "Consult - Surgical": "surgical"}
    assert mapping.resolve(["TOX20"], service_map, None)[1] == "botox"
    assert mapping.resolve(["consult - surgical"], service_map, None)[0] == "surgical"
    assert mapping.resolve(["Laser hair removal"], {}, None)[1] == "laser_hair_removal"
    assert mapping.resolve(["Mystery"], {}, "dermatology") == ("dermatology", None)
    assert mapping.resolve(["Mystery"], {}, None) == (None, None)


def test_signatures() -> None:
    body = b'{"event": "APPOINTMENT_CREATED"}'
    good = signatures.sign("s" * 32, body)
    assert signatures.verify("s" * 32, body, good)
    assert not signatures.verify("s" * 32, body + b" ", good)
    assert not signatures.verify("t" * 32, body, good)
    assert not signatures.verify("s" * 32, body, None)
    assert not signatures.verify("s" * 32, body, "sha256=\udcff")
