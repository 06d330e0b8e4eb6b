"""Editing the log behind its back, as an operator with database access could."""

from __future__ import annotations

from sqlalchemy import Engine, text

from ledger.db import is_sqlite


def tamper(engine: Engine, sql: str) -> None:
    """Run ``sql`` with the append-only triggers out of the way, as an
    operator with database access could."""
    with engine.begin() as conn:
        if is_sqlite(engine):
            triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                conn.execute(text(f"DROP TRIGGER {name}"))
            conn.execute(text(sql))
            for _, ddl in triggers:
                conn.execute(text(ddl))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(sql))
