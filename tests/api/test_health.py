"""Liveness, readiness and the OpenAPI page."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api, StackFactory, sqlite_url


async def test_healthz_and_readyz_with_everything_up(api: Api) -> None:
    r = await api.http.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await api.http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_readyz_is_503_while_temporal_is_down(
    api_stack: StackFactory, tmp_path: Path
) -> None:
    async with api_stack(sqlite_url(tmp_path), temporal="127.0.0.1:1", worker=False) as api:
        r = await api.http.get("/healthz")
        assert r.status_code == 200
        r = await api.http.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "temporal": "unavailable"}


async def test_openapi_docs(api: Api) -> None:
    r = await api.http.get("/docs")
    assert r.status_code == 200
    spec = (await api.http.get("/openapi.json")).json()
    assert {"/v1/practices", "/v1/inquiries", "/v1/journeys/{journey_id}/events"} <= set(
        spec["paths"]
    )
