"""Appeals and amendments found through the feed index alone; PostgreSQL's tile hashes without padding.

Revision ID: 0014_dense_rows
Revises: 0013_hashed_keys
Create Date: 2026-12-07

Storage per record at 100,000 records (bench/storage.py, PostgreSQL 15):

- ``records_ref`` (platform, ref_record_id) of ``records`` is dropped, on
  both databases: ``record_index_ref`` of ``record_index`` has the same key
  over the same rows (both tables hold one row per platform record, with
  ``ref_record_id`` derived from the record's ``refs.record_id``), and a
  record's history (:func:`ledger.query.history`) now finds the rows'
  leaf indexes there and reads ``records`` by its primary key. 7.3 B a
  record on PostgreSQL, 4.5 B on SQLite.
- ``hashes`` is made again on PostgreSQL with its columns in the order
  (idx, level, hash) rather than (level, idx, hash): a SMALLINT before a
  BIGINT left 6 bytes of alignment padding in every row, and a row of
  73 bytes took 80 where 67 take 72. 84.8 B to 76.9 B a record. Its
  primary key stays (level, idx), so every tile is the same range read.
  SQLite keeps its table (a WITHOUT ROWID table stores its key first
  whatever the declared order, and SQLite pads nothing).

How (PostgreSQL): a new table is filled from the old one in key order, the
old one dropped with its indexes and migration 0001's append-only
triggers (no row is updated: none needs to be), the new one renamed and
given the same primary key (fillfactor 100, 0011_lean_indexes), hash index
(fillfactor 100, 0013_hashed_keys) and triggers. It holds ``hashes``
exclusively meanwhile: appends and proofs wait (2.3 s for a log of
100,000 records on a shared 2-core machine at load 13, after which
``ledger audit`` passed).

The previous release runs on the migrated schema: it names neither index
and reads and writes ``hashes`` by column name. Its record pages read a
history without ``records_ref``, by scanning ``records``: slower, not
wrong, until its servers are replaced.
"""

from __future__ import annotations

from alembic import op

revision = "0014_dense_rows"
down_revision = "0013_hashed_keys"
branch_labels = None
depends_on = None


def _rebuild_hashes() -> None:
    """PostgreSQL: ``hashes`` with the BIGINT first (see the module docstring)."""
    op.execute(
        "CREATE TABLE hashes_new (idx BIGINT NOT NULL, level SMALLINT NOT NULL, hash BYTEA NOT NULL, "
        "CONSTRAINT hashes_new_pkey PRIMARY KEY (level, idx) WITH (fillfactor = 100))"
    )
    # The hash index before the rows: grown by them it is as dense as a new
    # log's (30.6 B a leaf at 100,000); built afterwards, its bucket count is
    # sized from the planner's guess of the rows (42 B a leaf without
    # statistics, 25 to about 40 with, by where the size falls between two
    # powers of two).
    op.execute("CREATE INDEX hashes_new_leaf ON hashes_new USING hash (hash) WITH (fillfactor = 100) WHERE level = 0")
    op.execute("INSERT INTO hashes_new (idx, level, hash) SELECT idx, level, hash FROM hashes ORDER BY level, idx")
    op.execute("DROP TABLE hashes")
    op.execute("ALTER TABLE hashes_new RENAME TO hashes")
    op.execute("ALTER TABLE hashes RENAME CONSTRAINT hashes_new_pkey TO hashes_pkey")
    op.execute("ALTER INDEX hashes_new_leaf RENAME TO hashes_leaf")
    # Migration 0001's triggers (ledger_reject_change() is its function).
    op.execute(
        "CREATE TRIGGER hashes_append_only BEFORE UPDATE OR DELETE ON hashes "
        "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
    )
    op.execute(
        "CREATE TRIGGER hashes_no_truncate BEFORE TRUNCATE ON hashes "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
    )


def upgrade() -> None:
    op.drop_index("records_ref", table_name="records")
    if op.get_bind().dialect.name == "sqlite":
        return
    _rebuild_hashes()


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
