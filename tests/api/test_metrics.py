"""Observability (issue 8): the API's GET /metrics and the worker's Prometheus endpoint (the SDK
runtime's metrics plus what the activities record through the SDK meter) show the figures, and
no label carries PHI or a per-patient id."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from runtime.temporal_client import connect, metrics_runtime
from tests.api.conftest import Api, StackFactory, eventually, sqlite_url, temporal_address
from tests.api.proxy import free_port
from tests.phi import EMAIL, FIRST, LAST, PHONE, assert_no_phi
from worker import build_worker

PATIENT = {
    "first_name": FIRST,
    "last_name": LAST,
    "phone": PHONE,
    "email": EMAIL,
    "consent": {"sms": True, "email": True},
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ([-+.\deE]+|NaN|[-+]Inf)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def assert_clean(what: str, text: str) -> None:
    assert_no_phi(what, text)
    assert not UUID.search(text), f"{what}: an id in a label: {UUID.search(text)}"


async def test_the_api_metrics_count_inquiries_requests_and_the_backlog(api: Api) -> None:
    before = (await api.http.get("/metrics")).text
    tenant = await api.create_practice()
    lead = await api.lead(tenant, **PATIENT)
    await api.journey(tenant, lead["journey_id"])
    r = await api.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    accepted = "journeys_inquiries_accepted_total"
    assert sample(text, accepted, channel="form") == sample(before, accepted, channel="form") + 1
    posted = {"method": "POST", "route": "/v1/inquiries", "status": "202"}
    assert sample(text, "journeys_http_requests_total", **posted) >= 1
    # The route *template*, never the path with the journey's id in it.
    read = {"method": "GET", "route": "/v1/journeys/{journey_id}", "status": "200"}
    assert sample(text, "journeys_http_requests_total", **read) >= 1
    assert 'journeys_relay_backlog{kind="inquiries"}' in text
    assert 'journeys_relay_backlog{kind="events"}' in text
    assert "process_resident_memory_bytes" in text
    assert_clean("the API's metrics", text)


async def test_a_metrics_token_closes_the_endpoint(api_stack: StackFactory, tmp_path: Path) -> None:
    async with api_stack(sqlite_url(tmp_path), worker=False, metrics_token="scrape-me") as api:
        assert (await api.http.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await api.http.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer scrape-me"}
        assert (await api.http.get("/metrics", headers=right)).status_code == 200


async def test_the_worker_serves_sdk_and_app_metrics(
    api_stack: StackFactory, temporal_dev: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"metrics-{uuid.uuid4()}"
    address = f"127.0.0.1:{free_port()}"
    url = sqlite_url(tmp_path)
    async with api_stack(url, task_queue=queue, worker=False) as api:
        # What worker.py does with WORKER_METRICS_ADDRESS: a runtime serving Prometheus.
        client = await connect(
            api.settings,
            address=temporal_address(temporal_dev),
            runtime=metrics_runtime(address),
        )
        async with build_worker(client, api.settings, api.engine, task_queue=queue):
            tenant = await api.create_practice()
            lead = await api.lead(tenant, **PATIENT)
            await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the reply")
            journey = await api.journey(tenant, lead["journey_id"])

            async def scraped() -> str | None:
                async with httpx.AsyncClient() as http:
                    text = (await http.get(f"http://{address}/metrics")).text
                # Transitions are written just after the reply: wait for both.
                done = sample(text, "journey_stage_transitions_total", to_stage="speed_to_lead")
                return text if done else None

            text = await eventually(scraped, "the worker's metrics")
    assert sample(text, "journey_messages_total", status="sent", channel="sms", kind="reply") == 1
    assert sample(text, "journey_first_touch_latency_count") == 1
    assert sample(text, "journey_stage_transitions_total", to_stage="inquiry", from_stage="none")
    assert "temporal_workflow_completed" in text or "temporal_workflow_task" in text
    assert "temporal_request" in text  # the SDK's own client metrics
    for own_id in (tenant.id, lead["patient_id"], lead["journey_id"], journey["workflow_id"]):
        assert own_id not in text
    assert_no_phi("the worker's metrics", text)
