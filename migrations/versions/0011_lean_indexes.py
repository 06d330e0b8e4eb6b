"""Leaner indexes: the rule filter's index without the version, PostgreSQL's B-trees filled.

Revision ID: 0011_lean_indexes
Revises: 0010_storage
Create Date: 2026-12-06

``record_index_rule_id_rule_version`` (rule_id, rule_version, leaf_index)
becomes ``record_index_rule_id`` (rule_id, leaf_index), on both databases.
A page of one rule, newest first, is then read from the index in order
(the three-column index gave rows in leaf order only within one version,
so a rule with several versions was sorted). Each entry of the index is
the version's bytes smaller: 112 B a record to 97 B on PostgreSQL, 49 B to
41 B on SQLite (bench/storage.py, 20,000 records). The cost: a filter on a
rule *and* a version reads that rule's rows newest first and checks the
version on each, or, where the planner expects matches to come soon, the
whole feed newest first (it takes the two as independent). A version few
of the rule's rows have is then found slowly: a pair that matched none of
20,000 rows took 24 ms on PostgreSQL, read from the log's end, where the
three-column index went straight to it. The rule alone is the filter the
feed is measured on (issue 14); the version is an advanced one.

On PostgreSQL every B-tree index of the tables that grow with the log
(``entries``, ``hashes``, ``records``, ``record_index``) gets fillfactor
100. Fillfactor is what a B-tree leaves free when it splits the page at
its right-hand end (90% full by default), room for later keys below the
greatest. These tables are append-only (migrations 0001 and 0006: no
UPDATE, so no new versions of a row), and their keys arrive at the
right-hand end (leaf indexes, times, the greatest value of a filter), so
that room stays empty. It saves 2 to 5 B a record for each such index,
about 35 B in all. Keys that arrive inside an index (a filter's value
other than the greatest, at the end of that value's range; a record ID)
split their page in half whatever the fillfactor, which is why those
feed indexes are about 56% full (docs/performance.md, Storage).

Only new pages are affected: ``ALTER INDEX ... SET`` rewrites nothing and
takes no lock that stops the feed, so an existing database's indexes grow
denser from here on. ``REINDEX INDEX CONCURRENTLY <name>`` (outside this
migration, which runs in one transaction) rebuilds one at 100%, the
halved pages too, without blocking appends. The previous release runs
unchanged on the migrated schema: it names no index. Building the new
rule index holds ``record_index`` (appends and feed reads wait) for the
few seconds it takes at a million records.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_lean_indexes"
down_revision = "0010_storage"
branch_labels = None
depends_on = None

#: The tables that grow with every entry (their B-trees are filled).
_GROWING = ("entries", "hashes", "records", "record_index")

_PG_BTREES = """
SELECT i.relname FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_am a ON a.oid = i.relam
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname IN :tables AND a.amname = 'btree'
ORDER BY i.relname
"""


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("record_index_rule_id_rule_version", table_name="record_index")
    op.create_index("record_index_rule_id", "record_index", ["rule_id", "leaf_index"])
    if bind.dialect.name == "sqlite":
        return
    select = sa.text(_PG_BTREES).bindparams(sa.bindparam("tables", expanding=True))
    for name in bind.execute(select, {"tables": list(_GROWING)}).scalars():
        op.execute(f'ALTER INDEX "{name}" SET (fillfactor = 100)')


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
