"""Migration 0007 and the protection fields on SQLite and PostgreSQL: the new
index columns are filled from the log for rows written before them, the
append-only rule holds again afterwards, and the index of a record naming a
public target keeps no name while an ordinary user's target gives nothing to keep."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger.db import make_engine
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from ledger.records.entries import canonical, entry_bytes
from ledger.records.index_rows import index_row
from ledger.sequencer import Plan
from tests.recordkit import amendment, appeal, decision
from tests.tamper import record_index_as_stored, store_entries_uncompressed

SIGNATURE = {"key_id": "0000000000000000", "alg": "ed25519", "value": "AA=="}
NEW = ("target_class", "reporter_class", "abuse_kind")


def test_migration_fills_protection_columns_from_the_log(db_url: str, signer: Signer) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0006")
        log = Log(engine, signer)
        log.sequencer.init()
        threat = decision("2026-10:1", name="decision-threat-election-worker")
        named = decision("d-2", target={"class": "candidate", "public_subject": {"display_name": "A Candidate"}})
        named["rule"] = {**named["rule"], "abuse": "harassment"}
        fixed = amendment("m-1", "d-2")
        fixed["corrected"] = {**fixed["corrected"], "target": {"class": "group"}, "reporter_class": "trusted_flagger"}
        records = [threat, decision("d-1"), named, fixed, appeal("a-1", "d-1")]

        # Entries and index rows as release 0006 wrote them: without the new columns.
        def plan(_c: Connection, _size: int, now: int) -> Plan:
            entries = [entry_bytes(now, "record", canonical(r), SIGNATURE) for r in records]

            def write(s: Connection, first: int) -> None:
                for i, r in enumerate(records):
                    row: dict[str, Any] = index_row(first + i, now, r)
                    for name in (*NEW, "qid"):  # qid: a later migration's (0009)
                        del row[name]
                    s.execute(insert(record_index_as_stored(s)).values(row))

            return Plan(entries, write)

        first = log.sequencer.sequence(plan).first
        store_entries_uncompressed(engine)  # as that release stored them, too
        upgrade(engine, "0007_protection")
        assert current_revision(engine) == "0007_protection"
        stored = record_index_as_stored(engine)  # the vocabularies as text until 0012_codes
        columns = [stored.c.leaf_index] + [stored.c[name] for name in NEW]
        with log.read() as s:
            got = [tuple(r) for r in s.execute(select(*columns).order_by(stored.c.leaf_index))]
        want = [(first + i, *(index_row(first + i, 0, r)[n] for n in NEW)) for i, r in enumerate(records)]
        assert got == want
        assert want == [
            (first, "election_worker", "target_self", "threat"),
            (first + 1, None, None, None),
            (first + 2, "candidate", None, "harassment"),
            (first + 3, "group", "trusted_flagger", None),
            (first + 4, None, None, None),
        ]
        for statement in ("UPDATE record_index SET target_class = 'group'", "DELETE FROM record_index"):
            with pytest.raises(DBAPIError), Session(engine) as s, s.begin():
                s.execute(text(statement))
    finally:
        engine.dispose()


def test_index_keeps_the_target_class_alone(log: Log) -> None:
    """The index holds the target's class, never a name: the search text of a record
    whose public target is named holds the poster's name only."""
    rec = decision("d-9", target={"class": "candidate", "public_subject": {"display_name": "Target Person"}})
    row = index_row(0, 0, rec)
    assert row["target_class"] == "candidate"
    assert "target person" not in (row["search_text"] or "")
    assert "Target Person" not in {str(v) for v in row.values()}
