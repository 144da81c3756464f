"""The schema is Alembic's: the migrations build exactly what the models describe, on both
backends, and downgrade cleanly."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from models.tables import ApiKey, Practice
from runtime.db import make_engine
from runtime.migrate import alembic_config
from tests.seed import seed_journey


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_timestamps_come_back_aware_in_utc(engine: Engine) -> None:
    seeded = seed_journey(engine)
    with Session(engine) as s:
        practice = s.exec(select(Practice).where(Practice.id == seeded.practice.id)).one()
    assert practice.created_at.tzinfo is not None
    assert practice.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_0002_keeps_existing_practice_keys_working(tmp_path: Path) -> None:
    """Data migration: each practice's pre-0002 key becomes a practice_admin key (same hash),
    and the downgrade puts it back."""
    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    practice_id = uuid.uuid4()
    key_hash = hashlib.sha256(b"an existing key").hexdigest()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO practice (id, name, timezone, state, booking_url, revenue_lines,"
                    " api_key_hash, api_key_prefix, created_at) VALUES (:id, 'Glow', 'UTC', 'NY',"
                    " 'https://b.example.com', '[]', :hash, 'prefix', CURRENT_TIMESTAMP)"
                ),
                {"id": practice_id.hex, "hash": key_hash},
            )
        command.upgrade(cfg, "head")
        with Session(engine) as s:
            key = s.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).one()
        assert key.practice_id == practice_id and key.role == "practice_admin"
        assert key.prefix == "prefix" and key.revoked_at is None
        command.downgrade(cfg, "0001")
        with engine.connect() as conn:
            restored: str = conn.execute(sa.text("SELECT api_key_hash FROM practice")).scalar_one()
        assert restored == key_hash
    finally:
        engine.dispose()


def test_0004_gives_existing_practices_a_public_key_and_downgrades(tmp_path: Path) -> None:
    """Data migration: practices created before 0004 get their web-chat key; the downgrade
    drops the channel columns and tables again."""
    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0003")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for _ in range(2):
                conn.execute(
                    sa.text(
                        "INSERT INTO practice (id, name, timezone, state, booking_url,"
                        " revenue_lines, created_at) VALUES (:id, 'Glow', 'UTC', 'NY',"
                        " 'https://b.example.com', '[]', CURRENT_TIMESTAMP)"
                    ),
                    {"id": uuid.uuid4().hex},
                )
        command.upgrade(cfg, "head")
        with Session(engine) as s:
            keys = [p.public_key for p in s.exec(select(Practice)).all()]
        assert len(keys) == 2 and len(set(keys)) == 2
        assert all(k is not None and k.startswith("pk_") for k in keys)
        command.downgrade(cfg, "0003")
        tables = set(sa.inspect(engine).get_table_names())
        assert not {"consent_record", "practice_account", "patient_handle"} & tables
        columns = {c["name"] for c in sa.inspect(engine).get_columns("practice")}
        assert not {"public_key", "sms_number", "help_text"} & columns
        command.upgrade(cfg, "head")  # and up again
    finally:
        engine.dispose()
