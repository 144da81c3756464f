"""The Temporal dev server restarted on its SQLite file (issue 8): journeys asleep before the
restart are still there after it, still asleep on the same schedule, a timer that came due while
the server was down fires when it is back, and the worker and the API, both left running, pick up
where they were: an event posted after the restart is processed and the journey plans its
reminder. Real time passes only for the outage itself: the server's restart, stretched to a few
seconds so that one journey's next step falls inside it."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from runtime.processes import search_attribute_args
from runtime.temporal_client import connect
from tests.api.conftest import StackFactory, eventually, sqlite_url
from tests.api.proxy import free_port
from tests.api.test_events import _stage_is, later
from tests.conftest import TEMPORAL_CLI
from worker import build_worker


def start_server(db_file: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        str(TEMPORAL_CLI),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--log-level",
        "error",
        *search_attribute_args(),
    ]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def wait_for_server(address: str, server: subprocess.Popen[bytes]) -> None:
    async def up() -> bool:
        assert server.poll() is None, "the dev server exited"
        try:
            client = await asyncio.wait_for(Client.connect(address), timeout=2)
            await client.count_workflows()
            return True
        except Exception:
            return False

    await eventually(up, "the dev server", within=60)


async def test_journeys_resume_after_the_dev_server_restarts_on_its_file(
    api_stack: StackFactory, tmp_path: Path
) -> None:
    db_file, log = tmp_path / "temporal.db", tmp_path / "temporal.log"
    port = free_port()
    address = f"127.0.0.1:{port}"
    queue = f"restart-{uuid.uuid4()}"
    server = start_server(db_file, port, log)
    try:
        await wait_for_server(address, server)
        async with api_stack(
            sqlite_url(tmp_path), temporal=address, task_queue=queue, worker=False
        ) as api:
            client = await connect(api.settings, address=address)
            async with build_worker(client, api.settings, api.engine, task_queue=queue):
                tenant = await api.create_practice()
                lead = await api.lead(tenant)
                await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the reply")
                asleep = await eventually(
                    lambda: _stage_is(api, tenant, lead["journey_id"], "speed_to_lead"),
                    "the journey asleep in speed_to_lead",
                )
                assert asleep["next_action_at"] is not None

                # A second journey whose next step is due seconds from now: the consult's own
                # moment (its outcome at T+0 moves the journey on; no message, so no send window).
                soon = await api.lead(
                    tenant, phone="+12125550188", email=None, external_id="restart-soon"
                )
                due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
                at = due.isoformat()
                r = await api.event(
                    tenant, soon["journey_id"], type="consult_booked", appointment_at=at
                )
                assert r.status_code == 202, r.text
                await eventually(
                    lambda: _stage_is(api, tenant, soon["journey_id"], "consult_booked"),
                    "the consult booked before the outage",
                )

                assert datetime.now(UTC) < due, "the step came due before the outage began"
                stop_server(server)  # the worker and the API stay up, talking to nobody

                # The outage spans the due moment: the timer comes due while nobody can fire it.
                async def overdue() -> bool:
                    return datetime.now(UTC) > due + timedelta(seconds=1)

                await eventually(overdue, "the step's moment to pass during the outage", within=30)
                server = start_server(db_file, port, log)
                await wait_for_server(address, server)
                shown = await eventually(
                    lambda: _stage_is(api, tenant, soon["journey_id"], "consult_show"),
                    "the overdue step to run once the server is back",
                    within=60,
                )
                assert shown["status"] == "active"

                # Still there, still running: the history lived in the SQLite file.
                handle = client.get_workflow_handle(asleep["workflow_id"])
                described = await eventually(handle.describe, "describe after the restart")
                assert described.status == WorkflowExecutionStatus.RUNNING
                journey = await api.journey(tenant, lead["journey_id"])
                assert journey["next_action_at"] == asleep["next_action_at"]  # same schedule

                # And alive: an event after the restart reaches the same workers, which plan
                # the reminder relative to the appointment.
                r = await api.event(
                    tenant, lead["journey_id"], type="consult_booked", appointment_at=later(5)
                )
                assert r.status_code == 202, r.text
                booked = await eventually(
                    lambda: _stage_is(api, tenant, lead["journey_id"], "consult_booked"),
                    "the event processed after the restart",
                    within=60,
                )
                assert booked["next_action"] and booked["next_action"].startswith("consult")
                assert len(await api.sent(tenant, lead["patient_id"])) == 1  # nothing resent
    finally:
        stop_server(server)
