"""Coverage statements: one derived row per logged statement.

Revision ID: 0008_coverage
Revises: 0007_protection
Create Date: 2026-12-06

A coverage statement (docs/records.md, "Coverage fields") is a record like
any other (``records``, ``record_index``); ``coverage_statements`` holds
what the coverage comparison reads of it: the platform, period, rule,
inclusion criterion, the statement it supersedes, and its counts as compact
JSON with sorted keys (``ledger.records.coverage.counts_text``). Every row
is a function of its log entry alone (ledger/derived.py), so the audit
compares it like the other derived tables, and it is append-only like them.
No statement can predate this migration (schema version 1 gained the type
with it), so there is nothing to fill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_coverage"
down_revision = "0007_protection"
branch_labels = None
depends_on = None

TABLES = ("coverage_statements",)


def upgrade() -> None:
    op.create_table(
        "coverage_statements",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("platform", sa.String(63), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("criterion", sa.String(32), nullable=False),
        sa.Column("supersedes", sa.String(128)),
        sa.Column("counts", sa.Text, nullable=False),
    )
    op.create_index("coverage_statements_scope", "coverage_statements", ["platform", "period", "rule_id"])
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: {event} on {table} is forbidden: the log is append-only'); END"
                )
    else:
        # ledger_reject_change() is migration 0001's.
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
            )


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
