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

from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Index, Integer, MetaData

from ledger.db import SQLITE_VIRTUAL_TABLES, metadata


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
    with engine.connect() as conn:
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
