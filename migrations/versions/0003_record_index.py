"""The query index of records: the columns the feed's filters need.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Unlike the log's tables this one is derived data: it is written in the
same transaction as each record's log entry, and ``flask ledger reindex``
rebuilds it from the log alone, so it has no append-only triggers.
Text search uses a trigram index: ``pg_trgm`` on PostgreSQL, an FTS5
``trigram`` table on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Columns with an index of their own (each with leaf_index, for newest-first pages).
INDEXED = (
    ("platform",),
    ("type",),
    ("account_class",),
    ("political",),
    ("subject_key",),
    ("rule_id", "rule_version"),
    ("category",),
    ("action",),
    ("exemption_type",),
    ("review_path",),
    ("detection_source",),
)


def upgrade() -> None:
    op.create_table(
        "record_index",
        sa.Column("leaf_index", Index64, primary_key=True, autoincrement=False),
        sa.Column("platform", sa.String(63), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("ref_record_id", sa.String(128)),
        sa.Column("logged_at_ms", sa.BigInteger, nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger),
        sa.Column("account_class", sa.String(32)),
        sa.Column("political", sa.Boolean),
        sa.Column("subject_key", sa.String(128)),
        sa.Column("display_name", sa.String(200)),
        sa.Column("rule_id", sa.String(128)),
        sa.Column("rule_version", sa.String(64)),
        sa.Column("category", sa.String(64)),
        sa.Column("severity", sa.String(16)),
        sa.Column("action", sa.String(32)),
        sa.Column("violation_found", sa.Boolean),
        sa.Column("exemption_applied", sa.Boolean),
        sa.Column("exemption_type", sa.String(40)),
        sa.Column("review_path", sa.String(32)),
        sa.Column("interim_state", sa.String(32)),
        sa.Column("detection_source", sa.String(32)),
        sa.Column("automated_decision", sa.String(16)),
        sa.Column("appeal_outcome", sa.String(16)),
        # ",DE,FR," or ",GLOBAL,": a territory filter is a LIKE on ",XX,".
        sa.Column("territories", sa.String(1000)),
        sa.Column("search_text", sa.Text),
    )
    for cols in INDEXED:
        op.create_index(f"record_index_{'_'.join(cols)}", "record_index", [*cols, "leaf_index"])
    op.create_index("record_index_decided_at", "record_index", ["decided_at_ms"])
    op.create_index("record_index_logged_at", "record_index", ["logged_at_ms"])
    op.create_index("record_index_ref", "record_index", ["platform", "ref_record_id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE record_search USING fts5(search_text, content='', tokenize='trigram')")
    else:
        # An extension exists once per database; keep it in a schema of its
        # own choosing (public by default) and qualify its operator class.
        bind = op.get_bind()
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        schema = bind.execute(
            sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
        ).scalar_one()
        op.execute(f"CREATE INDEX record_index_search ON record_index USING gin (search_text {schema}.gin_trgm_ops)")


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
