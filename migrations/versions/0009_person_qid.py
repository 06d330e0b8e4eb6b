"""A person across platforms: the Wikidata item of a record's account.

Revision ID: 0009_person_qid
Revises: 0008_coverage
Create Date: 2026-12-06

``account.public_subject.wikidata_qid`` (docs/records.md) names the person
or body behind a public account; platforms give it where they can. The
feed's ``qid`` filter and the person page (``/people/<QID>``) read it from
a new ``record_index`` column, indexed with ``leaf_index`` for newest-first
pages as the other filters are (migration 0003). It is the account's item,
never a protection record's target's (ledger.records.index_rows.person_qid
says why). Appeals carry no account: the feed finds them through their
decision, as for every decision filter.

The index is derived data, so this migration fills the column for the rows
already there from their log entries, in Python, a thousand rows per
statement, lifting migration 0006's append-only triggers for the backfill
alone in its own transaction, as 0007_protection did. The previous release
keeps working: it names the columns it writes, so its inserts leave the new
nullable column empty; rows it writes after this migration hold no item,
which ``ledger audit`` reports as differing from their entries until the
new release has replaced it (run the upgrade before the new release, and
stop the old one before it writes).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009_person_qid"
down_revision = "0008_coverage"
branch_labels = None
depends_on = None

_BATCH = 1000


def _qid(data: bytes) -> str | None:
    """The account's item of an entry (copied from ledger.records.index_rows.person_qid:
    a migration must not change meaning when the application's code does)."""
    record = json.loads(data)["record"]
    body = record.get("corrected") if record.get("type") == "amendment" else record
    if not isinstance(body, dict):
        return None
    subject = (body.get("account") or {}).get("public_subject") or {}
    qid = subject.get("wikidata_qid")
    return qid if isinstance(qid, str) else None


def _backfill(bind: sa.Connection) -> None:
    select = sa.text(
        "SELECT r.leaf_index, e.data FROM record_index r JOIN entries e ON e.idx = r.leaf_index "
        "WHERE r.type IN ('decision', 'amendment') AND r.leaf_index > :after "
        "ORDER BY r.leaf_index LIMIT :n"
    )
    update = sa.text("UPDATE record_index SET qid = :q WHERE leaf_index = :i")
    after = -1
    while True:
        rows = bind.execute(select, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        changed = [{"i": i, "q": q} for i, data in rows if (q := _qid(bytes(data))) is not None]
        if changed:
            bind.execute(update, changed)
        after = rows[-1][0]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("record_index", sa.Column("qid", sa.String(20)))
    # Partial: most accounts name no item, and ``qid = ?`` implies IS NOT NULL.
    has_qid = sa.text("qid IS NOT NULL")
    op.create_index(
        "record_index_qid", "record_index", ["qid", "leaf_index"], sqlite_where=has_qid, postgresql_where=has_qid
    )
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
