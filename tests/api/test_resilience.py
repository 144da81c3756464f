"""Temporal down: the API still answers 202, the inquiry and events wait in the database, and the
relay hands them over when Temporal is back — a lead is never lost (DESIGN §7, §9)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from models.tables import Inquiry
from tests.api.conftest import Api, StackFactory, eventually, sqlite_url, temporal_address
from tests.api.proxy import TcpProxy
from tests.api.test_events import _stage_is, later


@pytest.fixture
async def proxy(temporal_dev: WorkflowEnvironment) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(temporal_address(temporal_dev))
    yield proxy
    await proxy.down()


async def _ready(api: Api) -> bool:
    return (await api.http.get("/readyz")).status_code == 200


async def test_lead_while_temporal_is_down_is_journeyed_when_it_is_back(
    api_stack: StackFactory, proxy: TcpProxy, tmp_path: Path
) -> None:
    # The app is configured with the proxy's address, on which nothing listens yet.
    async with api_stack(sqlite_url(tmp_path), temporal=proxy.address) as api:
        assert (await api.http.get("/readyz")).status_code == 503
        tenant = await api.create_practice()
        lead = await api.lead(tenant)
        assert lead["status"] == "received"
        assert api.get(Inquiry, lead["inquiry_id"]).status == "received"
        journey = await api.journey(tenant, lead["journey_id"])  # reads need no Temporal
        assert (journey["status"], journey["stage"]) == ("pending", "inquiry")
        booked = await api.event(
            tenant, lead["journey_id"], type="consult_booked", id="emr-1", appointment_at=later(5)
        )
        assert booked.status_code == 202, booked.text
        assert await api.sent(tenant, lead["patient_id"]) == []

        await proxy.up()  # Temporal is back: the API reconnects and the relay catches up

        sent = await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the reply")
        assert len(sent) == 1
        await eventually(
            lambda: _stage_is(api, tenant, lead["journey_id"], "consult_booked"),
            "the pending event delivered after the start",
        )
        assert api.get(Inquiry, lead["inquiry_id"]).status == "journey_started"
        await eventually(lambda: _ready(api), "readyz to turn 200")


async def test_temporal_lost_after_connecting(
    api_stack: StackFactory, proxy: TcpProxy, tmp_path: Path
) -> None:
    await proxy.up()
    async with api_stack(sqlite_url(tmp_path), temporal=proxy.address) as api:
        tenant = await api.create_practice()
        first = await api.lead(tenant, phone="+12125550101", email=None)
        assert first["status"] == "journey_started"

        await proxy.down()
        began = time.monotonic()
        second = await api.lead(tenant, phone="+12125550102", email=None)
        # Bounded by the start timeout, not by Temporal's own retries.
        assert time.monotonic() - began < api.settings.temporal_start_timeout_seconds + 2
        assert second["status"] == "received"

        await proxy.up()
        sent = await eventually(lambda: api.sent(tenant, second["patient_id"]), "the late reply")
        assert len(sent) == 1
