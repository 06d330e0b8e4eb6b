"""Witness cosignatures of the log's checkpoints.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

One row per cosignature (c2sp.org/tlog-cosignature) a configured witness
returned for a checkpoint, verified before it was stored. ``line`` is the
whole signature line as served after the log's own signature. Like the log
the table is append-only: a cosignature is a witness's statement about a
past checkpoint, and withdrawing one would hide what the witness saw.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("cosignatures",)


def upgrade() -> None:
    op.create_table(
        "cosignatures",
        # The size of a checkpoint in ``checkpoints``. No foreign key: on
        # PostgreSQL it would make TRUNCATE checkpoints fail on the key before
        # the append-only trigger could say why.
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness_key_id", sa.String(8), primary_key=True),
        sa.Column("witness_name", sa.Text, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    # The cosigner asks each witness's latest size: max(size) per key.
    op.create_index("cosignatures_witness", "cosignatures", ["witness_key_id", "size"])
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
