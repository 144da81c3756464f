"""Bulk enrollment benchmark: N past patients (default 10,000) enrolled into real journeys on a
real Temporal dev server; prints the start rate.

    .venv/bin/python bench/enroll.py [--patients 10000] [--rate 0] [--concurrency 32]
                                     [--with-worker]

Everything is thrown away afterwards: an in-memory dev server (with the custom search
attributes), a migrated SQLite database in a temp dir. What is measured is enrollment: planning
and starting the journeys. `--with-worker` also runs them, with the worker in this same process:
on a small machine that worker (thousands of journeys' first tasks at once) competes with the
starts and slows them, which is why it is off by default. `--rate 0`
means as fast as it goes; a practice would run `journeys enroll --rate 20` or so, so its staff
are not flooded by replies. The synthetic history: a third each recall due, lapsed and quiet
quote, every 10th patient treated too recently to be due."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlmodel import Session, SQLModel
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stopping  # bench/, the script's own folder

from funnel import enroll
from models.tables import HistoryImport, Practice, utcnow
from runtime.db import make_engine
from runtime.migrate import upgrade
from runtime.processes import search_attribute_args
from runtime.settings import Settings
from worker import build_worker

console = Console()
D = timedelta(days=1)


def seed(url: str, patients: int, not_due_every: int = 10) -> uuid.UUID:
    """A practice with `patients` past patients; every `not_due_every`-th one (0: none) was
    treated too recently to be due, so a plan enrolls the others."""
    engine = make_engine(url)
    now = utcnow()
    with Session(engine) as s:
        practice = Practice(
            name="Bench",
            timezone="America/New_York",
            state="NY",
            booking_url="https://book.example.com",
            revenue_lines=["injectables"],
        )
        s.add(practice)
        s.flush()
        batch = HistoryImport(practice_id=practice.id, kind="treatments", preset="generic")
        s.add(batch)
        s.flush()
        people, links, records = [], [], []
        for n in range(patients):
            pid, hid = uuid.uuid4(), uuid.uuid4()
            people.append(
                {
                    "id": pid,
                    "practice_id": practice.id,
                    "timezone": "America/New_York",
                    "email": f"p{n}@example.com",
                    "email_consent": True,
                    "sms_consent": False,
                    "sms_suppressed": False,
                    "email_suppressed": False,
                    "created_at": now,
                }
            )
            links.append({"id": hid, "practice_id": practice.id, "ref": f"r{n}", "patient_id": pid})
            kind, ago, status = (
                ("treatment", 20, None)
                if not_due_every and n % not_due_every == not_due_every - 1
                else [
                    ("treatment", 80, None),
                    ("treatment", 200, None),
                    ("appointment", 30, "completed"),
                ][n % 3]
            )
            records.append(
                {
                    "id": uuid.uuid4(),
                    "practice_id": practice.id,
                    "import_id": batch.id,
                    "history_patient_id": hid,
                    "key": f"k{n}",
                    "kind": kind,
                    "revenue_line": "injectables",
                    "service": "botox",
                    "at": now - ago * D,
                    "status": status,
                    "referred": False,
                    "amount": 400.0 if kind == "treatment" else None,
                }
            )
        for table, rows in (
            ("patient", people),
            ("history_patient", links),
            ("history_record", records),
        ):
            s.execute(sa.insert(SQLModel.metadata.tables[table]), rows)
        s.commit()
        return practice.id


async def bench(patients: int, rate: float, concurrency: int, with_worker: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        practice_id = seed(url, patients)
        engine = make_engine(url)
        settings = Settings(
            _env_file=None, environment="test", database_url=url, temporal_task_queue="bench"
        )
        cli = Path(sys.prefix) / "bin" / "temporal"
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(cli),
            ui=False,
            dev_server_extra_args=search_attribute_args(),
        ) as env:
            worker = (
                build_worker(env.client, settings, engine, task_queue="bench")
                if with_worker
                else contextlib.nullcontext()
            )
            async with worker:
                began = time.monotonic()
                planned = enroll.plan(engine, practice_id)
                plan_s = time.monotonic() - began
                console.print(f"planned {planned.planned} of {patients} in {plan_s:.1f} s")
                with Progress(
                    TextColumn("enrolling"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console,
                ) as bar:
                    task = bar.add_task("enrolling", total=planned.planned)
                    result = await enroll.run(
                        engine,
                        practice_id,
                        enroll.temporal_starter(env.client, settings),
                        rate=rate,
                        concurrency=concurrency,
                        progress=lambda n: bar.advance(task, n),
                    )
                again = enroll.plan(engine, practice_id)
        console.print(
            f"started {result.started} journeys in {result.seconds:.1f} s: "
            f"[bold]{result.started / max(result.seconds, 1e-9):.0f} starts/s[/bold] "
            f"(rate limit {'none' if rate <= 0 else rate}, concurrency {concurrency}); "
            f"a second plan found {again.planned} new"
        )


def main(
    patients: Annotated[int, typer.Option(help="past patients in the practice")] = 10_000,
    rate: Annotated[float, typer.Option(help="starts per second at most (0: no limit)")] = 0,
    concurrency: Annotated[int, typer.Option(help="starts in flight")] = 32,
    with_worker: Annotated[
        bool, typer.Option(help="also run the journeys (a worker in this process)")
    ] = False,
) -> None:
    stopping.run(bench(patients, rate, concurrency, with_worker))


if __name__ == "__main__":
    typer.run(main)
