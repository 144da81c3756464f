"""Shared fixtures: real databases (SQLite files and a throwaway PostgreSQL database), migrated
by Alembic exactly as production is, and seed helpers that create rows the way the API does."""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables)
from runtime.codec import generate_key
from runtime.db import make_engine
from runtime.migrate import upgrade
from runtime.settings import Settings

BIN = Path(sys.prefix) / "bin"
TEMPORAL_CLI = BIN / "temporal"
TEMPORAL_TEST_SERVER = BIN / "temporal-test-server"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# A fresh payload key per run: every Temporal client, worker and replayer in the suite encrypts,
# so the whole suite exercises the codec (and a stale key from an earlier run cannot help).
TEST_KEY_ID = "test-key"
_RUN_KEY = f"{TEST_KEY_ID}:{generate_key()}"
# Histories recorded for the replay test (RECORD_HISTORIES=<folder>) are sealed with this
# published, test-only key, so any later run can open them. It protects nothing real.
HISTORY_KEY = "recorded-histories:5XmGIC8ns2sOZXLs2hOn/aiZTCw0V3hjrzc+Fk1xoL0="
_RECORDING = bool(os.environ.get("RECORD_HISTORIES"))
TEST_PAYLOAD_KEYS = f"{HISTORY_KEY},{_RUN_KEY}" if _RECORDING else f"{_RUN_KEY},{HISTORY_KEY}"


def encrypted_settings(**overrides: Any) -> Settings:
    """Test settings (no `.env`) with the run's payload key, plus `overrides`."""
    values: dict[str, Any] = {"environment": "test", "payload_encryption_keys": TEST_PAYLOAD_KEYS}
    return Settings(_env_file=None, **(values | overrides))


def _migrated(url: str) -> Engine:
    upgrade(url)
    return make_engine(url)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _migrated(f"sqlite:///{tmp_path / 'app.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server, dropped at the end of the run."""
    name = f"pj_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL database, emptied after each test (faster than a new one)."""
    engine = make_engine(postgres_url)
    yield engine
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both backends: tests using this run once on SQLite and once on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


def new_id() -> str:
    return str(uuid.uuid4())
