"""POST /v1/practices and authentication: admin creates, practices use their own key."""

from __future__ import annotations

import hashlib

from models.tables import ApiKey, Practice
from tests.api.conftest import ADMIN_KEY, Api, Tenant


async def test_admin_creates_a_practice_and_its_key_is_shown_once(api: Api) -> None:
    r = await api.http.post(
        "/v1/practices",
        headers=api.admin,
        json={
            "name": "Glow Aesthetics",
            "timezone": "America/Los_Angeles",
            "state": "ca",
            "booking_url": "https://book.example.com/glow",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "CA" and body["review_url"] is None
    assert body["revenue_lines"] == ["surgical", "injectables", "laser_energy", "body_contouring"]
    key = body["api_key"]
    assert len(key) >= 40 and body["api_key_prefix"] == key[:8]
    stored = api.get(ApiKey, body["api_key_id"])
    assert stored.role == "practice_admin" and str(stored.practice_id) == body["id"]
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in stored.model_dump_json()


async def test_only_the_admin_creates_practices(api: Api, tenant: Tenant) -> None:
    body = {
        "name": "Glow",
        "timezone": "America/New_York",
        "state": "NY",
        "booking_url": "https://book.example.com",
    }
    before = api.count(Practice)
    r = await api.http.post("/v1/practices", json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.http.post("/v1/practices", headers=tenant.headers, json=body)
    assert r.status_code == 403
    r = await api.http.post(
        "/v1/practices", headers={"Authorization": "Bearer not-a-key"}, json=body
    )
    assert r.status_code == 401
    assert api.count(Practice) == before


async def test_practice_endpoints_need_a_practice_key(api: Api, tenant: Tenant) -> None:
    lead = await api.lead(tenant)
    paths = [
        ("GET", f"/v1/journeys/{lead['journey_id']}"),
        ("GET", "/v1/journeys"),
        ("GET", f"/v1/patients/{lead['patient_id']}/messages"),
        ("POST", "/v1/inquiries"),
        ("POST", f"/v1/journeys/{lead['journey_id']}/events"),
    ]
    for method, path in paths:
        cases: list[tuple[dict[bytes, bytes], int]] = [
            ({}, 401),
            ({b"Authorization": b"Bearer wrong"}, 401),
            ({b"Authorization": f"Basic {tenant.key}".encode()}, 401),
            ({b"Authorization": "Bearer clé".encode()}, 401),
            ({b"Authorization": f"Bearer {ADMIN_KEY}".encode()}, 403),  # admin is no practice
        ]
        for headers, expected in cases:
            r = await api.http.request(method, path, headers=headers, json={})
            assert r.status_code == expected, (method, path, headers, r.text)
