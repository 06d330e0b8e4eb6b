"""The closed vocabularies' codes of ``record_index`` (ledger/records/codes.py,
migration 0012_codes): fixed, complete, one value per code, and what the
database holds."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from keys.records import PlatformKey
from ledger.db import Code, record_index
from ledger.log import Log
from ledger.records import codes, vocab
from tests.recordkit import decision, sign

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
