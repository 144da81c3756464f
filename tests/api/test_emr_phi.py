"""No PHI from EMR traffic where encryption cannot reach: log lines, error answers, and the ids
Temporal sees (poll schedules and workflows are named by the integration's id only)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.api.conftest import Api, Tenant, eventually
from tests.api.emr_helpers import create_integration, post_webhook
from tests.integrations import vendor_shapes as shapes
from tests.phi import EMAIL, FIRST, LAST, PHONE, assert_no_phi, assert_run_sealed


def _phi_booking(t: shapes.Timeline) -> dict[str, Any]:
    body = shapes.boulevard("booked", t, phone="+14155550199", appt="-phi")
    body["data"]["node"]["client"] |= {"firstName": FIRST, "lastName": LAST, "email": EMAIL}
    return body


async def test_no_phi_in_emr_logs_answers_or_temporal(
    api: Api, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    integration = await create_integration(
        api,
        tenant,
        vendor="boulevard",
        name="phi",
        credentials={"api_key": "k", "api_secret": "c2VjcmV0", "business_id": "b"},
        service_map={"Tox - Forehead & Glabella": "botox"},
    )
    t = shapes.timeline()
    r = await post_webhook(api, integration, json.dumps(_phi_booking(t)).encode())
    assert r.status_code == 200 and r.json()["applied"] == 1
    bad = _phi_booking(t)
    bad["data"]["node"]["startAt"] = f"{FIRST} {LAST} {PHONE}"
    bad["idempotencyKey"] = "bad-1"
    r = await post_webhook(api, integration, json.dumps(bad).encode())
    assert r.status_code == 422
    assert_no_phi("the 422 answer to a bad vendor time", r.text)
    fhir = shapes.fhir_bundle("booked", t)
    fhir["entry"][0]["resource"]["start"] = f"{FIRST} {EMAIL}"
    fhir_integration = await create_integration(api, tenant, vendor="fhir_r4", name="f")
    r = await post_webhook(api, fhir_integration, json.dumps(fhir).encode())
    assert r.status_code == 422
    assert_no_phi("the 422 answer to a bad FHIR resource", r.text)

    journeys = await api.http.get("/v1/journeys", headers=tenant.headers)
    [journey] = journeys.json()["items"]

    async def booked() -> bool:
        return bool((await api.journey(tenant, journey["id"]))["stage"] == "consult_booked")

    await eventually(booked, "the enrolled patient's booking")
    client = api.app.state.temporal.client
    assert client is not None
    assert await assert_run_sealed(client.get_workflow_handle(journey["workflow_id"])) > 0

    lines = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert lines, "nothing was logged: the check would be vacuous"
    assert_no_phi("the log lines", lines)
