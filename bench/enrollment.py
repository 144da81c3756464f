"""Enrollment throughput and worker memory with sleeping journeys (issue 8, DESIGN §9).

    .venv/bin/python bench/enrollment.py [--tiers 1000,10000,100000] [--concurrency 20]

The same throwaway stack as the speed-to-lead benchmark (bench/speed_to_lead.py: a Temporal dev
server, a migrated app database (SQLite, or `--database-url`), the journey worker, the API and a
worker for the bare baseline, each its own process). Then:

1. **throughput**: the first tier's N journeys enrolled through `POST /v1/inquiries` by
   `--concurrency` clients (closed loop, as fast as it answers), timed until every journey's
   first message reached the provider; against N bare workflow starts (start + one no-op
   activity) by the same number of clients, timed until every one completed. Ratio = bare rate /
   journey rate.
2. **memory**: after each tier the journeys all sleep (their next step is days away); the
   worker's resident memory (VmRSS) is read then, and the Temporal server's for reference. Tiers
   are cumulative: `--tiers 1000,10000` enrolls 1,000, measures, enrolls 9,000 more, measures.
   The first tier goes through the API (it is the throughput phase); the later ones through the
   bulk enrollment path (`--via bulk`, the default: past patients imported and started by
   funnel/enroll.py, as `journeys enroll` does, at `--bulk-rate` per second and no more than
   `--bulk-in-flight` journeys not yet asleep) or the API
   (`--via api`). Either way each is a real journey on the journey worker, asleep when measured.

The dev server keeps its state in a file in the run's temp dir (not in memory, as the
speed-to-lead run does): with 100,000 journeys an in-memory server would hold gigabytes.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).parent))
import speed_to_lead as stl
import stopping

T = TypeVar("T")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def closed_loop(count: int, clients: int, fire: Callable[[int], Awaitable[T]]) -> list[T]:
    gate = asyncio.Semaphore(clients)

    async def one(i: int) -> T:
        async with gate:
            return await fire(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


class Enrollment(stl.Bench):
    async def enroll(self, first: int, count: int, clients: int) -> tuple[float, int]:
        """(seconds until every journey's first message was handed over, journeys missing)."""
        t0 = time.monotonic()
        posted = await closed_loop(count, clients, lambda i: self.post_inquiry(first + i))
        journeys = [j for _, _, j in posted if j is not None]
        handed = await self.first_handed(journeys, within=max(120.0, count / 2))
        return time.monotonic() - t0, count - len(handed)

    async def bare(self, count: int, clients: int) -> tuple[float, int]:
        t0 = time.monotonic()
        started = await closed_loop(count, clients, self.start_baseline)
        missing = 0
        for _, handle in started:
            try:
                await asyncio.wait_for(handle.result(), timeout=120)
            except Exception:
                missing += 1
        return time.monotonic() - t0, missing

    async def bulk(
        self, count: int, clients: int, rate: float, in_flight: int
    ) -> tuple[float, int]:
        """Enroll `count` past patients (all due: recall, lapsed, quiet quote) through the bulk
        path and wait until each journey sleeps: (seconds from plan to all asleep, missing)."""
        import enroll as bulk_bench  # bench/enroll.py: its synthetic history

        from funnel import enroll
        from runtime.db import make_engine
        from runtime.settings import Settings

        practice_id = await asyncio.to_thread(bulk_bench.seed, self.database_url, count, 0)
        engine = make_engine(self.database_url)
        settings = Settings(
            _env_file=None,
            environment="test",
            database_url=self.database_url,
            temporal_task_queue=stl.JOURNEY_TASK_QUEUE,
        )
        try:
            t0 = time.monotonic()
            planned = await asyncio.to_thread(enroll.plan, engine, practice_id)
            result = await enroll.run(
                engine,
                practice_id,
                enroll.temporal_starter(self.client, settings),
                rate=rate,
                concurrency=clients,
                in_flight=enroll.InFlight.at_most(engine, in_flight),
            )
            self.say(
                f"  started {result.started} of {planned.planned} planned in "
                f"{result.seconds:.0f}s; waiting for every journey to sleep"
            )
            asleep = await self.asleep(engine, practice_id, result.started, within=count / 4 + 120)
            return time.monotonic() - t0, count - asleep
        finally:
            engine.dispose()

    async def asleep(self, engine: Engine, practice_id: uuid.UUID, want: int, within: float) -> int:
        """Journeys of the practice whose first wait has begun (the worker writes the journey
        row's next action just before each wait)."""
        import sqlalchemy as sa
        from sqlmodel import col

        from models.tables import Journey

        query = (
            sa.select(sa.func.count())
            .select_from(Journey)
            .where(col(Journey.practice_id) == practice_id)
            .where(col(Journey.next_action_at).is_not(None))
        )
        deadline = time.monotonic() + within
        last_said = time.monotonic()
        while True:
            with engine.connect() as conn:
                n = int(conn.execute(query).scalar_one())
            if n >= want or time.monotonic() > deadline:
                return n
            if time.monotonic() - last_said > 60:
                self.say(f"  {n} of {want} asleep")
                last_said = time.monotonic()
            await asyncio.sleep(2)

    def rss(self) -> dict[str, float]:
        return {p.name: rss_mib(p.popen.pid) for p in self.procs if p.popen.poll() is None}


app = typer.Typer(add_completion=False)


@app.command()
def main(
    tiers: Annotated[str, typer.Option(help="Cumulative journey counts, comma-separated.")] = (
        "1000,10000,100000"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Clients at once.")] = 20,
    via: Annotated[
        str, typer.Option(help="How tiers after the first enroll: bulk or api.")
    ] = "bulk",
    bulk_rate: Annotated[
        float,
        typer.Option(
            help="Bulk starts per second at most (0: no limit; --bulk-in-flight paces them)."
        ),
    ] = 0.0,
    bulk_in_flight: Annotated[
        int,
        typer.Option(
            min=0,
            help="Bulk journeys started and not yet asleep, at most (0: no bound). Without "
            "a bound a backlog of half-run journeys outgrows the caches and throughput "
            "collapses (docs/benchmarks.md).",
        ),
    ] = 200,
    settle: Annotated[float, typer.Option(help="Seconds to let the worker settle.")] = 5.0,
    database_url: Annotated[
        str | None,
        typer.Option(help="App database (e.g. PostgreSQL, empty); default: throwaway SQLite."),
    ] = None,
) -> None:
    if str(stl.PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(stl.PROJECT_ROOT))
    counts = sorted({int(t) for t in tiers.split(",") if t.strip()})
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if via not in ("bulk", "api"):
        raise typer.BadParameter("--via must be bulk or api")
    bench = Enrollment(counts[0], 1.0, database_url, console)
    bench.temporal_args = ["--db-filename", str(bench.workdir / "temporal.db")]
    t_start = time.monotonic()
    results: list[tuple[int, str, float, dict[str, float]]] = []
    throughput: dict[str, tuple[int, float, int]] = {}

    async def go() -> None:
        try:
            await bench.start()
            bench.phase = "warm"
            await bench.bare(stl.WARMUP, concurrency)
            await bench.enroll(0, stl.WARMUP, concurrency)
            bench.phase = "run"
            baseline_rss = bench.rss()
            results.append((0, "", 0.0, baseline_rss))
            n = counts[0]
            bench.say(f"baseline: {n} bare starts, {concurrency} clients")
            throughput["bare"] = (n, *await bench.bare(n, concurrency))
            enrolled = 0
            for tier in counts:
                path = "api" if enrolled == 0 else via
                bench.say(f"journeys: enrolling {tier - enrolled} more (to {tier}) via {path}")
                if path == "api":
                    took, missing = await bench.enroll(enrolled, tier - enrolled, concurrency)
                else:
                    took, missing = await bench.bulk(
                        tier - enrolled, concurrency, bulk_rate, bulk_in_flight
                    )
                if enrolled == 0:
                    throughput["journeys"] = (tier, took, missing)
                if missing:
                    raise RuntimeError(f"{missing} journeys of the {tier} tier never slept")
                rate = (tier - enrolled) / took
                enrolled = tier
                await asyncio.sleep(settle)  # let in-flight tasks finish before reading memory
                results.append((tier, f"{path}, {rate:.1f}/s", took, bench.rss()))
                bench.say(f"{tier} sleeping journeys: worker {results[-1][3]['worker']:.0f} MiB")
        except Exception:
            for p in bench.procs:
                console.print(f"[bold]--- {p.name} log ---[/bold]\n{p.tail()}")
            raise
        finally:
            await bench.stop()

    stopping.run(go())

    table = Table(title=f"enrollment throughput, {concurrency} clients")
    for col in ("path", "n", "seconds", "per second", "missing"):
        table.add_column(col, justify="right" if col != "path" else "left")
    rates = {}
    for name, (n, took, missing) in throughput.items():
        rates[name] = n / took
        table.add_row(name, str(n), f"{took:.1f}", f"{rates[name]:.1f}", str(missing))
    console.print(table)
    ratio = rates["bare"] / rates["journeys"]
    console.print(f"bare / journey rate: {ratio:.2f} (a journey costs {ratio:.1f}x a bare start)")
    mem = Table(title="resident memory (MiB) with N sleeping journeys")
    for col in ("journeys", "enrolled (via, rate)", "worker", "temporal", "api"):
        mem.add_column(col, justify="right")
    for tier, how, _, rss in results:
        mem.add_row(
            str(tier), how, *(f"{rss.get(k, 0):.0f}" for k in ("worker", "temporal", "api"))
        )
    console.print(mem)
    for key, value in stl.machine().items():
        console.print(f"  {key:<16} {value}")
    console.print(f"  {'wall time':<16} {time.monotonic() - t_start:.0f}s")
    if any(m for _, _, m in throughput.values()):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
