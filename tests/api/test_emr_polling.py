"""Polled vendors end to end against an in-process fake EMR (tests/integrations/fake_vendor.py):
Nextech (FHIR STU3, OAuth client credentials + nx-practice-id), ModMed (FHIR R4, password grant
+ x-api-key), 4D (client-id/client-secret headers), PatientNow (bearer token) and a generic FHIR
R4 server. Each integration gets its Temporal Schedule; each poll runs EmrPollWorkflow on the
worker, and the journey follows the vendor's appointment exactly as it follows our API.

Polls are triggered (the Schedule's trigger, or the workflow run directly) - never waited for."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.emr import EmrActivities
from integrations.schedules import reconcile
from models.emr_types import (
    EMR_POLL_WORKFLOW_NAME,
    BookingLinkInput,
    EmrPollInput,
    EmrPollResult,
    PatientLinkInput,
    ReadAppointmentInput,
    poll_schedule_id,
)
from tests.api.conftest import Api, StackFactory, Tenant, eventually, sqlite_url
from tests.api.emr_helpers import create_integration, post_webhook, same_journey, twins
from tests.integrations import fake_vendor
from tests.integrations import vendor_shapes as shapes


@pytest.fixture(scope="module")
def fake() -> Iterator[fake_vendor.FakeVendor]:
    with fake_vendor.running() as server:
        yield server


def _config(vendor: str, url: str) -> dict[str, Any]:
    credentials: dict[str, dict[str, str]] = {
        "nextech": {
            "client_id": "c",
            "client_secret": "s",
            "token_url": f"{url}/nextech/token",
            "practice_id": "practice-1",
        },
        "modmed": {
            "api_key": "k",
            "username": "u",
            "password": "p",
            "token_url": f"{url}/modmed/token",
        },
        "4d": {"client_id": "c", "client_secret": "s"},
        "patientnow": {"access_token": fake_vendor.STATIC_TOKEN},
        "fhir_r4": {},
    }
    return {
        "vendor": vendor,
        "name": f"{vendor} sync",
        "base_url": f"{url}/{vendor}",
        "credentials": credentials[vendor],
        # Nextech's fixture names "Botox", a catalog name: no mapping needed.
        "service_map": {} if vendor == "nextech" else {"TOX20": "botox"},
        "poll_interval_seconds": 3600,
    }


def _client(api: Api) -> Client:
    client = api.app.state.temporal.client
    assert client is not None
    return client


async def _poll(api: Api, integration_id: str) -> EmrPollResult:
    result: EmrPollResult = await _client(api).execute_workflow(
        EMR_POLL_WORKFLOW_NAME,
        EmrPollInput(integration_id),
        id=f"test-poll-{uuid.uuid4()}",
        task_queue=api.settings.temporal_task_queue,
        result_type=EmrPollResult,
    )
    return result


@pytest.mark.parametrize("vendor", ["nextech", "modmed", "4d", "patientnow", "fhir_r4"])
async def test_polled_sequence_moves_the_journey_as_our_api_does(
    api: Api, tenant: Tenant, fake: fake_vendor.FakeVendor, vendor: str
) -> None:
    fake.states.pop(vendor, None)
    integration = await create_integration(api, tenant, **_config(vendor, fake.url))
    assert integration["schedule_state"] == "registered"
    assert integration["webhook_path"] is None or vendor == "fhir_r4"
    schedule = _client(api).get_schedule_handle(poll_schedule_id(integration["id"]))
    assert (await schedule.describe()).id == poll_schedule_id(integration["id"])

    a, b = await twins(api, tenant)
    t = shapes.timeline()
    for n, step in enumerate(shapes.STEPS, start=1):
        fake.put_bundle(vendor, shapes.fhir_bundle(step, t, stu3=vendor == "nextech"))
        if n == 1:
            await schedule.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        else:
            result = await _poll(api, integration["id"])
            assert result.applied == 1, (step, result)
        body = shapes.api_body(vendor, step, t) | {"id": f"api-{step}"}
        r = await api.http.post(
            f"/v1/journeys/{b['journey_id']}/events", headers=tenant.headers, json=body
        )
        assert r.status_code == 202, r.text
        await same_journey(api, tenant, a["journey_id"], b["journey_id"], n)

    again = await _poll(api, integration["id"])  # the cursor's instant is re-read: no change
    assert again.applied == 0 and again.fetched == 1
    r = await api.http.get(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
    shown = r.json()
    assert shown["last_poll_status"] == "ok" and shown["last_error"] is None
    assert shown["last_poll_at"] is not None and shown["events_received"] == len(shapes.STEPS)
    assert shown["cursor"] is not None and shown["cursor"].startswith(
        t.at("treated").date().isoformat()
    )
    # Credentials are named, never shown.
    assert "credentials" not in shown
    assert shown["credential_names"] == sorted(_config(vendor, fake.url)["credentials"])
    assert fake_vendor.STATIC_TOKEN not in r.text  # (PatientNow's token)
    requests = fake.state(vendor).requests
    if vendor in ("nextech", "modmed"):
        assert "POST token" in requests  # OAuth, once per poll run

    r = await api.http.delete(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["schedule_state"] == "none"
    with pytest.raises(RPCError):
        await schedule.describe()


async def test_poll_errors_are_visible_and_credentials_never_shown(
    api: Api, tenant: Tenant, fake: fake_vendor.FakeVendor
) -> None:
    config = _config("fhir_r4", fake.url) | {"base_url": f"{fake.url}/broken"}
    integration = await create_integration(api, tenant, **config)
    fake.state("broken").fail_status = 401
    handle = await _client(api).start_workflow(
        EMR_POLL_WORKFLOW_NAME,
        EmrPollInput(integration["id"]),
        id=f"test-poll-{uuid.uuid4()}",
        task_queue=api.settings.temporal_task_queue,
    )

    async def failed() -> dict[str, Any] | None:
        r = await api.http.get(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
        body: dict[str, Any] = r.json()
        return body if body["last_poll_status"] == "error" else None

    shown = await eventually(failed, "the poll error recorded")
    assert shown["last_error"] == "VendorError (HTTP 401)"
    r = await api.http.post(f"/v1/integrations/{integration['id']}/test", headers=tenant.headers)
    assert r.json() == {"ok": False, "error": "VendorError (HTTP 401)"}
    fake.state("broken").fail_status = None
    r = await api.http.post(f"/v1/integrations/{integration['id']}/test", headers=tenant.headers)
    assert r.json() == {"ok": True, "error": None}
    await api.http.delete(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
    await handle.terminate()  # its retries would only find the integration gone


async def test_outbound_activities(api: Api, tenant: Tenant, fake: fake_vendor.FakeVendor) -> None:
    """Read an appointment, find or create the patient in the EMR, the booking link."""
    fake.states.pop("fhir_r4", None)
    config = _config("fhir_r4", fake.url) | {
        "booking_url": "https://book.example.com/p/{vendor_patient_id}"
    }
    integration = await create_integration(api, tenant, **config)
    t = shapes.timeline()
    fake.put_bundle("fhir_r4", shapes.fhir_bundle("arrived", t))
    lead = await api.lead(tenant, phone="+12125550199", email=None)
    activities = EmrActivities(api.engine, _client(api), api.settings)
    env = ActivityEnvironment()

    state = await env.run(
        activities.read_appointment, ReadAppointmentInput(integration["id"], "appt-1001")
    )
    assert (state.found, state.status, state.start_at) == (True, "arrived", t.second)
    missing = await env.run(
        activities.read_appointment, ReadAppointmentInput(integration["id"], "nope")
    )
    assert missing.found is False

    link = PatientLinkInput(integration["id"], lead["patient_id"])
    first = await env.run(activities.find_or_create_patient, link)
    again = await env.run(activities.find_or_create_patient, link)
    assert first.created is True and again.vendor_patient_id == first.vendor_patient_id
    assert again.created is False
    booking = env.run(
        activities.booking_link, BookingLinkInput(integration["id"], lead["patient_id"])
    )
    assert booking.url == f"https://book.example.com/p/{first.vendor_patient_id}"

    zenoti = await create_integration(
        api,
        tenant,
        vendor="zenoti",
        name="z",
        base_url=f"{fake.url}/zenoti",
        credentials={"api_key": "k", "center_id": "center-1"},
    )
    fake.state("zenoti").appointments["z-1"] = {
        "appointment_id": "z-1",
        "status": 2,
        "start_time_utc": "2026-12-03T20:00:00",
    }
    z = await env.run(activities.read_appointment, ReadAppointmentInput(zenoti["id"], "z-1"))
    assert (z.found, z.status) == (True, "arrived")
    r = await api.http.post(f"/v1/integrations/{zenoti['id']}/test", headers=tenant.headers)
    assert r.json()["ok"] is True
    z_link = PatientLinkInput(zenoti["id"], lead["patient_id"])
    made = await env.run(activities.find_or_create_patient, z_link)
    assert made.created is True and made.vendor_patient_id == "guest-1"
    # The stored link answers next time; a fresh integration finds the guest by phone.
    assert (await env.run(activities.find_or_create_patient, z_link)).created is False
    zenoti_2 = await create_integration(
        api,
        tenant,
        vendor="zenoti",
        name="z2",
        base_url=f"{fake.url}/zenoti",
        credentials={"api_key": "k", "center_id": "center-1"},
    )
    found = await env.run(
        activities.find_or_create_patient, PatientLinkInput(zenoti_2["id"], lead["patient_id"])
    )
    assert (found.vendor_patient_id, found.created) == ("guest-1", False)

    blvd = await create_integration(
        api,
        tenant,
        vendor="boulevard",
        name="b",
        base_url=f"{fake.url}/boulevard/graphql",
        credentials={"api_key": "k", "api_secret": "c2VjcmV0", "business_id": "biz"},
    )
    fake.state("boulevard").appointments["urn:blvd:Appointment:1"] = {
        "id": "urn:blvd:Appointment:1",
        "state": "FINAL",
        "startAt": "2026-12-03T15:00:00-05:00",
    }
    bl = await env.run(
        activities.read_appointment, ReadAppointmentInput(blvd["id"], "urn:blvd:Appointment:1")
    )
    assert (bl.found, bl.status) == (True, "completed")
    r = await api.http.post(f"/v1/integrations/{blvd['id']}/test", headers=tenant.headers)
    assert r.json()["ok"] is True
    b_link = PatientLinkInput(blvd["id"], lead["patient_id"])
    client_made = await env.run(activities.find_or_create_patient, b_link)
    assert client_made.created is True
    blvd_2 = await create_integration(
        api,
        tenant,
        vendor="boulevard",
        name="b2",
        base_url=f"{fake.url}/boulevard/graphql",
        credentials={"api_key": "k", "api_secret": "c2VjcmV0", "business_id": "biz"},
    )
    client_found = await env.run(
        activities.find_or_create_patient, PatientLinkInput(blvd_2["id"], lead["patient_id"])
    )
    assert (client_found.vendor_patient_id, client_found.created) == (
        client_made.vendor_patient_id,
        False,
    )


async def test_schedule_registered_later_when_temporal_was_down(
    api_stack: StackFactory,
    tmp_path_factory: pytest.TempPathFactory,
    temporal_dev: WorkflowEnvironment,
    fake: fake_vendor.FakeVendor,
) -> None:
    """Created while Temporal is down: `pending`; the relay's reconcile registers it."""
    url = sqlite_url(tmp_path_factory.mktemp("emr-sched"))
    async with api_stack(url, temporal="127.0.0.1:1", worker=False) as down:
        tenant = await down.create_practice()
        integration = await create_integration(down, tenant, **_config("fhir_r4", fake.url))
        assert integration["schedule_state"] == "pending"
        client = temporal_dev.client
        assert await reconcile(client, down.settings, down.engine) == 1
        r = await down.http.get(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
        assert r.json()["schedule_state"] == "registered"
        handle = client.get_schedule_handle(poll_schedule_id(integration["id"]))
        assert (await handle.describe()).id == poll_schedule_id(integration["id"])
        await handle.delete()


async def test_update_mapping_interval_and_rotate_credentials(
    api: Api, tenant: Tenant, fake: fake_vendor.FakeVendor
) -> None:
    integration = await create_integration(api, tenant, **_config("nextech", fake.url))
    path = f"/v1/integrations/{integration['id']}"
    r = await api.http.patch(
        path,
        headers=tenant.headers,
        json={"poll_interval_seconds": 600, "service_map": {"31": "dysport"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["schedule_state"] == "registered"
    assert r.json()["service_map"] == {"31": "dysport"}
    schedule = _client(api).get_schedule_handle(poll_schedule_id(integration["id"]))

    async def every() -> bool:
        # The server applies a schedule update through its scheduler: describe may lag a moment.
        spec = (await schedule.describe()).schedule.spec
        return [i.every.total_seconds() for i in spec.intervals] == [600]

    await eventually(every, "the schedule's new interval")

    r = await api.http.patch(path, headers=tenant.headers, json={"credentials": {"client_id": "c"}})
    assert r.status_code == 422 and "client_secret" in r.text
    rotated = {
        "client_id": "c2",
        "client_secret": "s2",
        "token_url": "https://t",
        "practice_id": "p",
    }
    r = await api.http.patch(path, headers=tenant.headers, json={"credentials": rotated})
    assert r.status_code == 200 and r.json()["credential_names"] == sorted(rotated)
    assert '"s2"' not in r.text  # named, not shown
    r = await api.http.patch(path, headers=tenant.headers, json={"service_map": {"x": "nope"}})
    assert r.status_code == 422
    await api.http.delete(path, headers=tenant.headers)


async def test_rotating_credentials_keeps_the_webhook_secret(api: Api, tenant: Tenant) -> None:
    integration = await create_integration(
        api, tenant, vendor="zenoti", name="z", credentials={"api_key": "old"}
    )
    r = await api.http.patch(
        f"/v1/integrations/{integration['id']}",
        headers=tenant.headers,
        json={"credentials": {"api_key": "new"}},
    )
    assert r.status_code == 200
    raw = b'{"id": "x-1", "event_type": "Employee.Created", "data": {}}'
    r = await post_webhook(api, integration, raw)
    assert r.status_code == 200 and r.json()["received"] == 0


async def test_an_unreadable_resource_is_skipped_and_shown_not_blocking(
    api: Api, tenant: Tenant, fake: fake_vendor.FakeVendor
) -> None:
    config = _config("fhir_r4", fake.url) | {"base_url": f"{fake.url}/lenient"}
    integration = await create_integration(api, tenant, **config)
    await api.lead(tenant, phone=shapes.PHONE, email=None)
    t = shapes.timeline()
    fake.put_bundle("lenient", shapes.fhir_bundle("booked", t))
    broken = copy.deepcopy(fake.state("lenient").appointments["appt-1001"])
    broken |= {"id": "appt-bad", "start": "not a time"}
    fake.state("lenient").appointments["appt-bad"] = broken
    result = await _poll(api, integration["id"])
    assert (result.fetched, result.applied) == (1, 1)
    r = await api.http.get(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
    assert r.json()["last_poll_status"] == "ok"
    assert r.json()["last_error"] == "1 unreadable resource(s) skipped"
    await api.http.delete(f"/v1/integrations/{integration['id']}", headers=tenant.headers)
