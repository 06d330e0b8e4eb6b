"""Run the Alembic migrations programmatically: the only way the schema is made.

Tests build their databases through this too, so what they test is what
production runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from ledger.db import is_sqlite, writer

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# An arbitrary constant: the PostgreSQL advisory lock that serialises
# migrations when several processes start at once.
_MIGRATION_LOCK = 0x6D646C01


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` forward to ``revision``."""
    cfg = alembic_config()
    with writer(engine).begin() as conn:
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
