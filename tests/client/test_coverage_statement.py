"""``mdl coverage-statement``: a statement from a month's records plus the platform's totals (issue 16)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from api.record_validator import validate_record
from client.cli import mdl
from tests.api.test_submissions import KEY
from tests.recordkit import decision, sign


def _records(tmp_path: Path) -> Path:
    recs = [decision(f"dec-{i}") for i in range(3)]  # legislators, April 2026, removals without exemption
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(sign(r, KEY)) + "\n" for r in recs))
    return path


def _run(tmp_path: Path, *extra: str) -> object:
    args = ["coverage-statement", "--records", str(_records(tmp_path)), "--platform", "example-social"]
    args += ["--period", "2026-04", "--rule-id", "hateful-conduct/dehumanisation", "--record-id", "cov-1"]
    args += ["--description", "Every decision under the rule on the classes listed.", *extra]
    args += ["--submitted-at", "2026-05-02T00:00:00Z"]
    return CliRunner().invoke(mdl, args)


def test_totals_make_a_valid_statement(tmp_path: Path) -> None:
    totals = tmp_path / "totals.json"
    totals.write_text(json.dumps({"legislator": {"remove_content": {"not_exempted": 5}, "label": {"exempted": 2}}}))
    res = _run(tmp_path, "--totals", str(totals))
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    statement = json.loads(res.stdout)  # type: ignore[attr-defined]
    assert statement["counts"] == {"legislator": {"label": {"exempted": 2}, "remove_content": {"not_exempted": 5}}}
    assert validate_record(statement, datetime(2026, 6, 1, tzinfo=UTC)) == []


def test_without_totals_the_records_are_counted_and_it_says_so(tmp_path: Path) -> None:
    res = _run(tmp_path)
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert json.loads(res.stdout)["counts"] == {"legislator": {"remove_content": {"not_exempted": 3}}}  # type: ignore[attr-defined]
    assert "declares only what was logged" in res.stderr  # type: ignore[attr-defined]


def test_totals_below_the_records_are_refused(tmp_path: Path) -> None:
    totals = tmp_path / "totals.json"
    totals.write_text(json.dumps({"legislator": {"remove_content": {"not_exempted": 2}}}))
    res = _run(tmp_path, "--totals", str(totals))
    assert res.exit_code == 1
    assert "would be contradicted" in res.output  # type: ignore[attr-defined]
    bad = _run(tmp_path, "--period", "2026-13")
    assert bad.exit_code == 2  # type: ignore[attr-defined]
