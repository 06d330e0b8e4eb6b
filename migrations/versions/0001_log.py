"""The append-only Merkle log: entries, tile hashes, checkpoints, head.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Triggers make the database itself refuse UPDATE and DELETE (and, on
PostgreSQL, TRUNCATE) on the log's tables, so neither a bug nor an operator
with SQL access can rewrite history without first dropping a trigger, which
``flask ledger audit`` and every outside verifier would then catch by the
changed hashes. ``log_head`` is the one mutable row: it may only grow.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("entries", "hashes", "checkpoints")


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("idx", Index64, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "hashes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sqlite_with_rowid=False,
    )
    # Inclusion proofs by leaf hash look the leaf up here.
    op.create_index(
        "hashes_leaf",
        "hashes",
        ["hash"],
        sqlite_where=sa.text("level = 0"),
        postgresql_where=sa.text("level = 0"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", Index64, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "log_head",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.CheckConstraint("id = 1", name="log_head_single_row"),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()


def _sqlite_triggers() -> None:
    for table in APPEND_ONLY:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger: {event} on {table} is forbidden: the log is append-only'); END"
            )
    op.execute(
        "CREATE TRIGGER log_head_no_delete BEFORE DELETE ON log_head "
        "BEGIN SELECT RAISE(ABORT, 'ledger: DELETE on log_head is forbidden'); END"
    )
    op.execute(
        "CREATE TRIGGER log_head_forward_only BEFORE UPDATE ON log_head "
        "WHEN NEW.size <= OLD.size OR NEW.id != OLD.id "
        "BEGIN SELECT RAISE(ABORT, 'ledger: the log head may only move forward'); END"
    )


def _postgresql_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger: % on % is forbidden: the log is append-only', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION ledger_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'UPDATE' OR NEW.size <= OLD.size OR NEW.id <> OLD.id THEN
                RAISE EXCEPTION 'ledger: the log head may only move forward'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
        )
    op.execute(
        "CREATE TRIGGER log_head_forward_only BEFORE UPDATE OR DELETE ON log_head "
        "FOR EACH ROW EXECUTE FUNCTION ledger_head_forward_only()"
    )
    op.execute(
        "CREATE TRIGGER log_head_no_truncate BEFORE TRUNCATE ON log_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
