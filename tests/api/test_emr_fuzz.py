"""Signed webhook bodies of any shape: the vendor fixtures with one value anywhere replaced by
arbitrary JSON. The only property: the answer is never a 5xx (a parser that trips is a 422)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api, Tenant
from tests.api.emr_helpers import create_integration, post_webhook
from tests.integrations import vendor_shapes as shapes

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00", "BOOKED", "noshow", "-2"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)

FIXTURES = {
    "boulevard": lambda: shapes.boulevard("treated", shapes.timeline()),
    "zenoti": lambda: shapes.fixture("zenoti_invoice_closed"),
    "fhir_r4": lambda: shapes.fhir_bundle("booked", shapes.timeline()),
}
CONFIG: dict[str, dict[str, Any]] = {
    "boulevard": {"credentials": {"api_key": "k", "api_secret": "c2VjcmV0", "business_id": "b"}},
    "zenoti": {"credentials": {"api_key": "k"}},
    "fhir_r4": {},
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for n, child in enumerate(value):
            found += _paths(child, (*prefix, n))
    return found


def _replace(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("vendor", list(FIXTURES))
async def test_signed_bodies_of_any_shape_never_5xx(api: Api, tenant: Tenant, vendor: str) -> None:
    integration = await create_integration(
        api, tenant, vendor=vendor, name="fuzz", **CONFIG[vendor]
    )
    await api.lead(tenant, phone=shapes.PHONE, email=None)
    base = FIXTURES[vendor]()
    paths = _paths(base)
    loop = asyncio.get_running_loop()
    answers: list[int] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), JSON)
    def check(path: tuple[Any, ...], value: Any) -> None:
        raw = json.dumps(_replace(base, path, value)).encode()
        future = asyncio.run_coroutine_threadsafe(post_webhook(api, integration, raw), loop)
        status = future.result(timeout=60).status_code
        answers.append(status)
        assert status < 500, (path, value)

    await asyncio.to_thread(check)
    assert answers


async def test_deeply_nested_json_is_a_422(api: Api, tenant: Tenant) -> None:
    integration = await create_integration(api, tenant, vendor="fhir_r4", name="deep")
    raw = b"[" * 2000 + b"]" * 2000  # within the body limit, deeper than the parser goes
    r = await post_webhook(api, integration, raw)
    assert r.status_code == 422
