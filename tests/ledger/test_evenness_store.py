"""Migration 0005 on SQLite and PostgreSQL: the new column is filled from
the log for index rows written before it, and digests are append-only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger.db import make_engine, record_index
from ledger.evenness_store import published_statistics
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from ledger.records.entries import canonical, entry_bytes
from ledger.records.index_rows import index_row
from ledger.sequencer import Plan
from tests.recordkit import amendment, appeal, decision
from tests.tamper import record_index_as_stored, store_entries_uncompressed

SIGNATURE = {"key_id": "0000000000000000", "alg": "ed25519", "value": "AA=="}


def test_migration_fills_flagged_at_from_the_log(db_url: str, signer: Signer) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0004")
        log = Log(engine, signer)
        log.sequencer.init()
        records = [decision("d-1"), amendment("m-1", "d-1"), appeal("a-1", "d-1"), decision("d-2")]
        records[3]["flagged_at"] = "2026-04-15T06:12:40.123456789Z"

        # Entries and index rows as the previous release wrote them: no flagged_at_ms.
        def plan(_c: Connection, _size: int, now: int) -> Plan:
            entries = [entry_bytes(now, "record", canonical(r), SIGNATURE) for r in records]

            def write(s: Connection, first: int) -> None:
                for i, r in enumerate(records):
                    row: dict[str, Any] = index_row(first + i, now, r)
                    for later in ("flagged_at_ms", "target_class", "reporter_class", "abuse_kind", "qid"):
                        del row[later]  # 0005's column, 0007's and 0009's
                    s.execute(insert(record_index_as_stored(s)).values(row))

            return Plan(entries, write)

        first = log.sequencer.sequence(plan).first
        store_entries_uncompressed(engine)  # as that release stored them, too
        upgrade(engine, "0005")
        assert current_revision(engine) == "0005"
        with log.read() as s:
            got = s.execute(
                select(record_index.c.leaf_index, record_index.c.flagged_at_ms).order_by(record_index.c.leaf_index)
            ).all()
        want = [(first + i, index_row(first + i, 0, r)["flagged_at_ms"]) for i, r in enumerate(records)]
        assert [tuple(r) for r in got] == want
        assert want[2][1] is None  # an appeal has no flag time
        assert want[1][1] == 1772476802000  # the amendment's corrected flagged_at, 2026-03-02T18:40:02Z
        assert want[3][1] % 1000 == 123
    finally:
        engine.dispose()


def test_published_statistics_are_append_only(log: Log) -> None:
    with Session(log.engine) as s, s.begin():
        s.execute(insert(published_statistics).values(tree_size=0, method_version=1, leaf_index=7, document_sha256="a"))
    for statement in ("UPDATE published_statistics SET leaf_index = 8", "DELETE FROM published_statistics"):
        with pytest.raises(DBAPIError), Session(log.engine) as s, s.begin():
            s.execute(text(statement))
