"""The closed vocabularies' codes of ``record_index`` (ledger/records/codes.py,
migration 0012_codes): fixed, complete, one value per code, and what the
database holds."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from keys.note import Signer
from keys.records import PlatformKey
from ledger import derived, storage
from ledger.db import Code, make_engine, record_index
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from ledger.records import codes, vocab
from ledger.records.entries import canonical
from ledger.records.index_rows import index_row
from tests.old_releases import write_as_release_0014
from tests.recordkit import amendment, appeal, decision, sign

KEY = PlatformKey(b"\x31" * 32)

#: Each coded column's vocabulary (ledger/records/vocab.py).
VOCABULARIES = {
    "type": vocab.RECORD_TYPES,
    "account_class": vocab.ACCOUNT_CLASSES,
    "category": vocab.CATEGORIES,
    "severity": vocab.SEVERITIES,
    "action": vocab.ACTIONS,
    "exemption_type": vocab.EXEMPTION_TYPES,
    "review_path": vocab.REVIEW_PATHS,
    "interim_state": vocab.INTERIM_STATES,
    "detection_source": vocab.DETECTION_SOURCES,
    "automated_decision": vocab.AUTOMATED_DECISIONS,
    "appeal_outcome": vocab.APPEAL_OUTCOMES,
    "target_class": vocab.TARGET_CLASSES,
    "reporter_class": vocab.REPORTER_CLASSES,
    "abuse_kind": vocab.ABUSE_KINDS,
}


def _migration() -> ModuleType:
    path = Path(__file__).parents[2] / "migrations" / "versions" / "0012_codes.py"
    spec = importlib.util.spec_from_file_location("migration_0012_codes", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_value_of_each_coded_column_has_one_code() -> None:
    assert set(codes.CODES) == set(VOCABULARIES)
    for column, values in VOCABULARIES.items():
        assert set(values) <= set(codes.CODES[column]), column
        assert len(set(codes.CODES[column].values())) == len(codes.CODES[column]), column
        assert all(0 < code < 2**15 for code in codes.CODES[column].values()), column


def test_a_code_never_changes_meaning() -> None:
    """The codes the migration wrote are still the application's (new values only add codes)."""
    written = _migration().CODES
    assert set(written) == set(codes.CODES)
    for column, values in written.items():
        assert {v: codes.CODES[column][v] for v in values} == values, column


def test_the_model_codes_exactly_these_columns() -> None:
    coded = [c.name for c in record_index.c if isinstance(c.type, Code)]
    assert sorted(coded) == sorted(codes.CODED_COLUMNS)


def test_encode_and_decode_are_strict() -> None:
    assert codes.encode("action", "label") == codes.CODES["action"]["label"]
    assert codes.decode("action", codes.CODES["action"]["label"]) == "label"
    assert codes.encode("action", None) is None
    assert codes.decode("action", None) is None
    with pytest.raises(ValueError, match="has no code"):
        codes.encode("action", "obliterate")
    for bad in (0, -1, 999):
        with pytest.raises(ValueError, match="names no value"):
            codes.decode("action", bad)
    decode = codes.row_decoder(["action", None])
    assert decode((codes.CODES["action"]["label"], 7)) == ("label", 7)
    assert decode((None, None)) == (None, None)
    for bad in (0, -1, 999, "x"):
        with pytest.raises(KeyError):
            decode((bad, 7))


def test_the_database_holds_codes_and_the_model_reads_values(app: Flask, client: FlaskClient) -> None:
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    assert client.post("/api/v1/records", json=sign(decision("c-1"), KEY)).status_code == 201
    c = record_index.c
    with log.engine.connect() as conn:
        stored = conn.execute(text("SELECT type, action FROM record_index WHERE record_id = 'c-1'")).one()
        read = conn.execute(select(c.type, c.action).where(c.record_id == "c-1")).one()
        # A filter binds the code; a value without one matches nothing.
        assert conn.execute(select(c.record_id).where(c.action == read.action)).scalars().all() == ["c-1"]
        assert conn.execute(select(c.record_id).where(c.action == "obliterate")).scalars().all() == []
    assert read.type == "decision"
    assert tuple(stored) == (codes.CODES["type"]["decision"], codes.CODES["action"][read.action])


def _write_as_release_0011(log: Log, records: list[dict[str, Any]], change: dict[str, Any] | None = None) -> int:
    """Append ``records`` with the rows release 0011 wrote: the index's vocabularies as text."""
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    return write_as_release_0014(log, records, KEY, coded=False, change=change)


def test_migration_codes_the_rows_release_0011_wrote(db_url: str, signer: Signer) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0011_lean_indexes")
        log = Log(engine, signer)
        log.sequencer.init()
        records = [
            decision("d-1", name="decision-head-of-state-newsworthiness"),
            decision("d-2", name="decision-legislator-removal"),
            decision("d-3", name="decision-ordinary-user"),
            appeal("a-1", "d-1"),
            amendment("m-1", "d-2"),
        ]
        first = _write_as_release_0011(log, records)
        upgrade(engine, "head")
        assert current_revision(engine) == "0015_fold_records"
        c = record_index.c
        with log.read() as s:
            got = [dict(r._mapping) for r in s.execute(select(record_index).order_by(c.leaf_index))]
            raw = s.execute(text("SELECT type, action FROM record_index ORDER BY leaf_index")).all()
            entries = storage.read_entries(s, first, first + len(records))
            mismatches = derived.check_range(s, first, first + len(records), entries)
        want = [
            index_row(first + i, got[i]["logged_at_ms"], r)
            | {"record_hash": hashlib.sha256(canonical(r)).digest(), "key_id": KEY.key_id}
            for i, r in enumerate(records)
        ]
        assert got == want
        assert [tuple(r) for r in raw] == [
            (codes.encode("type", w["type"]), codes.encode("action", w["action"])) for w in want
        ]
        # The audit compares the codes as stored with what the entries derive.
        assert mismatches == []
        for statement in (
            f"UPDATE record_index SET action = {codes.CODES['action']['none']}",
            "DELETE FROM record_index",
        ):
            with pytest.raises(DBAPIError), Session(engine) as s, s.begin():
                s.execute(text(statement))
    finally:
        engine.dispose()


def test_migration_stops_at_a_value_without_a_code(db_url: str, signer: Signer) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0011_lean_indexes")
        log = Log(engine, signer)
        log.sequencer.init()
        _write_as_release_0011(log, [decision("d-1")], {"action": "obliterate"})
        with pytest.raises(RuntimeError, match=r"record_index\.action holds values without a code: \['obliterate'\]"):
            upgrade(engine, "head")
        assert current_revision(engine) == "0011_lean_indexes"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT action FROM record_index")).scalar_one() == "obliterate"
    finally:
        engine.dispose()
