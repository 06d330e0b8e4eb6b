"""Editing the log behind its back, as an operator with database access could."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, text

from ledger.db import is_sqlite
from ledger.entry_codec import decode_entry


def tamper(engine: Engine, sql: str, params: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Run ``sql`` (once per set of ``params``, if given) with the append-only
    triggers out of the way, as an operator with database access could."""
    with engine.begin() as conn:
        if is_sqlite(engine):
            triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                conn.execute(text(f"DROP TRIGGER {name}"))
            conn.execute(text(sql), params)
            for _, ddl in triggers:
                conn.execute(text(ddl))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(sql), params)


def store_entries_uncompressed(engine: Engine, start: int = 0) -> None:
    """Rewrite every stored entry as releases before migration 0010_storage
    stored it, from entry ``start`` on: its bytes alone, no format byte. For
    tests of the migrations before 0010, whose code reads ``entries.data``
    as it was then."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT idx, data FROM entries WHERE idx >= :start"), {"start": start}).all()
    if rows:
        tamper(
            engine,
            "UPDATE entries SET data = :data WHERE idx = :idx",
            [{"idx": idx, "data": decode_entry(bytes(data))} for idx, data in rows],
        )


def record_index_as_stored(engine: Engine | Connection) -> Table:
    """``record_index`` as the database's revision has it (reflected), for
    writing and reading rows as an earlier release did: before migration
    0012_codes its closed vocabularies were text, which the application's
    model (codes, ledger/db.py) would write and read wrongly."""
    return Table("record_index", MetaData(), autoload_with=engine)
