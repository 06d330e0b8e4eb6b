"""Protection statistics: whom a decision's content targeted, and who reported it.

Revision ID: 0007_protection
Revises: 0006
Create Date: 2026-12-06

Record schema 1 gained three optional decision fields (docs/records.md,
"Protection fields"): ``rule.abuse``, ``target.class`` and
``reporter_class``. ``record_index`` gets a column for each, so the feed can
filter on them (each indexed as migration 0003's class columns) and the
protection statistics can read them
(ledger/evenness/protection.py). The index is derived data: this migration
fills the new columns for the rows already there from their log entries, in
Python, a thousand rows per statement, as migration 0005 did for
``flagged_at_ms``. Migration 0006 made the index append-only; as its
docstring foresees, the update needs the triggers lifted, so this migration
drops and recreates them in its own transaction: no other writer sees the
table without them. Entries written before this release cannot hold the
fields (the schema refused them), so on an existing ledger the backfill
writes NULLs; it runs anyway so that the migration's claim does not rest on
that argument.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007_protection"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000
_COLUMNS = (("target_class", 32), ("reporter_class", 32), ("abuse_kind", 16))


def _values(data: bytes) -> dict[str, str | None]:
    """The three columns of an entry (copied from ledger.records.index_rows: a
    migration must not change meaning when the application's code does)."""
    record = json.loads(data)["record"]
    body = record.get("corrected") if record.get("type") == "amendment" else record
    if not isinstance(body, dict):
        return {"t": None, "r": None, "a": None}
    target, rule = body.get("target") or {}, body.get("rule") or {}
    return {"t": target.get("class"), "r": body.get("reporter_class"), "a": rule.get("abuse")}


def _backfill(bind: sa.Connection) -> None:
    select = sa.text(
        "SELECT r.leaf_index, e.data FROM record_index r JOIN entries e ON e.idx = r.leaf_index "
        "WHERE r.type IN ('decision', 'amendment') AND r.leaf_index > :after "
        "ORDER BY r.leaf_index LIMIT :n"
    )
    update = sa.text(
        "UPDATE record_index SET target_class = :t, reporter_class = :r, abuse_kind = :a WHERE leaf_index = :i"
    )
    after = -1
    while True:
        rows = bind.execute(select, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        changed = [{"i": i} | v for i, data in rows if any((v := _values(bytes(data))).values())]
        if changed:
            bind.execute(update, changed)
        after = rows[-1][0]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, length in _COLUMNS:
        op.add_column("record_index", sa.Column(name, sa.String(length)))
        # The feed filters on each, newest first, as on the other class columns (0003).
        op.create_index(f"record_index_{name}", "record_index", [name, "leaf_index"])
    # Lift the append-only rule for the backfill alone (migration 0006's triggers).
    if sqlite:
        op.execute("DROP TRIGGER record_index_no_update")
    else:
        op.execute("DROP TRIGGER record_index_append_only ON record_index")
    _backfill(op.get_bind())
    if sqlite:
        op.execute(
            "CREATE TRIGGER record_index_no_update BEFORE UPDATE ON record_index "
            "BEGIN SELECT RAISE(ABORT, 'ledger: UPDATE on record_index is forbidden: the log is append-only'); END"
        )
    else:
        op.execute(
            "CREATE TRIGGER record_index_append_only BEFORE UPDATE OR DELETE ON record_index "
            "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
        )


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
