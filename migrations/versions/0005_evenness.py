"""Evenness statistics: the time a decision was flagged, and published digests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

``record_index.flagged_at_ms`` holds ``flagged_at`` of a decision (of the
corrected decision, for an amendment), so that the time to decision is
``decided_at_ms - flagged_at_ms``. The index is derived data: this
migration fills the new column for the rows already there from their log
entries, in Python (JSON inside the entry cannot be read portably in SQL),
a thousand rows per statement, so operators need not run ``ledger reindex``
after upgrading. It reads each decision and amendment entry once (about
10 µs each to parse, so some tens of seconds per million records), inside
the migration's transaction.

``published_statistics`` records, per tree size and method version, the
log entry that published the SHA-256 of the evenness document
(``flask ledger publish-stats``). Each row comes from that registry entry,
written in the same transaction; like the log it is append-only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("published_statistics",)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATCH = 1000


def _ms(value: object) -> int | None:
    """As ``ledger.query._ms`` for a date-time (copied: a migration must not
    change meaning when the application's code does)."""
    if not isinstance(value, str):
        return None
    return (datetime.fromisoformat(value.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def _flagged_at_ms(data: bytes) -> int | None:
    record = json.loads(data)["record"]
    body = record.get("corrected") if record.get("type") == "amendment" else record
    return _ms(body.get("flagged_at")) if isinstance(body, dict) else None


def _backfill(bind: sa.Connection) -> None:
    select = sa.text(
        "SELECT r.leaf_index, e.data FROM record_index r JOIN entries e ON e.idx = r.leaf_index "
        "WHERE r.type IN ('decision', 'amendment') AND r.leaf_index > :after "
        "ORDER BY r.leaf_index LIMIT :n"
    )
    update = sa.text("UPDATE record_index SET flagged_at_ms = :ms WHERE leaf_index = :i")
    after = -1
    while True:
        rows = bind.execute(select, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        bind.execute(update, [{"i": i, "ms": _flagged_at_ms(bytes(data))} for i, data in rows])
        after = rows[-1][0]


def upgrade() -> None:
    op.add_column("record_index", sa.Column("flagged_at_ms", sa.BigInteger))
    _backfill(op.get_bind())
    op.create_table(
        "published_statistics",
        # No foreign key to checkpoints: it would make PostgreSQL refuse TRUNCATE
        # checkpoints with a foreign-key error before the append-only trigger speaks.
        sa.Column("tree_size", sa.BigInteger, primary_key=True),
        sa.Column("method_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
        # Lower-case hex, as in the registry event.
        sa.Column("document_sha256", sa.String(64), nullable=False),
    )
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
