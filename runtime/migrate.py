"""Apply Alembic migrations programmatically (API start-up, `make run`, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from runtime.db import normalize_url
from runtime.settings import PROJECT_ROOT, get_settings


def alembic_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None) -> None:
    command.upgrade(alembic_config(url or get_settings().database_url), "head")


if __name__ == "__main__":
    upgrade()
