"""Migration 0009 and the person column on SQLite and PostgreSQL: the
``qid`` column is filled from the log for rows written before it, the
append-only rule holds again afterwards, and the feed's ``qid`` filter
finds a person's decisions on every platform with their appeals and
amendments, through the column's index."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger.db import is_sqlite, make_engine, record_index
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from ledger.records.entries import canonical, entry_bytes
from ledger.records.index_rows import index_row
from ledger.sequencer import Plan
from tests.recordkit import amendment, appeal, decision
from tests.tamper import record_index_as_stored, store_entries_uncompressed

SIGNATURE = {"key_id": "0000000000000000", "alg": "ed25519", "value": "AA=="}
ITEM = "Q4115189"


def _write_as_release_0008(log: Log, records: list[dict[str, Any]]) -> int:
    """Append ``records`` with index rows as release 0008 wrote them: without ``qid``."""

    def plan(_c: Connection, _size: int, now: int) -> Plan:
        entries = [entry_bytes(now, "record", canonical(r), SIGNATURE) for r in records]

        def write(s: Connection, first: int) -> None:
            for i, r in enumerate(records):
                row: dict[str, Any] = index_row(first + i, now, r)
                del row["qid"]
                s.execute(insert(record_index_as_stored(s)).values(row))

        return Plan(entries, write)

    first = log.sequencer.sequence(plan).first
    store_entries_uncompressed(log.engine, first)  # as that release stored them, too
    return first


def test_migration_fills_the_person_column_from_the_log(db_url: str, signer: Signer) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0008_coverage")
        log = Log(engine, signer)
        log.sequencer.init()
        other = amendment("m-2", "d-1")
        other["corrected"]["account"]["public_subject"]["wikidata_qid"] = "Q42"
        records = [
            decision("d-1", name="decision-head-of-state-newsworthiness"),
            decision("d-2", name="decision-legislator-removal"),
            decision("d-3", name="decision-ordinary-user"),
            appeal("a-1", "d-1"),
            amendment("m-1", "d-1"),
            other,
        ]
        first = _write_as_release_0008(log, records)
        upgrade(engine, "0009_person_qid")
        assert current_revision(engine) == "0009_person_qid"
        with log.read() as s:
            c = record_index.c
            got = [tuple(r) for r in s.execute(select(c.leaf_index, c.qid).order_by(c.leaf_index))]
        want = [(first + i, index_row(first + i, 0, r)["qid"]) for i, r in enumerate(records)]
        assert got == want
        assert [q for _, q in want] == [ITEM, None, None, None, ITEM, "Q42"]
        # The previous release keeps appending on the new schema: its rows leave qid empty.
        late = _write_as_release_0008(log, [decision("d-4", name="decision-head-of-state-newsworthiness")])
        with log.read() as s:
            assert s.execute(select(record_index.c.qid).where(record_index.c.leaf_index == late)).scalar_one() is None
        for statement in ("UPDATE record_index SET qid = 'Q1'", "DELETE FROM record_index"):
            with pytest.raises(DBAPIError), Session(engine) as s, s.begin():
                s.execute(text(statement))
    finally:
        engine.dispose()


def test_the_qid_filter_uses_its_index(engine: Any) -> None:
    sql = "SELECT leaf_index FROM record_index WHERE qid = :v AND leaf_index < 1000 ORDER BY leaf_index DESC LIMIT 50"
    with engine.connect() as conn:
        if is_sqlite(engine):
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql), {"v": ITEM}))
            assert "INDEX record_index_qid" in plan, plan
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), {"v": ITEM}))
            assert "record_index_qid" in plan, plan
