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
from flask import Flask
from sqlalchemy import Column, Engine, Index, Integer, MetaData, inspect, text
from sqlalchemy.exc import DBAPIError

import ledger.log
from app import create_app
from keys.records import PlatformKey
from ledger import query
from ledger.db import HASHED_FILTERS, SQLITE_VIRTUAL_TABLES, is_sqlite, make_engine, metadata, record_index
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from tests.checklog import check_log
from tests.conftest import ORIGIN
from tests.old_releases import write_as_release_0014
from tests.recordkit import amendment, appeal, coverage, decision, sign
from tests.tamper import tamper


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
    AND t.relname IN ('entries', 'hashes', 'record_index')
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


def _log_at(revision: str, db_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Flask, Log, Engine]:
    """A new log made by the migrations up to ``revision``, its one platform
    registered (the registry tables are as they were then)."""
    monkeypatch.setattr(ledger.log, "upgrade", lambda engine: upgrade(engine, revision))
    config = {"TESTING": True, "DATABASE_URL": db_url, "KEY_FILE": str(key_file), "ORIGIN": ORIGIN}
    app = create_app(config | {"DERIVED_CHECK_SECONDS": 0})
    with app.app_context():
        app.extensions["ledger"].initialise()
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    return app, log, make_engine(db_url)


KEY = PlatformKey(b"\x31" * 32)
#: Decisions, appeals and amendments (two of one decision), and a coverage
#: statement superseded by another.
RECORDS = [
    *(decision(f"d-{i}") for i in range(4)),
    appeal("a-1", "d-1"),
    amendment("m-1", "d-2"),
    amendment("m-2", "d-2"),
    appeal("a-2", "d-2"),
    coverage("c-1"),
    coverage("c-2", ref="c-1"),
]


def _write(log: Log) -> None:
    """:data:`RECORDS` as a release before 0015_fold_records wrote them, one entry a group
    (the tiles get hashes at several sizes)."""
    for rec in RECORDS:
        write_as_release_0014(log, [rec], KEY)


def _assert_histories(log: Log) -> None:
    histories = _histories(log)
    assert histories["d-1"] == (["a-1"], [], None, None)
    assert histories["d-2"] == (["a-2"], ["m-1", "m-2"], None, "m-2")
    assert histories["m-2"] == (["a-2"], ["m-1", "m-2"], "d-2", None)
    assert histories["c-1"] == ([], ["c-2"], None, "c-2")
    assert histories["d-3"] == ([], [], None, None)


def test_migration_0014_keeps_every_hash_and_history(
    db_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log written at 0013_hashed_keys, migrated: the same tile hashes
    (PostgreSQL's ``hashes`` rebuilt with its columns reordered), still
    append-only, the audit passes, every record's history is as written,
    and the log appends on."""
    app, log, engine = _log_at("0013_hashed_keys", db_url, key_file, monkeypatch)
    try:
        _write(log)
        with engine.connect() as conn:
            hashes_before = conn.execute(text(_HASHES)).all()
        upgrade(engine, "head")
        with engine.connect() as conn:
            assert conn.execute(text(_HASHES)).all() == hashes_before
            if not is_sqlite(engine):
                assert _columns(conn, "hashes") == ["idx", "level", "hash"]
        _assert_histories(log)
        check_log(log)
        for statement in ("UPDATE hashes SET idx = idx + 1000", "DELETE FROM hashes"):
            with pytest.raises(DBAPIError, match="ledger: "), engine.begin() as conn:
                conn.execute(text(statement))
        client = app.test_client()
        assert client.post("/api/v1/records", json=sign(decision("d-9"), KEY)).status_code == 201
        check_log(log)
    finally:
        app.extensions["ledger"].close()
        engine.dispose()


def _columns(conn: Any, table: str) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t ORDER BY ordinal_position"
            ),
            {"t": table},
        ).scalars()
    )


_RECORDS_BEFORE = (
    "SELECT r.leaf_index, r.platform, r.record_id, r.record_hash, r.key_id, r.logged_at_ms, r.ref_record_id "
    "FROM records r ORDER BY r.leaf_index"
)
_RECORDS_AFTER = _RECORDS_BEFORE.replace("FROM records r", "FROM record_index r")


def test_migration_0015_folds_records_into_the_index(
    db_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log written at 0014_dense_rows (``records`` beside ``record_index``),
    migrated: ``records`` is gone, its hash and key are columns of
    ``record_index`` (on PostgreSQL in the model's order), every row the
    audit derives from its entry, histories as written, the table still
    append-only and unique by (platform, record_id), and a resubmission
    answered with the original, a different record under a logged ID
    refused, a new one appended."""
    app, log, engine = _log_at("0014_dense_rows", db_url, key_file, monkeypatch)
    try:
        _write(log)
        with engine.connect() as conn:
            before = [tuple(r) for r in conn.execute(text(_RECORDS_BEFORE))]
            index_before = conn.execute(text("SELECT count(*) FROM record_index")).scalar_one()
        assert len(before) == index_before == len(RECORDS)
        upgrade(engine, "head")
        assert current_revision(engine) == "0015_fold_records"
        with engine.connect() as conn:
            assert "records" not in inspect(conn).get_table_names()
            assert [tuple(r) for r in conn.execute(text(_RECORDS_AFTER))] == before
            if not is_sqlite(engine):
                assert _columns(conn, "record_index") == list(record_index.c.keys())
        check_log(log)
        _assert_histories(log)
        for statement in (
            "UPDATE record_index SET key_id = key_id",
            "DELETE FROM record_index",
            "INSERT INTO record_index (leaf_index, logged_at_ms, type, record_hash, key_id, platform, record_id) "
            "SELECT 1000, 0, type, record_hash, key_id, platform, record_id FROM record_index WHERE record_id = 'd-1'",
        ):
            with pytest.raises(DBAPIError), engine.begin() as conn:
                conn.execute(text(statement))
        client = app.test_client()
        size = log.latest_size()
        again = client.post("/api/v1/records", json=sign(decision("d-1"), KEY))
        assert again.status_code == 200, again.json
        ((leaf_index, *_),) = [r for r in before if r[2] == "d-1"]
        assert again.json["records"][0]["leaf_index"] == leaf_index
        changed = decision("d-1", name="decision-ordinary-user")
        assert changed != decision("d-1")
        assert client.post("/api/v1/records", json=sign(changed, KEY)).status_code == 409
        assert client.post("/api/v1/records", json=sign(appeal("a-9", "d-3"), KEY)).status_code == 201
        assert log.latest_size() == size + 1
        check_log(log)
        assert _histories(log)["d-3"] == (["a-9"], [], None, None)
    finally:
        app.extensions["ledger"].close()
        engine.dispose()


def test_migration_0015_stops_at_unpaired_rows(db_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``records`` row without its ``record_index`` row (derived rows
    incomplete) stops the migration, which then writes nothing."""
    app, log, engine = _log_at("0014_dense_rows", db_url, key_file, monkeypatch)
    try:
        _write(log)
        tamper(engine, "DELETE FROM record_index WHERE record_id = 'd-2'")
        with pytest.raises(RuntimeError, match=f"records has {len(RECORDS)} rows, record_index {len(RECORDS) - 1}"):
            upgrade(engine, "head")
        assert current_revision(engine) == "0014_dense_rows"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM records")).scalar_one() == len(RECORDS)
            assert "record_index_new" not in inspect(conn).get_table_names()
    finally:
        app.extensions["ledger"].close()
        engine.dispose()
