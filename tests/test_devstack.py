"""`make run` for real: scripts/devstack.py as a subprocess on spare ports with a throwaway data
dir. It must come up (Temporal dev server, migrations, worker, API), answer a lead end to end,
stop every child on Ctrl-C, free its ports, and keep its data for the next run. Its payloads are
encrypted with a key of the data dir's own, and the dev server's UI decrypts them through the
API's codec server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
DEVSTACK = ROOT / "scripts" / "devstack.py"
ADMIN_KEY = "devstack-test-admin-key"
STARTUP_S = 60.0

pytestmark = pytest.mark.skipif(
    not ((ROOT / "worker.py").exists() and (ROOT / "api" / "main.py").exists()),
    reason="the worker and the API are not in the tree yet",
)


def free_ports(n: int) -> list[int]:
    """n distinct ports nothing listens on (held open together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name (field 2) may contain spaces: split after ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def poll(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes]) -> Any:
    """Poll `check` until it returns something truthy; fail early if the stack died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"devstack exited ({proc.returncode}) while waiting for {what}")
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        # Between probes, wait on the stack itself: returns at once if it dies.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.25)


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    log: Path
    api: str
    ports: list[int]
    data_dir: Path

    @property
    def temporal(self) -> str:
        return f"127.0.0.1:{self.ports[0]}"

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ports[1]}"

    @property
    def worker_metrics(self) -> str:
        return f"http://127.0.0.1:{self.ports[3]}/metrics"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[[], Stack]]:
    temporal_port, ui_port, api_port, metrics_port = free_ports(4)
    data_dir = tmp_path / "data"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{data_dir / 'app.db'}",
            "ADMIN_API_KEY": ADMIN_KEY,
            "ENVIRONMENT": "development",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # What a fresh machine has: no key configured (devstack makes one), default UI origins.
    for name in ("PAYLOAD_ENCRYPTION_KEYS", "TEMPORAL_UI_ORIGINS", "WORKER_METRICS_ADDRESS"):
        env.pop(name, None)
    started: list[Stack] = []

    def start() -> Stack:
        log = tmp_path / f"devstack-{len(started)}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(DEVSTACK),
                "--temporal-port",
                str(temporal_port),
                "--ui-port",
                str(ui_port),
                "--api-port",
                str(api_port),
                "--metrics-port",
                str(metrics_port),
                "--data-dir",
                str(data_dir),
                "--startup-timeout",
                str(STARTUP_S),
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack = Stack(
            proc,
            log,
            f"http://127.0.0.1:{api_port}",
            [temporal_port, ui_port, api_port, metrics_port],
            data_dir,
        )
        started.append(stack)
        return stack

    yield start

    # Whatever happened, leave no process behind.
    for stack in started:
        pgids = children_of(stack.proc.pid)
        if stack.proc.poll() is None:
            stack.proc.kill()
            stack.proc.wait()
        for pgid in pgids:
            if group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


def wait_ready(stack: Stack) -> None:
    def ready() -> bool:
        if httpx.get(f"{stack.api}/healthz", timeout=2).status_code != 200:
            return False
        r = httpx.get(f"{stack.api}/readyz", timeout=5)
        return r.status_code == 200 and r.json().get("status") in ("ok", "ready")

    poll("GET /readyz says ready", ready, STARTUP_S, stack.proc)


def interrupt(stack: Stack) -> None:
    """Ctrl-C: every child must exit and every port must be free again."""
    children = children_of(stack.proc.pid)
    assert len(children) == 3, f"expected temporal, worker and api; got {children}"
    stack.proc.send_signal(signal.SIGINT)
    try:
        code = stack.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("devstack did not stop within 60s of SIGINT:\n" + stack.output())
    assert code == 0, stack.output()
    # Each child led its own process group: nothing of it (or anything it spawned) may remain.
    assert [pgid for pgid in children if group_alive(pgid)] == [], stack.output()
    assert all(port_free(p) for p in stack.ports), stack.output()


async def _stored_input(address: str, workflow_id: str) -> Payload:
    """The journey's input as the dev server stores it, read without any codec."""
    client = await Client.connect(address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return started.input.payloads[0]


def check_the_ui_decrypts_through_the_codec_server(
    stack: Stack, workflow_id: str, practice_id: str, key: dict[str, str]
) -> None:
    """The dev server stores ciphertext; its UI is pointed at the API's /codec, which opens it."""
    settings = httpx.get(f"{stack.ui}/api/v1/settings", timeout=10).json()
    assert settings["Codec"]["Endpoint"] == f"{stack.api}/codec"

    stored = asyncio.run(_stored_input(stack.temporal, workflow_id))
    assert stored.metadata["encoding"] == b"binary/encrypted"
    assert practice_id.encode() not in stored.data
    body = {"payloads": [json_format.MessageToDict(stored)]}

    # As the dev UI calls it from the browser: its origin, no key (development only) ...
    r = httpx.post(
        f"{stack.api}/codec/decode",
        json=body,
        headers={"Origin": stack.ui, "X-Namespace": "default"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == stack.ui
    [decoded] = r.json()["payloads"]
    assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
    assert practice_id in base64.b64decode(decoded["data"]).decode()
    # ... or with a key, from anywhere.
    r = httpx.post(f"{stack.api}/codec/decode", json=body, headers=key, timeout=10)
    assert r.status_code == 200 and r.json() == {"payloads": [decoded]}
    r = httpx.post(f"{stack.api}/codec/decode", json=body, timeout=10)
    assert r.status_code == 401


def test_devstack_runs_a_lead_end_to_end_and_stops_cleanly(
    start_stack: Callable[[], Stack],
) -> None:
    stack = start_stack()
    try:
        wait_ready(stack)
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        r = httpx.post(
            f"{stack.api}/v1/practices",
            headers=admin,
            json={
                "name": "Glow Aesthetics",
                "timezone": "America/New_York",
                "state": "NY",
                "booking_url": "https://book.example.com/glow",
                "review_url": "https://reviews.example.com/glow",
                "revenue_lines": ["injectables", "surgical"],
            },
            timeout=10,
        )
        assert r.status_code in (200, 201), r.text
        practice = r.json()
        key = {"Authorization": f"Bearer {practice['api_key']}"}

        r = httpx.post(
            f"{stack.api}/v1/inquiries",
            headers=key,
            json={
                "channel": "form",
                "first_name": "Ada",
                "phone": "+12125550123",
                "email": "ada@example.com",
                "interest": "botox",
                "message": "Do you have anything Saturday?",
                "external_id": "form-1",
                "consent": {"sms": True, "email": True},
            },
            timeout=10,
        )
        assert r.status_code == 202, r.text
        lead = r.json()

        def reply() -> list[dict[str, Any]]:
            r = httpx.get(f"{stack.api}/v1/patients/{lead['patient_id']}/messages", headers=key)
            r.raise_for_status()
            body = r.json()
            items = body["items"] if isinstance(body, dict) else body
            return [m for m in items if m["direction"] == "outbound" and m["status"] == "sent"]

        sent = poll("the first reply", reply, 30, stack.proc)
        assert len(sent) == 1
        # The worker's Prometheus endpoint (--metrics-port) counts that send; the API's too.
        metrics = httpx.get(stack.worker_metrics, timeout=10).text
        assert "journey_messages_total{" in metrics and 'status="sent"' in metrics
        assert "journeys_inquiries_accepted_total" in httpx.get(f"{stack.api}/metrics").text

        key_file = stack.data_dir / "payload-keys"
        assert key_file.stat().st_mode & 0o777 == 0o600
        dev_key = key_file.read_text()
        r = httpx.get(f"{stack.api}/v1/journeys/{lead['journey_id']}", headers=key, timeout=10)
        workflow_id = r.json()["workflow_id"]
        check_the_ui_decrypts_through_the_codec_server(stack, workflow_id, practice["id"], key)
    except BaseException:
        print(stack.output())
        raise
    interrupt(stack)

    # Again, same data dir: the practice, the lead and its journey are still there.
    again = start_stack()
    try:
        wait_ready(again)
        r = httpx.get(f"{again.api}/v1/journeys/{lead['journey_id']}", headers=key, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["stage"] == "speed_to_lead"
        # The same key, so last run's history still decrypts.
        assert (again.data_dir / "payload-keys").read_text() == dev_key
        check_the_ui_decrypts_through_the_codec_server(again, workflow_id, practice["id"], key)
    except BaseException:
        print(again.output())
        raise
    interrupt(again)


def test_devstack_stops_everything_when_a_child_dies(start_stack: Callable[[], Stack]) -> None:
    stack = start_stack()
    try:
        wait_ready(stack)
        children = children_of(stack.proc.pid)
        worker = next(
            pid for pid in children if b"worker.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
        os.killpg(worker, signal.SIGKILL)
        code = stack.proc.wait(timeout=60)
        assert code != 0
        assert [pgid for pgid in children if group_alive(pgid)] == []
        assert all(port_free(p) for p in stack.ports)
    except BaseException:
        print(stack.output())
        raise


def test_devstack_names_a_taken_metrics_port(tmp_path: Path) -> None:
    """The worker's metrics port is checked before anything starts, and named in the error."""
    temporal_port, ui_port, api_port = free_ports(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "WORKER_METRICS_ADDRESS"}
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'app.db'}"
        done = subprocess.run(
            [
                sys.executable,
                str(DEVSTACK),
                *("--temporal-port", str(temporal_port), "--ui-port", str(ui_port)),
                *("--api-port", str(api_port), "--metrics-port", str(metrics_port)),
                *("--data-dir", str(tmp_path / "data")),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"metrics port {metrics_port} is taken; use --metrics-port" in done.stdout
    assert all(port_free(p) for p in (temporal_port, ui_port, api_port))
