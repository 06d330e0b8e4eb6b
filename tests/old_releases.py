"""Appending records as releases before migration 0015_fold_records did:
an entry, a ``records`` row and a ``record_index`` row each (and a
coverage statement's row), written to the
tables as the database's revision has them (reflected). For the tests of
migrations that upgrade logs those releases wrote; the application's own
model describes the migrated schema only."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, MetaData, Table, insert, text

from keys.records import PlatformKey
from ledger.db import coverage_statements, is_sqlite
from ledger.derived import coverage_row
from ledger.log import Log
from ledger.records import codes
from ledger.records.coverage import parse_statement
from ledger.records.entries import canonical, entry_bytes
from ledger.records.index_rows import index_row
from ledger.sequencer import Plan
from tests.recordkit import sign


def write_as_release_0014(
    log: Log,
    records: list[dict[str, Any]],
    key: PlatformKey,
    *,
    coded: bool = True,
    change: dict[str, Any] | None = None,
) -> int:
    """Append ``records`` signed by ``key`` in one transaction, with the
    rows a release before 0015_fold_records derived; return the first's
    leaf index. ``coded``: the closed vocabularies as their codes (releases
    from 0012_codes on), else as text; ``change`` overrides index columns."""

    def plan(_c: Connection, _size: int, now: int) -> Plan:
        signed = [sign(r, key)["signature"] for r in records]
        entries = [entry_bytes(now, "record", canonical(r), sig) for r, sig in zip(records, signed, strict=True)]

        def write(s: Connection, first: int) -> None:
            stored = MetaData()
            records_table = Table("records", stored, autoload_with=s)
            index_table = Table("record_index", stored, autoload_with=s)
            for i, (r, sig) in enumerate(zip(records, signed, strict=True)):
                refs = r.get("refs")
                s.execute(
                    insert(records_table).values(
                        leaf_index=first + i,
                        platform=r["platform"],
                        record_id=r["record_id"],
                        type=r["type"],
                        record_hash=hashlib.sha256(canonical(r)).digest(),
                        key_id=sig["key_id"],
                        logged_at_ms=now,
                        ref_record_id=refs.get("record_id") if isinstance(refs, dict) else None,
                    )
                )
                row = {**index_row(first + i, now, r), **(change or {})}
                if coded:
                    row = {c: codes.encode(c, v) if c in codes.CODES else v for c, v in row.items()}
                s.execute(insert(index_table).values(row))
                if r["type"] == "coverage":
                    s.execute(insert(coverage_statements).values(coverage_row(parse_statement(r, first + i))))
                if is_sqlite(log.engine) and row["search_text"]:
                    s.execute(
                        text("INSERT INTO record_search(rowid, search_text) VALUES (:i, :t)"),
                        {"i": first + i, "t": row["search_text"]},
                    )

        return Plan(entries, write)

    return log.sequencer.sequence(plan).first
