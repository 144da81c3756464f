"""API keys (create, list without secrets, revoke, rotate), the audit log (one row per access
to patient data, ids only, append-only in the database), and the inquiry rate limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from api.ratelimit import TokenBucketLimiter
from models.tables import ApiKey, AuditEvent
from tests.api.conftest import Api, StackFactory, Tenant, api_settings, sqlite_url


async def _new_key(api: Api, tenant: Tenant, role: str = "staff") -> dict[str, Any]:
    r = await api.http.post(
        "/v1/api-keys", headers=tenant.headers, json={"role": role, "name": "front desk"}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_key_lifecycle(api: Api, tenant: Tenant) -> None:
    created = await _new_key(api, tenant)
    assert created["role"] == "staff" and created["prefix"] == created["api_key"][:8]
    assert (
        await api.http.get("/v1/journeys", headers=_bearer(created["api_key"]))
    ).status_code == 200

    listed = (await api.http.get("/v1/api-keys", headers=tenant.headers)).json()["items"]
    assert {k["id"] for k in listed} >= {created["id"]}
    assert all("api_key" not in k for k in listed)
    stored = api.get(ApiKey, created["id"])
    assert stored.last_used_at is not None and created["api_key"] not in stored.model_dump_json()

    rotated = await api.http.post(f"/v1/api-keys/{created['id']}/rotate", headers=tenant.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["id"] != created["id"] and new["role"] == "staff" and new["name"] == "front desk"
    assert (
        await api.http.get("/v1/journeys", headers=_bearer(created["api_key"]))
    ).status_code == 401
    assert (await api.http.get("/v1/journeys", headers=_bearer(new["api_key"]))).status_code == 200
    again = await api.http.post(f"/v1/api-keys/{created['id']}/rotate", headers=tenant.headers)
    assert again.status_code == 409

    revoked = await api.http.delete(f"/v1/api-keys/{new['id']}", headers=tenant.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await api.http.get("/v1/journeys", headers=_bearer(new["api_key"]))).status_code == 401
    twice = await api.http.delete(f"/v1/api-keys/{new['id']}", headers=tenant.headers)
    assert twice.status_code == 200 and twice.json() == revoked.json()


async def test_the_last_practice_admin_key_cannot_be_revoked(api: Api, tenant: Tenant) -> None:
    keys = (await api.http.get("/v1/api-keys", headers=tenant.headers)).json()["items"]
    (admin_key,) = [k for k in keys if k["role"] == "practice_admin"]
    r = await api.http.delete(f"/v1/api-keys/{admin_key['id']}", headers=tenant.headers)
    assert r.status_code == 409
    second = await _new_key(api, tenant, role="practice_admin")
    r = await api.http.delete(f"/v1/api-keys/{admin_key['id']}", headers=tenant.headers)
    assert r.status_code == 200
    assert (await api.http.get("/v1/api-keys", headers=tenant.headers)).status_code == 401
    assert (
        await api.http.get("/v1/api-keys", headers=_bearer(second["api_key"]))
    ).status_code == 200


async def test_every_access_to_patient_data_is_audited(api: Api, tenant: Tenant) -> None:
    staff = await _new_key(api, tenant)
    lead = await api.lead(tenant, first_name="Audrina", message="about my nose")
    journey, patient = lead["journey_id"], lead["patient_id"]
    await api.http.get(f"/v1/journeys/{journey}", headers=_bearer(staff["api_key"]))
    await api.http.get(f"/v1/patients/{patient}/messages", headers=_bearer(staff["api_key"]))
    await api.event(tenant, journey, type="staff_paused")
    await api.http.get(f"/v1/patients/{patient}/export", headers=tenant.headers)

    r = await api.http.get("/v1/audit", headers=tenant.headers, params={"limit": 500})
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    actions = [(row["action"], row["resource_id"]) for row in rows]
    for expected in [
        ("inquiry.create", lead["inquiry_id"]),
        ("journey.read", journey),
        ("patient.messages.read", patient),
        ("journey.event.create", journey),
        ("patient.export", patient),
        ("api_key.create", staff["id"]),
    ]:
        assert expected in actions, expected
    staff_read = next(row for row in rows if row["action"] == "journey.read")
    assert staff_read["actor_key_id"] == staff["id"] and staff_read["actor_role"] == "staff"
    assert staff_read["ip"] == "127.0.0.1" and staff_read["request_id"]
    assert "Audrina" not in r.text and "nose" not in r.text

    only = await api.http.get(
        "/v1/audit",
        headers=tenant.headers,
        params={"action": "patient.export", "resource_id": patient},
    )
    assert [row["action"] for row in only.json()["items"]] == ["patient.export"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = await api.http.get("/v1/audit", headers=tenant.headers, params={"from": future})
    assert empty.json()["items"] == []

    other = await api.create_practice()
    theirs = await api.http.get("/v1/audit", headers=other.headers)
    assert all(row["resource_id"] != patient for row in theirs.json()["items"])


async def test_the_database_refuses_to_change_audit_rows(any_api: Api) -> None:
    tenant = await any_api.create_practice()
    await any_api.lead(tenant)
    with Session(any_api.engine) as session:
        row = session.exec(select(AuditEvent)).first()
        assert row is not None
    for statement in (
        sa.update(AuditEvent).values(action="tampered"),
        sa.delete(AuditEvent),
    ):
        with pytest.raises(DBAPIError), any_api.engine.begin() as conn:
            conn.execute(statement)


async def test_audit_ip_comes_from_x_forwarded_for_only_when_trusted(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "X-Request-ID": "req-42"}
    url = sqlite_url(tmp_path_factory.mktemp("proxy"))
    async with api_stack(url, worker=False) as api:
        tenant = await api.create_practice()
        seen = []
        for trusted in (False, True):
            api.app.state.settings.trust_proxy_headers = trusted
            await api.http.get("/v1/journeys", headers=tenant.headers | headers)
            rows = (await api.http.get("/v1/audit", headers=tenant.headers)).json()["items"]
            listing = [r for r in rows if r["action"] == "journey.list"][-1]
            assert listing["request_id"] == "req-42"
            seen.append(listing["ip"])
        assert seen == ["127.0.0.1", "203.0.113.9"]


def test_token_bucket_refills_at_its_rate() -> None:
    limiter = TokenBucketLimiter(rate_per_minute=2)
    assert limiter.take("k", now=0.0) == 0 and limiter.take("k", now=0.0) == 0
    assert limiter.take("k", now=0.0) == pytest.approx(30.0)
    assert limiter.take("other", now=0.0) == 0  # buckets are per key
    assert limiter.take("k", now=30.0) == 0


async def test_inquiries_are_rate_limited_per_key_and_per_ip(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = sqlite_url(tmp_path_factory.mktemp("ratelimit"))
    async with api_stack(url, worker=False) as api:
        limiters = api.app.state.inquiry_limiters
        limiters["key"] = TokenBucketLimiter(2)
        limiters["ip"] = TokenBucketLimiter(3)
        first, second = await api.create_practice(), await api.create_practice()

        def body() -> dict[str, Any]:
            return {"email": f"{uuid.uuid4().hex}@example.com"}

        assert (await api.inquiry(first, **body())).status_code == 202
        assert (await api.inquiry(first, **body())).status_code == 202
        limited = await api.inquiry(first, **body())
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert (await api.inquiry(second, **body())).status_code == 202  # its own key budget
        assert (await api.inquiry(second, **body())).status_code == 429  # same IP: 3 a minute
        unknown = await api.http.post(
            "/v1/inquiries", headers=_bearer("nope"), json={"channel": "form"}
        )
        assert unknown.status_code == 401


def test_trusted_proxy_setting_is_off_by_default() -> None:
    assert api_settings("sqlite://", "x", "q").trust_proxy_headers is False
