"""The codec server (/codec/encode, /codec/decode) over HTTP: Temporal's remote codec protocol,
its authentication, CORS for the Temporal UI, and 4xx (never 500) for anything malformed."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import HTTPException, Request
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.routers.codec import require_codec_access
from models.tables import AuditEvent
from runtime.codec import EncryptionCodec, generate_key, parse_keys
from tests.api.conftest import Api, Tenant, api_settings, sqlite_url, temporal_address

UI = "http://127.0.0.1:8233"
SECRET = b'"Zebulon Quixote"'


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def json_payload(data: bytes = SECRET) -> dict[str, Any]:
    """A Payload in protobuf JSON, as the Temporal UI sends it."""
    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(data)}


async def post(
    api: Api, path: str, payloads: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    headers = {"X-Namespace": "default"} | (headers or {})
    return await api.http.post(path, json={"payloads": payloads}, headers=headers)


async def test_encode_then_decode_round_trips(api: Api, tenant: Tenant) -> None:
    r = await post(api, "/codec/encode", [json_payload(), json_payload(b"null")], tenant.headers)
    assert r.status_code == 200, r.text
    encoded = r.json()["payloads"]
    assert len(encoded) == 2
    for p in encoded:
        assert base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(p["metadata"]["encryption-key-id"]) == b"test-key"
        assert b"Zebulon" not in base64.b64decode(p["data"])

    # The admin key may decode too (staff with the admin key run the UI in production).
    r = await post(api, "/codec/decode", encoded, api.admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"payloads": [json_payload(), json_payload(b"null")]}

    # Decrypting is reading patient data: audited, under the practice when a practice key did.
    r = await post(api, "/codec/decode", encoded, tenant.headers)
    assert r.status_code == 200, r.text
    with Session(api.engine) as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.action == "temporal.history.decode")
        ).all()
    assert {(str(row.practice_id), row.actor_role) for row in rows} == {
        ("None", "admin"),
        (tenant.id, "practice_admin"),
    }


async def test_decode_passes_plain_payloads_through(api: Api, tenant: Tenant) -> None:
    r = await post(api, "/codec/decode", [json_payload()], tenant.headers)
    assert r.status_code == 200 and r.json() == {"payloads": [json_payload()]}
    r = await post(api, "/codec/decode", [], tenant.headers)
    assert r.status_code == 200 and r.json() == {"payloads": []}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        # Outside development the UI's origin is no substitute for a key.
        {"Origin": UI},
    ],
    ids=["none", "wrong-key", "not-bearer", "ui-origin"],
)
async def test_unauthenticated_requests_get_401(api: Api, headers: dict[str, str]) -> None:
    for path in ("/codec/encode", "/codec/decode"):
        r = await post(api, path, [json_payload()], headers)
        assert r.status_code == 401, r.text


async def test_cors_preflight_for_the_temporal_ui(api: Api) -> None:
    r = await api.http.options(
        "/codec/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-namespace",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == UI
    assert r.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert "POST" in r.headers["access-control-allow-methods"]

    # The actual request carries the header too (the browser checks it on the response).
    r = await post(api, "/codec/decode", [], {"Origin": UI, **api.admin})
    assert r.headers["access-control-allow-origin"] == UI


async def test_cors_is_for_the_ui_origin_and_the_codec_only(api: Api, tenant: Tenant) -> None:
    r = await api.http.options(
        "/codec/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    r = await api.http.get(f"/v1/journeys/{tenant.id}", headers={"Origin": UI, **tenant.headers})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"payloads": "nope"}',
        b'{"payloads": [1, 2]}',
        b'{"nothing": []}',
        b'{"payloads": [{"data": "%%% not base64 %%%"}]}',
        b'{"payloads": [{"metadata": {"encoding": 7}}]}',
        b'{"payloads": [{"unknownField": "x"}]}',
    ],
)
async def test_malformed_bodies_are_4xx(api: Api, tenant: Tenant, body: bytes) -> None:
    for path in ("/codec/encode", "/codec/decode"):
        r = await api.http.post(
            path, content=body, headers={"Content-Type": "application/json", **tenant.headers}
        )
        assert r.status_code in (400, 422), (path, r.status_code, r.text)
        assert "not base64" not in r.text


async def test_undecryptable_payloads_are_400_naming_the_key_id_only(
    api: Api, tenant: Tenant
) -> None:
    r = await post(api, "/codec/encode", [json_payload()], tenant.headers)
    [sealed] = r.json()["payloads"]
    data = bytearray(base64.b64decode(sealed["data"]))
    data[-1] ^= 1
    tampered = {**sealed, "data": b64(bytes(data))}
    r = await post(api, "/codec/decode", [tampered], tenant.headers)
    assert r.status_code == 400 and "failed authentication" in r.json()["detail"]

    other_key = generate_key()
    retired = EncryptionCodec(parse_keys(f"retired:{other_key}"))
    [foreign] = await retired.encode([Payload(data=b"x")])
    foreign_json = {
        "metadata": {k: b64(v) for k, v in foreign.metadata.items()},
        "data": b64(foreign.data),
    }
    r = await post(api, "/codec/decode", [foreign_json], tenant.headers)
    assert r.status_code == 400, r.text
    assert "'retired'" in r.json()["detail"] and other_key not in r.text


@pytest.fixture
async def dev_api(
    temporal_dev: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `make run` runs it: ENVIRONMENT=development."""
    settings = api_settings(sqlite_url(tmp_path), temporal_address(temporal_dev), "dev-codec")
    app = create_app(settings.model_copy(update={"environment": "development"}))
    async with LifespanManager(app, startup_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


async def test_development_accepts_the_dev_ui_without_a_key(dev_api: httpx.AsyncClient) -> None:
    body = {"payloads": [json_payload()]}
    r = await dev_api.post("/codec/encode", json=body, headers={"Origin": UI})
    assert r.status_code == 200, r.text
    r = await dev_api.post("/codec/decode", json=r.json(), headers={"Origin": UI})
    assert r.status_code == 200 and r.json() == body
    assert r.headers["access-control-allow-origin"] == UI

    # Not from the UI's origin, or a wrong key: still refused in development.
    for headers in (
        {},
        {"Origin": "https://evil.example"},
        {"Origin": UI, "Authorization": "Bearer x"},
    ):
        r = await dev_api.post("/codec/decode", json=body, headers=headers)
        assert r.status_code == 401, headers


@pytest.mark.parametrize("environment", ["production", "test"])
def test_only_development_trusts_the_ui_origin(environment: str) -> None:
    """The dev-UI shortcut is refused outside development, whatever the Origin says."""
    settings = api_settings("postgresql://db/app", "127.0.0.1:7233", "q").model_copy(
        update={"environment": environment}
    )
    request = Request({"type": "http", "headers": [(b"origin", UI.encode())]})
    no_session = cast(Session, None)  # not consulted without a key
    with pytest.raises(HTTPException) as err:
        require_codec_access(request, settings, no_session, None)
    assert err.value.status_code == 401

    dev = settings.model_copy(update={"environment": "development"})
    require_codec_access(request, dev, no_session, None)  # no exception: allowed
