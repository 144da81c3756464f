"""Bad input: 422 naming the field, 413 for big bodies, never a 500 — and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import SQLModel

from models.tables import Inquiry, Journey, JourneyEventRow, Patient, Practice
from tests.api.conftest import Api, Tenant

STORED: tuple[type[SQLModel], ...] = (Practice, Patient, Journey, Inquiry, JourneyEventRow)


def counts(api: Api) -> list[int]:
    return [api.count(t) for t in STORED]


def locs(body: dict[str, Any]) -> list[list[Any]]:
    return [item["loc"] for item in body["detail"]]


INQUIRY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bad phone", {"phone": "555-0123"}, "phone"),
    ("phone of letters", {"phone": "call me maybe"}, "phone"),
    ("bad email", {"email": "ada@"}, "email"),
    ("neither phone nor email", {"phone": None, "email": None}, "phone"),
    ("unknown interest", {"interest": "time travel"}, "interest"),
    ("bad timezone", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ("bad state", {"state": "XX"}, "state"),
    ("bad channel", {"channel": "pigeon"}, "channel"),
    ("message too long", {"message": "x" * 2001}, "message"),
    ("unknown field", {"favourite_colour": "blue"}, "favourite_colour"),
    ("consent not a bool", {"consent": {"sms": "yes"}}, "consent"),
    ("NUL byte", {"first_name": "Ada\x00"}, "first_name"),
    ("referrer not a uuid", {"referred_by": "someone"}, "referred_by"),
    ("referrer unknown", {"referred_by": "00000000-0000-4000-8000-000000000000"}, "referred_by"),
]


@pytest.mark.parametrize(
    ("case", "change", "field"), INQUIRY_CASES, ids=[c[0] for c in INQUIRY_CASES]
)
async def test_bad_inquiry_is_422_and_stores_nothing(
    api: Api, tenant: Tenant, case: str, change: dict[str, Any], field: str
) -> None:
    before = counts(api)
    r = await api.inquiry(tenant, **change)
    assert r.status_code == 422, r.text
    assert any(field in loc for loc in locs(r.json())), r.json()
    assert counts(api) == before


PRACTICE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bad timezone", {"timezone": "Eastern"}, "timezone"),
    ("bad state", {"state": "ZZ"}, "state"),
    ("bad url", {"booking_url": "ftp://example.com"}, "booking_url"),
    ("no lines", {"revenue_lines": []}, "revenue_lines"),
    ("unknown line", {"revenue_lines": ["dentistry"]}, "revenue_lines"),
    ("unknown field", {"plan": "gold"}, "plan"),
]


@pytest.mark.parametrize(
    ("case", "change", "field"), PRACTICE_CASES, ids=[c[0] for c in PRACTICE_CASES]
)
async def test_bad_practice_is_422(api: Api, case: str, change: dict[str, Any], field: str) -> None:
    before = counts(api)
    body = {
        "name": "Glow",
        "timezone": "America/Chicago",
        "state": "tx",
        "booking_url": "https://book.example.com",
    } | change
    r = await api.http.post("/v1/practices", headers=api.admin, json=body)
    assert r.status_code == 422, r.text
    assert any(field in loc for loc in locs(r.json())), r.json()
    assert counts(api) == before


EVENT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown event type", {"type": "abducted"}, "type"),
    ("naive datetime", {"type": "arrived", "at": "2030-01-01T10:00:00"}, "at"),
    ("booked without appointment", {"type": "consult_booked"}, "appointment_at"),
    ("rescheduled without appointment", {"type": "appointment_rescheduled"}, "appointment_at"),
    (
        "naive appointment",
        {"type": "consult_booked", "appointment_at": "2030-01-01T10:00:00"},
        "appointment_at",
    ),
    ("negative amount", {"type": "treatment_completed", "amount": -1}, "amount"),
    ("bad channel", {"type": "opted_out", "channel": "fax"}, "channel"),
    ("event id too long", {"type": "arrived", "id": "x" * 201}, "id"),
    ("unknown field", {"type": "arrived", "extra": 1}, "extra"),
    ("out of range", {"type": "arrived", "at": "9999-12-31T23:00:00-05:00"}, "at"),
]


@pytest.mark.parametrize(("case", "change", "field"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
async def test_bad_event_is_422_and_stores_nothing(
    api: Api, tenant: Tenant, case: str, change: dict[str, Any], field: str
) -> None:
    lead = await api.lead(tenant)
    before = counts(api)
    r = await api.event(tenant, lead["journey_id"], **change)
    assert r.status_code == 422, r.text
    assert any(field in loc for loc in locs(r.json())), r.json()
    assert counts(api) == before


async def test_missing_event_id_is_422(api: Api, tenant: Tenant) -> None:
    lead = await api.lead(tenant)
    r = await api.http.post(
        f"/v1/journeys/{lead['journey_id']}/events",
        headers=tenant.headers,
        json={"type": "arrived"},
    )
    assert r.status_code == 422
    assert ["body", "id"] in locs(r.json())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stage": "limbo"}, "stage"),
        ({"status": "asleep"}, "status"),
        ({"limit": 0}, "limit"),
        ({"patient_id": "nope"}, "patient_id"),
        ({"offset": 10**30}, "offset"),
    ],
)
async def test_bad_journey_filters_are_422(
    api: Api, tenant: Tenant, params: dict[str, Any], field: str
) -> None:
    r = await api.http.get("/v1/journeys", headers=tenant.headers, params=params)
    assert r.status_code == 422, r.text
    assert ["query", field] in locs(r.json())


async def test_bad_path_id_is_422(api: Api, tenant: Tenant) -> None:
    r = await api.http.get("/v1/journeys/not-a-uuid", headers=tenant.headers)
    assert r.status_code == 422


async def test_invalid_json_is_422(api: Api, tenant: Tenant) -> None:
    before = counts(api)
    r = await api.http.post(
        "/v1/inquiries",
        headers=tenant.headers | {"Content-Type": "application/json"},
        content=b'{"channel": "form", ',
    )
    assert r.status_code == 422, r.text
    assert counts(api) == before


async def test_wrong_content_type_is_a_client_error(api: Api, tenant: Tenant) -> None:
    r = await api.http.post(
        "/v1/inquiries",
        headers=tenant.headers | {"Content-Type": "text/plain"},
        content=b"channel=form",
    )
    assert r.status_code in (415, 422), r.text


async def test_body_not_an_object_is_422(api: Api, tenant: Tenant) -> None:
    r = await api.http.post("/v1/inquiries", headers=tenant.headers, json=["form"])
    assert r.status_code == 422


async def test_oversized_body_is_413(api: Api, tenant: Tenant) -> None:
    before = counts(api)
    big = "x" * (api.settings.max_body_bytes + 1)
    r = await api.inquiry(tenant, message=big)
    assert r.status_code == 413
    assert r.json() == {"detail": "request body too large"}
    assert counts(api) == before


async def test_oversized_streamed_body_is_413(api: Api, tenant: Tenant) -> None:
    """No Content-Length (chunked): the limit counts the bytes as they arrive."""

    async def chunks() -> Any:
        yield b'{"channel": "form", "message": "'
        for _ in range(api.settings.max_body_bytes // 1000 + 1):
            yield b"y" * 1000
        yield b'"}'

    before = counts(api)
    r = await api.http.post("/v1/inquiries", headers=tenant.headers, content=chunks())
    assert r.status_code == 413
    assert counts(api) == before


async def test_lying_content_length_is_a_client_error(api: Api, tenant: Tenant) -> None:
    r = await api.http.post(
        "/v1/inquiries",
        headers=tenant.headers | {"Content-Length": "abc"},
        content=b"{}",
    )
    assert r.status_code == 400


HOSTILE_INQUIRIES: list[bytes] = [
    rb'{"channel":"form","phone":"+12125550123","interest":"botox","first_name":"\ud800"}',
    rb'{"channel":"form","phone":"+12125550123","interest":"botox","message":"a\u0000b"}',
    rb'{"channel":"form","phone":"+12125550123","interest":"botox","\ud800":1}',
    rb'{"channel":"form","phone":"+12125550123","interest":"botox","source":1e400}',
    b"\xff\xfe{}",
    b"null",
    b"",
]
HOSTILE_EVENTS: list[bytes] = [
    b'{"type":"treatment_completed","id":"a","amount":NaN}',
    b'{"type":"treatment_completed","id":"a","amount":1e400}',
    rb'{"type":"arrived","id":"a\u0000"}',
    rb'{"type":"arrived","id":"b","service":"\ud800"}',
    b'{"type":"arrived","id":"c","at":"0001-01-01T00:00:00+05:00"}',
    b'{"type":"arrived","id":"d","at":1e20}',
]


async def test_hostile_bodies_are_422_on_both_databases(any_api: Api) -> None:
    """Bytes neither database can store, numbers JSON should not have: a 422, never a 500."""
    tenant = await any_api.create_practice()
    lead = await any_api.lead(tenant)
    before = counts(any_api)
    json_headers = tenant.headers | {"Content-Type": "application/json"}
    for body in HOSTILE_INQUIRIES:
        r = await any_api.http.post("/v1/inquiries", headers=json_headers, content=body)
        assert r.status_code == 422, (body, r.text)
    for body in HOSTILE_EVENTS:
        path = f"/v1/journeys/{lead['journey_id']}/events"
        r = await any_api.http.post(path, headers=json_headers, content=body)
        assert r.status_code == 422, (body, r.text)
    assert counts(any_api) == before


async def test_422_does_not_echo_the_input(api: Api, tenant: Tenant) -> None:
    r = await api.inquiry(tenant, phone="+1 999 SECRET")
    assert r.status_code == 422
    assert "SECRET" not in r.text and "input" not in r.json()["detail"][0]
