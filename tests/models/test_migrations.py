"""The schema is Alembic's: the migrations build exactly what the models describe, on both
backends, and downgrade cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from models.tables import Practice
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
