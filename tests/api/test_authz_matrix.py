"""Every endpoint x every caller x own/other practice, with the exact status expected.

The expectation is derived from api/authz.POLICY in one place (`expected`), and the table below
must name every route the app serves: a new endpoint without a row fails
`test_every_route_is_in_the_matrix`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.authz import (
    PUBLIC_ROUTES,
    SIGNATURE_AUTHENTICATED_PREFIXES,
    SIGNED_ROUTES,
    Permission,
    allowed,
)
from models.enums import Role
from tests.api.conftest import ADMIN_KEY, Api, StackFactory, Tenant, sqlite_url

# Open by design: health, metrics (no PHI, no practice ids; METRICS_TOKEN closes it: see
# tests/api/test_metrics.py) and docs. Webhooks take no API key: their signature is checked per
# integration (tests/api/test_emr_webhooks.py proves a missing or forged one is a 401).
UNGUARDED = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/openapi.json",
    "/redoc",
}
UNGUARDED_PREFIXES: tuple[str, ...] = SIGNATURE_AUTHENTICATED_PREFIXES

CALLERS = ("admin", "practice_admin", "staff", "integration", "revoked", "none")


@dataclass
class Practice:
    tenant: Tenant
    keys: dict[str, str]  # caller -> bearer secret (practice keys)
    patient_id: str
    journey_id: str


@dataclass
class World:
    api: Api
    own: Practice
    other: Practice

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "none":
            return {}
        if caller == "admin":
            return {"Authorization": f"Bearer {ADMIN_KEY}"}
        return {"Authorization": f"Bearer {self.own.keys[caller]}"}


async def _key(api: Api, tenant: Tenant, role: str) -> dict[str, Any]:
    r = await api.http.post(
        "/v1/api-keys", headers=tenant.headers, json={"role": role, "name": f"{role} key"}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _practice(api: Api) -> Practice:
    tenant = await api.create_practice()
    keys = {"practice_admin": tenant.key}
    for role in ("staff", "integration"):
        keys[role] = (await _key(api, tenant, role))["api_key"]
    revoked = await _key(api, tenant, "staff")
    r = await api.http.delete(f"/v1/api-keys/{revoked['id']}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    keys["revoked"] = revoked["api_key"]
    lead = await api.lead(tenant, phone=None, email=f"{uuid.uuid4().hex[:8]}@example.com")
    return Practice(tenant, keys, lead["patient_id"], lead["journey_id"])


@pytest.fixture(scope="module")
async def world(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with api_stack(sqlite_url(tmp_path_factory.mktemp("authz"))) as api:
        yield World(api, await _practice(api), await _practice(api))


# ---- the matrix ------------------------------------------------------------------------------

Request = tuple[str, dict[str, Any] | str | None]  # (path, json body, or a text body)
Build = Callable[[World, Practice], Awaitable[Request]]


def _inquiry_body() -> dict[str, Any]:
    return {
        "channel": "form",
        "first_name": "Matrix",
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "interest": "botox",
    }


def _practice_body() -> dict[str, Any]:
    return {
        "name": "Matrix",
        "timezone": "America/New_York",
        "state": "NY",
        "booking_url": "https://book.example.com/m",
    }


async def _fresh_patient(world: World, target: Practice) -> str:
    lead = await world.api.lead(target.tenant, phone=None, email=f"{uuid.uuid4().hex}@example.com")
    patient_id: str = lead["patient_id"]
    return patient_id


async def _fresh_key(world: World, target: Practice) -> str:
    key_id: str = (await _key(world.api, target.tenant, "staff"))["id"]
    return key_id


async def _static(path: str, body: dict[str, Any] | str | None = None) -> Request:
    return path, body


@dataclass(frozen=True)
class Row:
    permission: Permission
    ok: int  # the status a permitted caller gets on its own practice
    build: Build
    scoped: bool = True  # the path names a practice's resource (so "other" is a 404)


MATRIX: dict[tuple[str, str], Row] = {
    ("POST", "/v1/practices"): Row(
        Permission.PRACTICE_CREATE,
        201,
        lambda w, p: _static("/v1/practices", _practice_body()),
        scoped=False,
    ),
    ("POST", "/v1/inquiries"): Row(
        Permission.INQUIRY_CREATE,
        202,
        lambda w, p: _static("/v1/inquiries", _inquiry_body()),
        scoped=False,
    ),
    ("GET", "/v1/journeys"): Row(
        Permission.JOURNEY_READ, 200, lambda w, p: _static("/v1/journeys"), scoped=False
    ),
    ("GET", "/v1/journeys/{journey_id}"): Row(
        Permission.JOURNEY_READ, 200, lambda w, p: _static(f"/v1/journeys/{p.journey_id}")
    ),
    ("POST", "/v1/journeys/{journey_id}/events"): Row(
        Permission.JOURNEY_EVENT_CREATE,
        202,
        lambda w, p: _static(
            f"/v1/journeys/{p.journey_id}/events",
            {"type": "patient_replied", "id": f"ev-{uuid.uuid4()}", "channel": "email"},
        ),
    ),
    ("GET", "/v1/patients/{patient_id}/messages"): Row(
        Permission.PATIENT_MESSAGES_READ,
        200,
        lambda w, p: _static(f"/v1/patients/{p.patient_id}/messages"),
    ),
    ("GET", "/v1/patients/{patient_id}/conversation"): Row(
        Permission.PATIENT_MESSAGES_READ,
        200,
        lambda w, p: _static(f"/v1/patients/{p.patient_id}/conversation"),
    ),
    ("POST", "/v1/patients/{patient_id}/messages"): Row(
        Permission.PATIENT_MESSAGE_SEND,
        202,
        lambda w, p: _static(f"/v1/patients/{p.patient_id}/messages", {"body": "Hello"}),
    ),
    ("GET", "/v1/patients/{patient_id}/export"): Row(
        Permission.PATIENT_EXPORT, 200, lambda w, p: _static(f"/v1/patients/{p.patient_id}/export")
    ),
    ("POST", "/v1/patients/{patient_id}/erase"): Row(
        Permission.PATIENT_ERASE,
        202,
        lambda w, p: _erase(w, p),
    ),
    ("POST", "/v1/api-keys"): Row(
        Permission.API_KEY_MANAGE,
        201,
        lambda w, p: _static("/v1/api-keys", {"role": "staff", "name": "made in the matrix"}),
        scoped=False,
    ),
    ("GET", "/v1/api-keys"): Row(
        Permission.API_KEY_MANAGE, 200, lambda w, p: _static("/v1/api-keys"), scoped=False
    ),
    ("DELETE", "/v1/api-keys/{key_id}"): Row(
        Permission.API_KEY_MANAGE, 200, lambda w, p: _key_path(w, p, "")
    ),
    ("POST", "/v1/api-keys/{key_id}/rotate"): Row(
        Permission.API_KEY_MANAGE, 201, lambda w, p: _key_path(w, p, "/rotate")
    ),
    ("GET", "/v1/audit"): Row(
        Permission.AUDIT_READ, 200, lambda w, p: _static("/v1/audit"), scoped=False
    ),
    ("POST", "/v1/practices/{practice_id}/integrations"): Row(
        Permission.INTEGRATION_MANAGE,
        201,
        lambda w, p: _static(f"/v1/practices/{p.tenant.id}/integrations", _integration_body()),
    ),
    ("GET", "/v1/practices/{practice_id}/integrations"): Row(
        Permission.INTEGRATION_MANAGE,
        200,
        lambda w, p: _static(f"/v1/practices/{p.tenant.id}/integrations"),
    ),
    ("GET", "/v1/integrations/{integration_id}"): Row(
        Permission.INTEGRATION_MANAGE, 200, lambda w, p: _integration_path(w, p, "")
    ),
    ("PATCH", "/v1/integrations/{integration_id}"): Row(
        Permission.INTEGRATION_MANAGE, 200, lambda w, p: _integration_patch(w, p)
    ),
    ("DELETE", "/v1/integrations/{integration_id}"): Row(
        Permission.INTEGRATION_MANAGE, 200, lambda w, p: _integration_path(w, p, "")
    ),
    ("POST", "/v1/integrations/{integration_id}/test"): Row(
        Permission.INTEGRATION_MANAGE, 200, lambda w, p: _integration_path(w, p, "/test")
    ),
    # The codec server is not practice-scoped: it holds keys, not rows.
    ("POST", "/codec/encode"): Row(
        Permission.HISTORY_DECODE,
        200,
        lambda w, p: _static("/codec/encode", {"payloads": []}),
        scoped=False,
    ),
    ("POST", "/codec/decode"): Row(
        Permission.HISTORY_DECODE,
        200,
        lambda w, p: _static("/codec/decode", {"payloads": []}),
        scoped=False,
    ),
    # The library: the key's practice is the scope, no practice id in the path.
    ("GET", "/v1/library"): Row(
        Permission.LIBRARY_READ, 200, lambda w, p: _static("/v1/library"), scoped=False
    ),
    ("GET", "/v1/tracks/{track_id}/preview"): Row(
        Permission.LIBRARY_READ,
        200,
        lambda w, p: _static("/v1/tracks/injectables.tox/preview?events=treated@2:botox"),
        scoped=False,
    ),
    ("PUT", "/v1/library/settings"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static("/v1/library/settings", {"show_treatment_names": False}),
        scoped=False,
    ),
    ("PUT", "/v1/library/services/{service_key}"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static("/v1/library/services/filler", {"recall_days": 240}),
        scoped=False,
    ),
    ("DELETE", "/v1/library/services/{service_key}"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static("/v1/library/services/filler"),
        scoped=False,
    ),
    ("PUT", "/v1/library/tracks/{track_id}"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static(
            "/v1/library/tracks/injectables.filler", {"disabled": ["post_treatment.recall_last"]}
        ),
        scoped=False,
    ),
    ("DELETE", "/v1/library/tracks/{track_id}"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static("/v1/library/tracks/injectables.filler"),
        scoped=False,
    ),
    ("PUT", "/v1/library/templates/{template_id}"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static(
            "/v1/library/templates/recall_last",
            {"sms": "Hi {{ first_name }}! " + BOOK_STOP, "subject": "Hello"},
        ),
        scoped=False,
    ),
    ("DELETE", "/v1/library/templates/{template_id}"): Row(
        Permission.LIBRARY_EDIT,
        200,
        lambda w, p: _static("/v1/library/templates/recall_last"),
        scoped=False,
    ),
    # The lead-to-revenue map (issue 7): the key's practice is the scope.
    ("GET", "/v1/funnel"): Row(
        Permission.FUNNEL_READ, 200, lambda w, p: _static("/v1/funnel"), scoped=False
    ),
    ("GET", "/v1/dashboard"): Row(
        Permission.FUNNEL_READ, 200, lambda w, p: _static("/v1/dashboard"), scoped=False
    ),
    ("POST", "/v1/dashboard/links"): Row(
        Permission.FUNNEL_READ, 201, lambda w, p: _static("/v1/dashboard/links"), scoped=False
    ),
    ("POST", "/v1/history/imports"): Row(
        Permission.HISTORY_IMPORT,
        201,
        lambda w, p: _static(
            "/v1/history/imports?kind=treatments",
            "patient_id,performed_at,interest,amount\nm-1,2025-01-02,botox,400\n",
        ),
        scoped=False,
    ),
}
BOOK_STOP = "Book: {{ booking_url }} Reply STOP to opt out."


def _integration_body() -> dict[str, Any]:
    return {"vendor": "fhir_r4", "name": "Matrix FHIR", "service_map": {"Tox": "botox"}}


async def _fresh_integration(world: World, target: Practice) -> str:
    r = await world.api.http.post(
        f"/v1/practices/{target.tenant.id}/integrations",
        headers=target.tenant.headers,
        json=_integration_body(),
    )
    assert r.status_code == 201, r.text
    integration_id: str = r.json()["id"]
    return integration_id


async def _integration_path(world: World, target: Practice, suffix: str) -> Request:
    return f"/v1/integrations/{await _fresh_integration(world, target)}{suffix}", None


async def _integration_patch(world: World, target: Practice) -> Request:
    path, _ = await _integration_path(world, target, "")
    return path, {"service_map": {"Tox": "dysport"}}


async def _erase(world: World, target: Practice) -> Request:
    # A patient of its own: erasing the shared one would end the journey other rows post to.
    return f"/v1/patients/{await _fresh_patient(world, target)}/erase", None


async def _key_path(world: World, target: Practice, suffix: str) -> Request:
    return f"/v1/api-keys/{await _fresh_key(world, target)}{suffix}", None


def expected(caller: str, row: Row, own: bool) -> int:
    """The whole expectation: 401 before 403 before 404."""
    if caller in ("none", "revoked"):
        return 401
    if not allowed(Role(caller), row.permission):
        return 403
    if row.scoped and not own:
        return 404
    return row.ok


CASES = [
    pytest.param(method, path, caller, own, id=f"{method} {path} {caller} {scope}")
    for (method, path), row in MATRIX.items()
    for caller in CALLERS
    for own, scope in ((True, "own"), (False, "other"))
    if own or row.scoped
]


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI >= 0.165 keeps an
    included router as one wrapper route instead of copying its routes into the app's list)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _walk(nested.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
            continue
        path = prefix + getattr(route, "path", "")
        if path in UNGUARDED or path.startswith(UNGUARDED_PREFIXES):
            continue
        assert isinstance(route, APIRoute), f"unexpected route {path}"
        yield from ((method, path) for method in route.methods or ())


def _served_routes() -> set[tuple[str, str]]:
    from api.main import create_app
    from runtime.settings import Settings

    return set(_walk(create_app(Settings(_env_file=None, environment="test")).routes))


def test_every_route_is_in_the_matrix() -> None:
    """Every route is keyed (the matrix), signed by its provider, or public by design."""
    keyed, signed, public = set(MATRIX), set(SIGNED_ROUTES), set(PUBLIC_ROUTES)
    assert not (keyed & signed or keyed & public or signed & public)
    assert _served_routes() == keyed | signed | public


SIGNED_CASES = [
    pytest.param(method, path, caller, id=f"{method} {path} {caller}")
    for method, path in SIGNED_ROUTES
    for caller in CALLERS
]


@pytest.mark.parametrize(("method", "path", "caller"), SIGNED_CASES)
async def test_signed_routes_refuse_every_key_without_a_signature(
    world: World, method: str, path: str, caller: str
) -> None:
    """A key, even the admin's, is no substitute for the provider's signature."""
    r = await world.api.http.request(method, path, headers=world.headers(caller), content=b"[]")
    assert r.status_code == 403, r.text


async def test_public_routes_need_no_key_and_name_no_patient(world: World) -> None:
    r = await world.api.http.get("/v1/web-chat/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    r = await world.api.http.post(
        "/v1/web-chat/pk_nosuchpractice/inquiries",
        json={
            "email": "a@example.com",
            "elapsed_ms": 60_000,
            "consent": {"wording": "I agree"},
        },
    )
    assert r.status_code == 404


def test_every_permission_is_exercised() -> None:
    assert {row.permission for row in MATRIX.values()} == set(Permission)


@pytest.mark.parametrize(("method", "path", "caller", "own"), CASES)
async def test_authorization(world: World, method: str, path: str, caller: str, own: bool) -> None:
    row = MATRIX[(method, path)]
    target = world.own if own else world.other
    url, body = await row.build(world, target)
    if isinstance(body, str):
        r = await world.api.http.request(
            method, url, headers=world.headers(caller) | {"Content-Type": "text/csv"}, content=body
        )
    else:
        r = await world.api.http.request(method, url, headers=world.headers(caller), json=body)
    assert r.status_code == expected(caller, row, own), r.text
