"""Feed downloads on SQLite and PostgreSQL: each format selects exactly what
the feed selects, in log order, with the columns of ``mirror --csv``; pandas
and DuckDB read each file as it is; the checkpoint is named in the headers;
a selection beyond the bound is refused with the bound in the message."""

from __future__ import annotations

import base64
import gzip
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from ledger import query
from ledger.records.entries import canonical
from ledger.records.export import CSV_COLUMNS
from ledger.tlog.merkle import record_hash
from ledger.tlog.verify import verify_checkpoint
from tests.api.test_feed import dataset as dataset

QUERIES = [
    "",
    "platform=other-video",
    "type=appeal",
    "severity=critical&political=false",
    "q=zzzz-no-such-text",
    "qid=Q4115189",
]


def _feed_indexes(client: FlaskClient, q: str) -> list[int]:
    r = client.get("/api/v1/records?limit=200&" + q)
    assert r.status_code == 200, r.json
    assert r.json["next_cursor"] is None
    return sorted(x["leaf_index"] for x in r.json["records"])


def _get(client: FlaskClient, fmt: str, q: str) -> Any:
    r = client.get(f"/api/v1/feed.{fmt}?{q}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r


@pytest.mark.parametrize("q", QUERIES)
def test_each_format_holds_what_the_feed_selects(
    app: Flask, client: FlaskClient, dataset: list[dict[str, Any]], tmp_path: Path, q: str
) -> None:
    expected = _feed_indexes(client, q)
    assert q == "q=zzzz-no-such-text" or expected  # the cases select something, but for one

    csv = _get(client, "csv", q)
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.headers["Ledger-Record-Count"] == str(len(expected))
    frame = pd.read_csv(io.BytesIO(csv.data), dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert [int(i) for i in frame["index"]] == expected

    nd = _get(client, "ndjson", q)
    lines = nd.data.splitlines()
    assert [json.loads(line)["index"] for line in lines] == expected
    for line in lines:  # each line is the entry with index and leaf_hash spliced in: the hash re-derives
        obj = json.loads(line)
        leaf = base64.b64decode(obj.pop("leaf_hash"))
        del obj["index"]
        assert record_hash(canonical(obj)) == leaf
    if lines:
        assert list(pd.read_json(io.BytesIO(nd.data), lines=True)["index"]) == expected

    pq = _get(client, "parquet", q)
    assert pq.headers["Content-Type"] == "application/vnd.apache.parquet"
    table = pd.read_parquet(io.BytesIO(pq.data))
    assert list(table.columns) == list(CSV_COLUMNS)
    assert list(table["index"]) == expected
    assert table.drop(columns="index").equals(frame.drop(columns="index"))

    for fmt, r, reader in [
        ("csv", csv, "read_csv"),
        ("parquet", pq, "read_parquet"),
        ("ndjson", nd, "read_json_auto"),
    ]:
        if fmt == "ndjson" and not lines:
            continue  # DuckDB cannot infer columns from an empty file
        path = tmp_path / f"records.{fmt}"
        path.write_bytes(r.data)
        got = duckdb.sql(f"SELECT index FROM {reader}('{path}') ORDER BY index").fetchall()
        assert [int(row[0]) for row in got] == expected, fmt


def test_headers_name_a_checkpoint_signed_by_the_log(app: Flask, client: FlaskClient, dataset: Any) -> None:
    log = app.extensions["ledger"].log
    for fmt in ("csv", "ndjson", "parquet"):
        r = _get(client, fmt, "type=decision")
        note = base64.b64decode(r.headers["Ledger-Checkpoint-Note"], validate=True)
        cp = verify_checkpoint(note, log.verifier)
        assert r.headers["Ledger-Checkpoint-Origin"] == cp.origin == log.origin
        assert r.headers["Ledger-Checkpoint-Size"] == str(cp.size) == str(log.latest_size())
        assert r.headers["Ledger-Checkpoint-Root"] == base64.b64encode(cp.root).decode()
        assert r.headers["Content-Disposition"] == f'attachment; filename="records-{cp.size}.{fmt}"'


def test_the_unfiltered_csv_is_the_export_csv(app: Flask, client: FlaskClient, dataset: Any) -> None:
    """One column set and one dialect: the feed's CSV of everything equals the range export's."""
    size = app.extensions["ledger"].log.latest_size()
    export = client.get(f"/api/v1/export?start=0&end={size}&format=csv")
    assert export.status_code == 200
    assert gzip.decompress(export.data) == _get(client, "csv", "").data


def test_too_many_records_is_refused_saying_the_bound(
    client: FlaskClient, dataset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query, "MAX_DOWNLOAD", 10)
    r = client.get("/api/v1/feed.csv?platform=example-social")
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "more than 10 records match: a download holds at most 10" in r.json["detail"]
    assert _get(client, "csv", "type=appeal").headers["Ledger-Record-Count"] == "1"


@pytest.mark.parametrize(
    "q,path",
    [
        ("limit=5", "limit"),
        ("cursor=abc", "cursor"),
        ("severity=huge", "severity"),
        ("nope=1", "nope"),
        ("qid=Q01", "qid"),
    ],
)
def test_bad_parameters_are_problems(client: FlaskClient, q: str, path: str) -> None:
    r = client.get(f"/api/v1/feed.ndjson?{q}")
    assert r.status_code == 400
    assert [e["path"] for e in r.json["errors"]] == [path]


def test_unknown_format_is_not_found(client: FlaskClient) -> None:
    assert client.get("/api/v1/feed.xlsx").status_code == 404
