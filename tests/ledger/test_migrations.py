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
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Index, Integer, MetaData, text
from sqlalchemy.exc import DBAPIError

import ledger.log
from app import create_app
from keys.records import PlatformKey
from ledger import query
from ledger.db import HASHED_FILTERS, SQLITE_VIRTUAL_TABLES, is_sqlite, make_engine, metadata
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from tests.checklog import check_log
from tests.conftest import ORIGIN
from tests.recordkit import amendment, appeal, decision, sign


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


_HASHES = "SELECT level, idx, hash FROM hashes ORDER BY level, idx"


def _histories(log: Log) -> dict[str, tuple[list[str], list[str], str | None, str | None]]:
    """Each record's history (:func:`ledger.query.history`) by record ID:
    its appeals, amendments, what it refers to and what supersedes it."""
    out = {}
    with log.read() as s:
        for leaf_index in range(log.latest_size()):
            row = query.record_at(s, leaf_index)
            if row is None:
                continue
            h = query.history(s, row)
            out[row.record_id] = (
                [r.record_id for r in h.appeals],
                [r.record_id for r in h.amendments],
                h.refers_to.record_id if h.refers_to is not None else None,
                h.superseded_by.record_id if h.superseded_by is not None else None,
            )
    return out


def test_migration_0014_keeps_every_hash_and_history(
    db_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log written at 0013_hashed_keys, migrated: the same tile hashes
    (PostgreSQL's ``hashes`` rebuilt with its columns reordered), still
    append-only, the audit passes, every record's history is what it was,
    and the log appends on."""
    monkeypatch.setattr(ledger.log, "upgrade", lambda engine: upgrade(engine, "0013_hashed_keys"))
    key = PlatformKey(b"\x31" * 32)
    config = {"TESTING": True, "DATABASE_URL": db_url, "KEY_FILE": str(key_file), "ORIGIN": ORIGIN}
    app = create_app(config | {"DERIVED_CHECK_SECONDS": 0})
    engine = make_engine(db_url)
    try:
        with app.app_context():
            app.extensions["ledger"].initialise()
        log: Log = app.extensions["ledger"].log
        client = app.test_client()
        log.registry.add_platform("example-social", "Example Social", key.public_key)
        recs = [decision(f"d-{i}") for i in range(4)]
        recs += [appeal("a-1", "d-1"), amendment("m-1", "d-2"), amendment("m-2", "d-2"), appeal("a-2", "d-2")]
        for rec in recs:  # one entry a group: the tiles get hashes at several sizes
            assert client.post("/api/v1/records", json=sign(rec, key)).status_code == 201
        with engine.connect() as conn:
            hashes_before = conn.execute(text(_HASHES)).all()
        histories = _histories(log)
        assert histories["d-1"] == (["a-1"], [], None, None)
        assert histories["d-2"] == (["a-2"], ["m-1", "m-2"], None, "m-2")
        assert histories["m-2"] == (["a-2"], ["m-1", "m-2"], "d-2", None)

        upgrade(engine, "head")
        assert current_revision(engine) == "0014_dense_rows"
        with engine.connect() as conn:
            assert conn.execute(text(_HASHES)).all() == hashes_before
            if not is_sqlite(engine):
                columns = conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = 'hashes' ORDER BY ordinal_position"
                    )
                ).scalars()
                assert list(columns) == ["idx", "level", "hash"]
        assert _histories(log) == histories
        check_log(log)
        for statement in ("UPDATE hashes SET idx = idx + 1000", "DELETE FROM hashes"):
            with pytest.raises(DBAPIError, match="ledger: "), engine.begin() as conn:
                conn.execute(text(statement))
        assert client.post("/api/v1/records", json=sign(decision("d-9"), key)).status_code == 201
        check_log(log)
    finally:
        app.extensions["ledger"].close()
        engine.dispose()
