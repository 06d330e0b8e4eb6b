"""Storage: entries compressed, SQLite's full-text index without positions, leaner indexes.

Revision ID: 0010_storage
Revises: 0009_person_qid
Create Date: 2026-12-06

Every row of ``entries`` is rewritten in its stored form
(ledger/entry_codec.py: a format byte, then raw deflate against the
record vocabulary's preset dictionary, or the bytes as they are when that
is no smaller). The entries' own bytes, and so every leaf hash, tile and
checkpoint, are unchanged: only how they sit on disk. The rewrite needs the
append-only triggers of migration 0001 lifted, so this migration drops and
recreates them in its own transaction, as 0007 did for ``record_index``: no
other writer sees the table without them. A thousand rows per statement,
in Python (the encoding is zlib's, which neither database has).

The previous release cannot read the converted rows (it would serve the
stored form as the entry): stop every server of it before the first
server of this release starts and migrates (docs/deployment.md). Going
back means restoring the backup taken before. Each database keeps the space the old
rows held for new rows; ``VACUUM`` (SQLite) or ``VACUUM FULL entries``
(PostgreSQL) gives it back to the file system.

SQLite's full-text index ``record_search`` (FTS5, trigram, external
content since 0006) is made again with ``detail=none``: for each trigram,
the rows that hold it and no positions in them, 228 bytes a record instead
of 930 (bench/storage.py). FTS5 cannot match a phrase without positions;
the feed's search (``ledger.query``) finds the rows that hold every trigram
of the text and checks the text itself in ``record_index.search_text``,
the same rows as before. FTS5's ``integrity-check`` still proves it
indexes exactly that column. The previous release's phrase queries fail on
this table ("phrase queries are not supported"), one more reason it must
not run against a migrated database.

The feed's filters on fields most records lack (``exemption_type`` and
the protection fields of 0007) and the two ``(platform, ref_record_id)``
indexes become partial indexes of the rows that have a value: a filter's
``col = ?`` (or ``IN``) implies ``col IS NOT NULL``, and both databases
prove it, so every plan that used them still does (tests/api/test_feed.py
checks the filters). On PostgreSQL ``hashes_leaf`` becomes a hash index: a
4-byte code per leaf, for the equality lookup that is all it serves.

Encoding with the application's ``encode_entry`` is safe for a migration,
unlike the copied derivations of 0005 and 0007: whatever format it writes
is one that this release and every later one read (a format byte is never
reused).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.entry_codec import encode_entry

revision = "0010_storage"
down_revision = "0009_person_qid"
branch_labels = None
depends_on = None

_BATCH = 1000
#: Filters on fields most records lack (ledger.db.SPARSE_FILTERS, copied:
#: a migration keeps its meaning when the application's code changes).
_SPARSE_FILTERS = ("exemption_type", "target_class", "reporter_class", "abuse_kind")
_SQLITE_TRIGGER = (
    "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger: UPDATE on entries is forbidden: the log is append-only'); END"
)
_PG_TRIGGER = (
    "CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
)


def _compress_entries(bind: sa.Connection) -> None:
    select = sa.text("SELECT idx, data FROM entries WHERE idx > :after ORDER BY idx LIMIT :n")
    update = sa.text("UPDATE entries SET data = :data WHERE idx = :idx")
    after = -1
    while True:
        rows = bind.execute(select, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        bind.execute(update, [{"idx": idx, "data": encode_entry(bytes(data))} for idx, data in rows])
        after = rows[-1][0]


def _sqlite_search_without_positions() -> None:
    op.execute("DROP TABLE record_search")
    op.execute(
        "CREATE VIRTUAL TABLE record_search USING fts5(search_text, content='record_index', "
        "content_rowid='leaf_index', tokenize='trigram', columnsize=0, detail=none)"
    )
    op.execute("INSERT INTO record_search(record_search) VALUES ('rebuild')")


#: (index, table, columns, the column most rows lack): made again as
#: partial indexes of the rows that have it.
_SPARSE = (
    *((f"record_index_{c}", "record_index", (c, "leaf_index"), c) for c in _SPARSE_FILTERS),
    ("record_index_ref", "record_index", ("platform", "ref_record_id"), "ref_record_id"),
    ("records_ref", "records", ("platform", "ref_record_id"), "ref_record_id"),
)


def _sparse_indexes() -> None:
    for name, table, columns, sparse in _SPARSE:
        op.drop_index(name, table_name=table)
        where = sa.text(f"{sparse} IS NOT NULL")
        op.create_index(name, table, list(columns), sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DROP TRIGGER entries_no_update" if sqlite else "DROP TRIGGER entries_append_only ON entries")
    _compress_entries(op.get_bind())
    op.execute(_SQLITE_TRIGGER if sqlite else _PG_TRIGGER)
    _sparse_indexes()
    if sqlite:
        _sqlite_search_without_positions()
    else:
        op.drop_index("hashes_leaf", table_name="hashes")
        op.execute("CREATE INDEX hashes_leaf ON hashes USING hash (hash) WHERE level = 0")


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
