"""`journeys`: the command line for audit mode and bulk enrollment (docs/funnel.md).

    journeys import --practice ID --kind leads --preset zenoti leads.csv
    journeys report --practice ID --source history
    journeys enroll --practice ID --rate 50

Works on the database of DATABASE_URL (and Temporal of TEMPORAL_ADDRESS for `enroll`), like the
API and the worker. Output is counts and row/field errors: never a value from the file."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.engine import Engine

from funnel import enroll as enrollment
from funnel import history, live, replay
from funnel.metrics import report as funnel_report
from models.tables import Practice
from runtime.db import make_engine, session_scope
from runtime.migrate import upgrade
from runtime.settings import get_settings

app = typer.Typer(help="Patient journeys: import a practice's history, see its leaks, enroll.")
console = Console()

PracticeOpt = Annotated[uuid.UUID, typer.Option("--practice", help="The practice's id")]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _engine() -> Engine:
    settings = get_settings()
    upgrade(settings.database_url)
    return make_engine(settings.database_url)


def _practice(engine: Engine, practice_id: uuid.UUID) -> Practice:
    with session_scope(engine) as session:
        practice = session.get(Practice, practice_id)
        if practice is None:
            console.print("[red]no such practice[/red]")
            raise typer.Exit(2)
        session.expunge(practice)
        return practice


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    practice: PracticeOpt,
    kind: Annotated[str, typer.Option(help="leads | appointments | treatments")],
    preset: Annotated[str, typer.Option(help=f"one of {', '.join(history.PRESETS)}")] = "generic",
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="field=Header, overrides the preset")
    ] = None,
) -> None:
    """Import a historical export (CSV) into the practice's history (kept apart from live)."""
    engine = _engine()
    target = _practice(engine, practice)
    overrides = {}
    for item in map_ or []:
        name, sep, header = item.partition("=")
        if not sep:
            raise typer.BadParameter("use field=Header", param_hint="--map")
        overrides[name.strip()] = header.strip()
    try:
        text = file.read_text(encoding="utf-8-sig")
        parsed = history.parse(kind, preset, text, target.timezone, overrides)
    except UnicodeDecodeError:
        console.print("[red]the file is not UTF-8 text[/red]")
        raise typer.Exit(2) from None
    except history.ImportRefused as exc:
        console.print(f"[red]{exc.field}: {exc.msg}[/red]")
        raise typer.Exit(2) from None
    with _progress() as bar, session_scope(engine) as session:
        task = bar.add_task(f"importing {kind}", total=len(parsed.rows))
        stored = history.store(session, target, parsed, lambda n: bar.advance(task, n))
    console.print(
        f"rows {stored.rows} · imported {stored.imported} · already there {stored.duplicates}"
        f" · rejected {stored.rejected} · patients reachable {stored.patients_linked}"
    )
    for error in parsed.errors[:20]:
        console.print(f"  line {error.row}, {error.field}: {error.msg}")
    if len(parsed.errors) > 20:
        console.print(f"  … and more ({stored.rejected} rows rejected in all)")


@app.command()
def report(
    practice: PracticeOpt,
    source: Annotated[str, typer.Option(help="history | live")] = "history",
    days: Annotated[int, typer.Option(help="the period: this many days back")] = 3650,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The eight-stage map ("find your leak"), from the imported history or live journeys."""
    engine = _engine()
    _practice(engine, practice)
    with session_scope(engine) as session:
        data = (replay.load if source == "history" else live.load)(session, practice)
    end = datetime.now(UTC) + timedelta(days=1)
    body = funnel_report(data, end - timedelta(days=days), end, None)
    if as_json:
        console.print_json(json.dumps(body, default=str))
        return
    table = Table(title=f"the eight stages ({source})")
    for column in ("stage", "entered", "advanced", "leaked", "leak", "median h"):
        table.add_column(column)
    for row in body["stages"]:  # type: ignore[attr-defined]
        rate = row["leak_rate"]
        table.add_row(
            row["stage"],
            str(row["entered"]),
            str(row["advanced"]),
            str(row["leaked"]),
            "—" if rate is None else f"{rate:.0%}",
            "—" if row["median_hours_in_stage"] is None else f"{row['median_hours_in_stage']:.1f}",
        )
    console.print(table)


@app.command()
def enroll(
    practice: PracticeOpt,
    rate: Annotated[float, typer.Option(help="journeys started per second, at most")] = 20.0,
    concurrency: Annotated[int, typer.Option(help="starts in flight at once")] = 8,
    limit: Annotated[int | None, typer.Option(help="start at most this many now")] = None,
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=0,
            help="wait while this many started journeys have not reached their first wait"
            " (0: no bound)",
        ),
    ] = 200,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan and count only")] = False,
) -> None:
    """Put past patients who are due (recall due, quiet quote, lapsed) into journeys.
    Safe to run again and to interrupt: nobody is enrolled twice, a re-run resumes."""
    engine = _engine()
    _practice(engine, practice)
    planned = enrollment.plan(engine, practice)
    console.print(
        f"due {planned.due} · newly planned {planned.planned} · enrolled before"
        f" {planned.already} · already journeying {planned.journeying}"
    )
    if dry_run:
        return
    try:
        asyncio.run(_enroll(engine, practice, rate, concurrency, limit, max_in_flight))
    except KeyboardInterrupt:
        # The batch in flight was recorded on the way out (funnel/enroll.py): nothing is lost.
        console.print("interrupted: every start so far is recorded; run again to resume")
        raise typer.Exit(130) from None


async def _enroll(
    engine: Engine,
    practice: uuid.UUID,
    rate: float,
    concurrency: int,
    limit: int | None,
    max_in_flight: int,
) -> None:
    from runtime.temporal_client import connect

    settings = get_settings()
    client = await connect(settings)
    with session_scope(engine) as session:
        from sqlmodel import func, select

        from models.tables import Enrollment

        pending = session.exec(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.practice_id == practice)
            .where(Enrollment.status == "planned")
        ).one()
    total = pending if limit is None else min(pending, limit)
    with _progress() as bar:
        task = bar.add_task("enrolling", total=total)
        result = await enrollment.run(
            engine,
            practice,
            enrollment.temporal_starter(client, settings),
            rate=rate,
            concurrency=concurrency,
            limit=limit,
            progress=lambda n: bar.advance(task, n),
            # Starts follow what the workers finish: with them down it pauses, loses nothing.
            in_flight=enrollment.InFlight.at_most(engine, max_in_flight),
        )
    console.print(
        f"started {result.started} · already running {result.already_running}"
        f" · still planned {result.remaining} · {result.seconds:.1f} s"
    )


if __name__ == "__main__":
    app()
