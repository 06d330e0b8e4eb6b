"""PostgreSQL: the long-text filters keyed by a hash, the type index of follow-ups only, the leaf-hash index filled.

Revision ID: 0013_hashed_keys
Revises: 0012_codes
Create Date: 2026-12-07

Storage per record at 100,000 records (bench/storage.py, PostgreSQL 15),
each index measured as appends grow it:

- ``record_index_subject_key`` (subject_key, leaf_index) and
  ``record_index_rule_id`` (rule_id, leaf_index), 134 B and 96 B a record,
  become ``record_index_subject_hash`` and ``record_index_rule_hash`` on
  (hashtextextended(text, 0), leaf_index), 29 B each. The key is 8 + 8
  bytes where the text was 27 to 43, and being of fixed width (24-byte
  tuples) it lets the B-tree's "split after the new item" rule fill the
  pages (about 98%) where the text keys left them about 51% full. A
  query's ``col = v`` adds ``hashtextextended(col, 0) =
  hashtextextended(v, 0)`` (:func:`ledger.db.hashed_equal`) and keeps its
  text comparison, which PostgreSQL checks on each row the index gives:
  two texts with one hash cannot give a wrong row, only a row read and
  dropped. ``hashtextextended`` is what hash partitioning stores its rows
  by, so PostgreSQL keeps its results the same across releases.
- ``record_index_type`` (type, leaf_index), 30 B, keeps only the rows that
  are not decisions, 4 B: a page of appeals or amendments reads it newest
  first as before; decisions, seven rows in eight, are read from the
  primary key or the other filters' indexes (their type checked on each).
- ``record_index_logged_at`` becomes a BRIN index (6.6 B to 0.2 B): the
  log time rises with the leaf index, so each range of 128 heap pages
  has a narrow span of times. ``autosummarize`` summarises each range as it
  fills; the unsummarised tail is always read, which is correct.
- ``hashes_leaf`` (a hash index, 48 B a leaf) gets fillfactor 100, 31 B:
  a bucket splits when full rather than three-quarters full. Its 4-byte
  hash codes arrive in random order, so buckets fill evenly. It is
  rebuilt here so an existing database gains at once.

SQLite keeps its indexes (it is within the storage target, and its
planner cannot prove ``type = 'appeal'`` implies ``type <> 'decision'``).
The migration builds three indexes over ``record_index`` and rebuilds
``hashes_leaf``, holding both tables against appends meanwhile (under 3 s
for a log of 100,000 records on a shared 2-core machine, after which
``ledger audit`` passed). The previous release runs on the
migrated schema, slower for subject and rule filters (it names no index,
so it falls back to the other filters' or the primary key).
"""

from __future__ import annotations

from alembic import op

revision = "0013_hashed_keys"
down_revision = "0012_codes"
branch_labels = None
depends_on = None

#: record_index columns whose filter index is keyed by the text's hash.
_HASHED = {"subject_key": "subject_hash", "rule_id": "rule_hash"}
#: The decision code (migration 0012_codes' CODES["type"]["decision"]).
_DECISION = 1


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for column, name in _HASHED.items():
        op.execute(
            f"CREATE INDEX record_index_{name} ON record_index "
            f"(hashtextextended({column}, 0), leaf_index) WITH (fillfactor = 100)"
        )
        op.execute(f"DROP INDEX record_index_{column}")
    op.execute(
        "CREATE INDEX record_index_followup ON record_index (type, leaf_index) "
        f"WITH (fillfactor = 100) WHERE type <> {_DECISION}"
    )
    op.execute("DROP INDEX record_index_type")
    op.execute("DROP INDEX record_index_logged_at")
    op.execute(
        "CREATE INDEX record_index_logged_at ON record_index USING brin (logged_at_ms) WITH (autosummarize = on)"
    )
    op.execute("ALTER INDEX hashes_leaf SET (fillfactor = 100)")
    op.execute("REINDEX INDEX hashes_leaf")


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
