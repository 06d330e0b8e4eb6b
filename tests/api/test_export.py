"""Bulk export on SQLite and PostgreSQL: verifiable, reproducible, streamed."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import tracemalloc
import zlib
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from keys.records import RECORD_CONTEXT, PlatformKey
from ledger.log import Log
from ledger.records.entries import canonical, entry_bytes
from ledger.records.export import CSV_COLUMNS
from ledger.tlog import merkle, verify
from tests.recordkit import amendment, appeal, decision, sign

KEY = PlatformKey(bytes([5]) * 32)


@pytest.fixture
def log(app: Flask, client: FlaskClient) -> Log:
    lg: Log = app.extensions["ledger"].log
    lg.registry.add_platform("example-social", "Example Social", KEY.public_key)
    recs = [decision(f"d-{i}") for i in range(300)] + [appeal("a-1", "d-1"), amendment("m-1", "d-2")]
    for i in range(0, len(recs), 100):
        assert (
            client.post("/api/v1/records", json={"records": [sign(r, KEY) for r in recs[i : i + 100]]}).status_code
            == 201
        )
    return lg


def _get(client: FlaskClient, url: str) -> tuple[Any, bytes]:
    r = client.get(url)
    assert r.status_code == 200, r.data
    return r, gzip.decompress(r.data)


def test_ndjson_export_verifies_against_its_checkpoint(client: FlaskClient, log: Log) -> None:
    r, body = _get(client, "/api/v1/export?start=0&end=150")
    lines = [json.loads(x) for x in body.decode().splitlines()]
    head, rows = lines[0], lines[1:]
    cp = verify.verify_checkpoint(head["checkpoint"]["signed_note"].encode(), log.verifier)
    assert head["start"] == 0
    assert head["end"] == 150
    assert cp.size >= 150
    assert r.headers["Ledger-Checkpoint-Size"] == str(cp.size)
    assert [x["index"] for x in rows] == list(range(150))
    for x in rows:
        kind = "record" if "record" in x else "registry"
        entry = canonical({"logged_at": x["logged_at"], kind: x[kind], "signature": x["signature"]})
        assert base64.b64decode(x["leaf_hash"]) == merkle.record_hash(entry)
    assert "registry" in rows[0]
    assert rows[1]["record"]["record_id"] == "d-0"


def test_export_of_a_whole_checkpoint_recomputes_its_root(client: FlaskClient, log: Log) -> None:
    size = log.latest_size()
    _, body = _get(client, f"/api/v1/export?start=0&end={size}")
    lines = [json.loads(x) for x in body.decode().splitlines()]
    cp = verify.verify_checkpoint(lines[0]["checkpoint"]["signed_note"].encode(), log.verifier)
    assert cp.size == size
    from tests.reference import ListReader

    ref = ListReader()
    for x in lines[1:]:
        kind = "record" if "record" in x else "registry"
        ref.add(canonical({"logged_at": x["logged_at"], kind: x[kind], "signature": x["signature"]}))
    assert merkle.tree_hash(size, ref) == cp.root


def test_csv_export(client: FlaskClient, log: Log) -> None:
    r, body = _get(client, "/api/v1/export?start=0&end=303&format=csv")
    rest = body.decode()
    assert rest.startswith(",".join(CSV_COLUMNS) + "\r\n")  # the header first: no comment line to skip
    assert r.headers["Ledger-Checkpoint-Origin"] == log.origin
    assert r.headers["Ledger-Checkpoint-Size"] == "303"
    rows = list(csv.DictReader(io.StringIO(rest, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 302  # the registry entry has no row
    d0 = rows[0]
    assert d0["record_id"] == "d-0"
    assert d0["account.class"] == "legislator"
    assert d0["violation_found"] == "true"
    assert d0["territorial_scope"] == "GLOBAL"
    assert d0["account.public_subject.display_name"] == "Example Legislatora"
    by_id = {r["record_id"]: r for r in rows}
    assert by_id["a-1"]["outcome"] == "reversed"
    assert by_id["a-1"]["account.class"] == ""
    assert by_id["m-1"]["reason"] == "late_classification"
    assert by_id["m-1"]["refs.record_id"] == "d-2"
    assert by_id["m-1"]["account.class"] == ""
    assert by_id["m-1"]["corrected.account.class"] == "head_of_state"
    assert by_id["m-1"]["corrected.account.public_subject.handle"] == "'@presidentia"  # opens as text
    assert {r["extra"] for r in rows} == {""}


def test_files_are_immutable(client: FlaskClient, log: Log) -> None:
    r1, _ = _get(client, "/api/v1/export?start=10&end=200&format=csv")
    assert r1.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    client.post("/api/v1/records", json=sign(decision("later"), KEY))
    r2, _ = _get(client, "/api/v1/export?start=10&end=200&format=csv")
    assert r1.data == r2.data
    b1, _ = _get(client, "/api/v1/export/bundles/0.ndjson.gz")
    assert b1.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/api/v1/export/bundles/5.ndjson.gz").status_code == 404
    open_ended = client.get("/api/v1/export?start=0")
    assert open_ended.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "query,status",
    [
        ("start=5&end=5", 400),
        ("start=0&end=100001", 400),
        ("start=0&end=99999", 404),
        ("format=xml&start=0", 400),
        ("end=3", 400),
    ],
)
def test_bad_ranges(client: FlaskClient, log: Log, query: str, status: int) -> None:
    assert client.get(f"/api/v1/export?{query}").status_code == status


def _peak_while_streaming(client: FlaskClient, end: int) -> tuple[int, int]:
    """Stream an export without keeping it; return (peak traced bytes, uncompressed size)."""
    tracemalloc.start()
    try:
        resp = client.get(f"/api/v1/export?start=0&end={end}", buffered=False)
        unzip = zlib.decompressobj(31)
        raw = sum(len(unzip.decompress(chunk)) for chunk in resp.response)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    resp.close()
    return peak, raw


def test_large_export_streams_in_flat_memory(app: Flask, client: FlaskClient) -> None:
    """Exporting 5 times more entries takes 5 times the output but not more
    memory: the file is never built whole."""
    lg: Log = app.extensions["ledger"].log
    rec = decision("big")
    sig = KEY.sign(RECORD_CONTEXT, canonical(rec))
    lg.sequencer.append(
        [
            entry_bytes(1_700_000_000_000, "record", canonical(rec | {"record_id": f"big-{i}"}), sig)
            for i in range(10_000)
        ]
    )
    small_peak, small_raw = _peak_while_streaming(client, 2_000)
    big_peak, big_raw = _peak_while_streaming(client, 10_000)
    assert big_raw > 4.5 * small_raw
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)
    assert big_peak < big_raw / 2, (big_peak, big_raw)
