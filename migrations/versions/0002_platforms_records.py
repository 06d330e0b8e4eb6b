"""Platform registry and the records index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Every row here is derived from a log entry (``leaf_index``) written in the
same transaction, so the tables can be rebuilt from the log alone. Like
the log itself they are append-only: a key is revoked by a new row in
``key_revocations``, never by editing ``platform_keys``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("platforms", "platform_keys", "key_revocations", "records")


def upgrade() -> None:
    op.create_table(
        "platforms",
        sa.Column("slug", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
    )
    op.create_table(
        "platform_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("platform", sa.String(63), sa.ForeignKey("platforms.slug"), nullable=False, index=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("valid_from_ms", sa.BigInteger, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
    )
    op.create_table(
        "key_revocations",
        sa.Column("key_id", sa.String(16), sa.ForeignKey("platform_keys.key_id"), primary_key=True),
        sa.Column("revoked_from_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
    )
    op.create_table(
        "records",
        sa.Column("leaf_index", Index64, primary_key=True, autoincrement=False),
        sa.Column("platform", sa.String(63), sa.ForeignKey("platforms.slug"), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        # SHA-256 of the canonical record: an identical resubmission is idempotent.
        sa.Column("record_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("key_id", sa.String(16), sa.ForeignKey("platform_keys.key_id"), nullable=False),
        sa.Column("logged_at_ms", sa.BigInteger, nullable=False),
        sa.Column("ref_record_id", sa.String(128)),
        sa.UniqueConstraint("platform", "record_id", name="records_platform_record_id"),
    )
    op.create_index("records_ref", "records", ["platform", "ref_record_id"])
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: {event} on {table} is forbidden: the log is append-only'); END"
                )
    else:
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
