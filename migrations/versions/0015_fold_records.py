"""The ``records`` table folded into ``record_index``.

Revision ID: 0015_fold_records
Revises: 0014_dense_rows
Create Date: 2026-12-07

``records`` held, for each platform record, its leaf index, platform,
record ID, type, reference and log time, which ``record_index`` holds too,
and two values it alone held: the record's hash (an identical
resubmission is answered with the original, a different record under the
same ID refused) and the key that signed it. On PostgreSQL it took 221 B a
record at 100,000 records (heap 136, the unique (platform, record_id)
index 45, the primary key 20; docs/performance.md), which kept the log
~99 B a record over issue 14's budget.

``record_index`` is made again, on both databases, with ``record_hash``
(BYTEA / BLOB) and ``key_id`` as columns among the varying-length ones
(after the booleans, before ``platform``: the order that pads least on
PostgreSQL, ledger/db.py), the foreign keys ``records`` had (platform to
``platforms``, key to ``platform_keys``) and its unique constraint on
(platform, record_id), now ``record_index_platform_record_id``. Then
``records`` is dropped.

How: the rows of both tables are counted and joined by leaf index (with
the same platform and record ID); unless every row of each has its one
partner, the migration stops, names the counts and writes nothing (it
runs in one transaction): a log whose derived rows are incomplete is
repaired first (``flask ledger audit``, ``flask ledger reindex``). The new
table is filled in leaf order, its rows counted again, both old tables
dropped (their indexes and append-only triggers with them: no row is
updated), the new one renamed and given ``record_index``'s indexes as
migrations 0012 and 0013 left them (PostgreSQL's B-trees at fillfactor
100, 0011_lean_indexes), the unique constraint, the pg_trgm index and
migration 0006's triggers. SQLite's full-text index ``record_search`` is
external content keyed by ``leaf_index`` and names the table, not its
columns' places, so it stays as it is. Both tables are held exclusively
meanwhile: appends and the feed wait.

The previous release cannot run on the migrated schema (it reads and
writes ``records``): stop every server of it before the first server of
this release starts and migrates (docs/deployment.md), as for 0012. Going
back means restoring the backup taken before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_fold_records"
down_revision = "0014_dense_rows"
branch_labels = None
depends_on = None

Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The coded columns, as migration 0012_codes made them (in order).
_CODED = (
    *("type", "account_class", "category", "severity", "action", "exemption_type", "review_path"),
    *("interim_state", "detection_source", "automated_decision", "appeal_outcome"),
    *("target_class", "reporter_class", "abuse_kind"),
)
_BOOLEANS = ("political", "violation_found", "exemption_applied")
_TEXTS = (
    ("platform", 63, False),
    ("record_id", 128, False),
    ("ref_record_id", 128, True),
    ("subject_key", 128, True),
    ("display_name", 200, True),
    ("rule_id", 128, True),
    ("rule_version", 64, True),
    ("territories", 1000, True),
    ("qid", 20, True),
)
#: The columns taken from ``records``.
_FROM_RECORDS = ("record_hash", "key_id")

#: The filters' B-trees on both databases (each with leaf_index).
_FILTERS = ("platform", "account_class", "political", "category", "action", "review_path", "detection_source")
#: SQLite only: as they are (PostgreSQL has hashed or partial ones, 0013).
_SQLITE_FILTERS = ("type", "subject_key", "rule_id")
#: PostgreSQL only: keyed by the text's 64-bit hash (0013_hashed_keys).
_HASHED = {"subject_key": "subject_hash", "rule_id": "rule_hash"}
#: Partial: only the rows that have a value (0009, 0010).
_SPARSE = ("exemption_type", "target_class", "reporter_class", "abuse_kind", "qid")
#: The decision code (migration 0012_codes' CODES["type"]["decision"]).
_DECISION = 1


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("leaf_index", Index64, primary_key=True, autoincrement=False),
        sa.Column("logged_at_ms", sa.BigInteger, nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger),
        sa.Column("flagged_at_ms", sa.BigInteger),
        *(sa.Column(c, sa.SmallInteger, nullable=c != "type") for c in _CODED),
        *(sa.Column(c, sa.Boolean) for c in _BOOLEANS),
        sa.Column("record_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        *(sa.Column(c, sa.String(n), nullable=nullable) for c, n, nullable in _TEXTS),
        sa.Column("search_text", sa.Text),
    ]


def _count(bind: sa.Connection, sql: str) -> int:
    return int(bind.execute(sa.text(sql)).scalar_one())


_JOINED = (
    "FROM record_index ri JOIN records r "
    "ON r.leaf_index = ri.leaf_index AND r.platform = ri.platform AND r.record_id = ri.record_id"
)


def _refuse_unpaired_rows(bind: sa.Connection) -> int:
    """The number of records; stops the migration unless each row of
    ``records`` and of ``record_index`` has its one partner."""
    records = _count(bind, "SELECT count(*) FROM records")
    index = _count(bind, "SELECT count(*) FROM record_index")
    joined = _count(bind, f"SELECT count(*) {_JOINED}")
    if not records == index == joined:
        raise RuntimeError(
            f"records has {records} rows, record_index {index}, and {joined} pair up by leaf index, "
            "platform and record ID: the derived rows are incomplete; run `flask --app app ledger audit` "
            "(and `ledger reindex` for missing feed rows) before migrating"
        )
    return records


def _indexes(sqlite: bool) -> None:
    fill = {} if sqlite else {"postgresql_with": {"fillfactor": 100}}
    for c in _FILTERS:
        op.create_index(f"record_index_{c}", "record_index", [c, "leaf_index"], **fill)
    for c in _SPARSE:
        where = sa.text(f"{c} IS NOT NULL")
        op.create_index(
            f"record_index_{c}", "record_index", [c, "leaf_index"], sqlite_where=where, postgresql_where=where, **fill
        )
    op.create_index("record_index_decided_at", "record_index", ["decided_at_ms"], **fill)
    where = sa.text("ref_record_id IS NOT NULL")
    op.create_index(
        "record_index_ref",
        "record_index",
        ["platform", "ref_record_id"],
        sqlite_where=where,
        postgresql_where=where,
        **fill,
    )
    if sqlite:
        for c in _SQLITE_FILTERS:
            op.create_index(f"record_index_{c}", "record_index", [c, "leaf_index"])
        op.create_index("record_index_logged_at", "record_index", ["logged_at_ms"])
        return
    op.execute(
        "ALTER TABLE record_index ADD CONSTRAINT record_index_platform_record_id "
        "UNIQUE (platform, record_id) WITH (fillfactor = 100)"
    )
    for column, name in _HASHED.items():
        op.execute(
            f"CREATE INDEX record_index_{name} ON record_index "
            f"(hashtextextended({column}, 0), leaf_index) WITH (fillfactor = 100)"
        )
    op.execute(
        "CREATE INDEX record_index_followup ON record_index (type, leaf_index) "
        f"WITH (fillfactor = 100) WHERE type <> {_DECISION}"
    )
    op.execute(
        "CREATE INDEX record_index_logged_at ON record_index USING brin (logged_at_ms) WITH (autosummarize = on)"
    )
    schema = (
        op.get_bind()
        .execute(sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"))
        .scalar_one()
    )
    op.execute(f"CREATE INDEX record_index_search ON record_index USING gin (search_text {schema}.gin_trgm_ops)")


def _triggers(sqlite: bool) -> None:
    """Migration 0006's append-only triggers (ledger_reject_change() is 0001's)."""
    if sqlite:
        for event in ("UPDATE", "DELETE"):
            message = f"ledger: {event} on record_index is forbidden: the log is append-only"
            op.execute(
                f"CREATE TRIGGER record_index_no_{event.lower()} BEFORE {event} ON record_index "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return
    op.execute(
        "CREATE TRIGGER record_index_append_only BEFORE UPDATE OR DELETE ON record_index "
        "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
    )
    op.execute(
        "CREATE TRIGGER record_index_no_truncate BEFORE TRUNCATE ON record_index "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
    )


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    rows = _refuse_unpaired_rows(bind)
    columns = _columns()
    constraints: list[sa.Constraint] = [
        sa.ForeignKeyConstraint(["platform"], ["platforms.slug"], name="record_index_platform_fkey"),
        sa.ForeignKeyConstraint(["key_id"], ["platform_keys.key_id"], name="record_index_key_id_fkey"),
    ]
    if sqlite:
        # SQLite adds no constraint to a table: the unique one is made with it.
        constraints.append(sa.UniqueConstraint("platform", "record_id", name="record_index_platform_record_id"))
    op.create_table("record_index_new", *columns, *constraints)
    if not sqlite:  # before the rows: the key grows at its right-hand end
        op.execute("ALTER INDEX record_index_new_pkey SET (fillfactor = 100)")
    names = [c.name for c in columns]
    values = [f"r.{n}" if n in _FROM_RECORDS else f"ri.{n}" for n in names]
    op.execute(
        f"INSERT INTO record_index_new ({', '.join(names)}) SELECT {', '.join(values)} {_JOINED} ORDER BY ri.leaf_index"
    )
    copied = _count(bind, "SELECT count(*) FROM record_index_new")
    if copied != rows:
        raise RuntimeError(f"record_index: {copied} rows copied of {rows}")
    op.drop_table("records")
    op.drop_table("record_index")
    op.rename_table("record_index_new", "record_index")
    if not sqlite:
        op.execute("ALTER INDEX record_index_new_pkey RENAME TO record_index_pkey")
    _indexes(sqlite)
    _triggers(sqlite)


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
