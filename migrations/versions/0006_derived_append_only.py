"""The feed's query index becomes append-only, and its search index checkable.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``record_index`` is derived from the log entries, row for row, and the
statistics, the feed and the pages read it. Its rows never change once
written, so like the other derived tables (migrations 0002 and 0005) it
gets the append-only triggers; ``flask ledger audit`` compares every row
with what its entry derives (ledger/derived.py). A later migration that
must rewrite it (a new column to fill) drops the triggers and creates them
again in its own transaction, as this one is the first to need.

On SQLite, ``record_search`` (FTS5, trigram) becomes an external-content
index of ``record_index.search_text`` instead of a contentless one: it
stores the same index and no text, and FTS5's ``integrity-check`` can then
prove it indexes exactly that column. The index is rebuilt from the
column. ``columnsize=0``: the feed never ranks by BM25, and without
per-row sizes a row whose text is NULL needs no entry in the index (with
them, FTS5 counts every content row, and rows without text would have to
be inserted too). FTS5 tables cannot carry triggers; the audit's check
covers this one.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("record_index",)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE record_search")
        op.execute(
            "CREATE VIRTUAL TABLE record_search USING fts5(search_text, content='record_index', "
            "content_rowid='leaf_index', tokenize='trigram', columnsize=0)"
        )
        op.execute("INSERT INTO record_search(record_search) VALUES ('rebuild')")
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
