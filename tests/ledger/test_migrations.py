"""The models in ``ledger/db.py`` and the migrations describe one schema.

The migrations are the only way the schema is made (``ledger/migrate.py``);
``ledger/db.py`` is what the code reads and writes, and declares every
table. If they disagree, a query may name a column no database has, or an
index the code relies on may exist only in the model. Alembic's autogenerate
comparison finds every difference in tables, columns, types, nullability,
indexes and unique constraints; this test requires there be none, on both
databases.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Index, Integer, MetaData, text

from ledger.db import HASHED_FILTERS, SQLITE_VIRTUAL_TABLES, metadata


def _compared(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    def include_object(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        # alembic_version is the migrations' own bookkeeping, not a model.
        if kind == "table" and name == "alembic_version":
            return False
        # FTS5 tables SQLAlchemy cannot describe; db.py names them.
        if kind == "table" and reflected and dialect == "sqlite" and name in SQLITE_VIRTUAL_TABLES:
            return False
        # An index declared for one database only (``.ddl_if(dialect=...)``).
        only = obj._ddl_if.dialect if isinstance(obj, Index) and obj._ddl_if is not None else None
        return only in (None, dialect)

    return include_object


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn, warnings.catch_warnings():
        # PostgreSQL's hashed filter indexes (migration 0013_hashed_keys) are
        # on an expression, which Alembic's SQLite comparison announces it
        # skips before include_object can leave them out as PostgreSQL's.
        for name in HASHED_FILTERS.values():
            warnings.filterwarnings(
                "ignore",
                f"autogenerate skipping metadata-specified expression-based index 'record_index_{name}'; "
                "dialect 'sqlite'",
            )
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "include_object": _compared(engine.dialect.name)},
        )
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_a_drift_is_found(engine: Engine) -> None:
    """The comparison sees a column the migrations never made."""
    drifted = MetaData()
    metadata.tables["entries"].to_metadata(drifted).append_column(Column("surplus", Integer))
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": lambda name, kind, parents: kind != "table" or name == "entries"}
        )
        diff = compare_metadata(context, drifted)
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "entries", "surplus")]


def test_postgresql_btrees_of_the_growing_tables_fill_their_pages(engine: Engine) -> None:
    """Migration 0011_lean_indexes: fillfactor 100 on every B-tree of the
    tables that grow with the log, whose keys only ever arrive at the right."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's fillfactor")
    sql = """
    SELECT i.relname, i.reloptions FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_am a ON a.oid = i.relam
    WHERE t.relnamespace = current_schema()::regnamespace AND a.amname = 'btree'
    AND t.relname IN ('entries', 'hashes', 'records', 'record_index')
    """
    with engine.connect() as conn:
        options = {name: o for name, o in conn.execute(text(sql))}
    assert "record_index_rule_hash" in options
    assert "entries_pkey" in options
    assert {name: o for name, o in options.items() if o != ["fillfactor=100"]} == {}
