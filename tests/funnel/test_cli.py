"""The `journeys` command line: import with a progress bar, the map as a table or JSON, and the
enrollment plan (dry run). Errors name lines and fields, never a value from the file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from journeys_cli import app
from models.tables import Practice
from tests.conftest import _migrated
from tests.funnel import synthetic


@pytest.fixture
def database(tmp_path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    return url, _migrated(url)


def practice(engine: Engine) -> uuid.UUID:
    with Session(engine) as s:
        row = Practice(
            name="CLI",
            timezone="America/New_York",
            state="NY",
            booking_url="https://book.example.com",
            revenue_lines=["injectables"],
        )
        s.add(row)
        s.commit()
        return row.id


def test_import_report_and_plan(database: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = database
    pid = str(practice(engine))
    runner = CliRunner()
    env = {"DATABASE_URL": url}
    for kind, text in (
        ("leads", synthetic.leads_csv()),
        ("appointments", synthetic.appointments_csv()),
        ("treatments", synthetic.treatments_csv()),
    ):
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        result = runner.invoke(
            app, ["import", str(path), "--practice", pid, "--kind", kind], env=env
        )
        assert result.exit_code == 0, result.output
        assert "rejected 0" in result.output

    result = runner.invoke(app, ["report", "--practice", pid, "--json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    stages = {
        s["stage"]: (s["entered"], s["advanced"], s["leaked"], s["open"]) for s in body["stages"]
    }
    assert stages["speed_to_lead"] == (12, 6, 5, 1)
    assert body["revenue"]["total"] == 1650.0
    result = runner.invoke(app, ["report", "--practice", pid], env=env)
    assert result.exit_code == 0 and "reviews_referrals" in result.output

    # The synthetic practice's data ends in 2025: nobody is due now (too long ago or lost).
    result = runner.invoke(app, ["enroll", "--practice", pid, "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert "newly planned" in result.output
    result = runner.invoke(
        app, ["enroll", "--practice", pid, "--max-in-flight", "-1", "--dry-run"], env=env
    )
    assert result.exit_code == 2 and "--max-in-flight" in result.output

    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,received_at,interest\nZ1,not-a-date-SECRET,botox\n")
    result = runner.invoke(app, ["import", str(bad), "--practice", pid, "--kind", "leads"], env=env)
    assert result.exit_code == 0
    assert "line 2, received_at" in result.output and "SECRET" not in result.output
    missing = tmp_path / "missing.csv"
    missing.write_text("patient_id\nZ1\n")
    result = runner.invoke(
        app, ["import", str(missing), "--practice", pid, "--kind", "leads"], env=env
    )
    assert result.exit_code == 2 and "received_at" in result.output
    result = runner.invoke(app, ["report", "--practice", str(uuid.uuid4())], env=env)
    assert result.exit_code == 2
