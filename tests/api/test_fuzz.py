"""Schemathesis over the OpenAPI document: every operation, generated inputs (valid and not),
with a practice_admin key. The one property: never a 5xx for anything a client can send.

The app runs its real lifespan (migrations, engine, relay) on an SQLite file with Temporal
pointed at a dead port: inquiries and events are committed and left to the relay, which is the
API's own degraded mode, and keeps the run fast and free of workflow side effects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.main import create_app
from tests.api.conftest import ADMIN_KEY, api_settings, sqlite_url

MAX_EXAMPLES = 25


# Built at import so schemathesis can read the OpenAPI document while collecting (its lazy
# `from_fixture` loader does not work with pytest 9). Nothing connects until the fixture below
# runs the lifespan with this module's own database.
APP = create_app(api_settings("sqlite://", "127.0.0.1:1", "fuzz"))
# /codec/* is the payload codec server's (tested where it is built); /readyz answers 503 by
# design here, since Temporal is down.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(
    path_regex="^/codec|^/readyz$"
)


@pytest.fixture(scope="module")
def fuzz_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    APP.state.settings = api_settings(sqlite_url(directory), "127.0.0.1:1", "fuzz")
    with TestClient(APP) as client:  # runs the lifespan: app.state is ready for schemathesis
        r = client.post(
            "/v1/practices",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={
                "name": "Fuzz",
                "timezone": "America/New_York",
                "state": "NY",
                "booking_url": "https://book.example.com/fuzz",
            },
        )
        assert r.status_code == 201, r.text
        yield r.json()["api_key"]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case, fuzz_key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_key}"}, checks=[not_a_server_error]
    )
