"""The read paths over HTTP: C2SP checkpoint and tiles, the JSON API, errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ledger.log import Log
from ledger.tlog import merkle, verify
from ledger.tlog.tile import parse_bundle
from tests.reference import ListReader, tiles_for_size


def _log(app: Flask) -> Log:
    return app.extensions["ledger"].log  # type: ignore[no-any-return]


@pytest.fixture
def filled(app: Flask) -> ListReader:
    """A log of 600 entries in three batches, and its reference copy."""
    ref = ListReader()
    for batch in ([b"first"], [b"e%d" % i for i in range(300)], [b"f%d" % i for i in range(299)]):
        _log(app).sequencer.append(batch)
        for d in batch:
            ref.add(d)
    return ref


def test_checkpoint(client: FlaskClient, app: Flask, filled: ListReader) -> None:
    r = client.get("/checkpoint")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    cp = verify.verify_checkpoint(r.data, _log(app).verifier)
    assert cp.size == 600
    assert cp.root == merkle.tree_hash(600, filled)


def test_every_tile_and_bundle(client: FlaskClient, filled: ListReader) -> None:
    for tile in tiles_for_size(600):
        r = client.get("/" + tile.path())
        assert r.status_code == 200, tile.path()
        assert r.data == filled.tile_data(tile)
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # A partial tile of an earlier checkpoint stays available after the tile fills.
    r = client.get("/tile/0/000.p/1")
    assert r.data == merkle.record_hash(b"first")
    assert parse_bundle(client.get("/tile/entries/000.p/1").data, 1) == [b"first"]


@pytest.mark.parametrize("path", ["/tile/0/0", "/tile/0/000.p/0", "/tile/x/000", "/tile/0/x000/001", "/tile/64/000"])
def test_malformed_tile_paths_are_400(client: FlaskClient, filled: ListReader, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json is not None
    assert r.json["status"] == 400


@pytest.mark.parametrize(
    "path", ["/tile/0/002", "/tile/0/002.p/89", "/tile/1/000", "/tile/2/000.p/1", "/tile/entries/003"]
)
def test_tiles_beyond_the_tree_are_404(client: FlaskClient, filled: ListReader, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"] == "application/problem+json"


def test_log_info(client: FlaskClient, app: Flask, filled: ListReader) -> None:
    body: Any = client.get("/api/v1/log").json
    log = _log(app)
    assert body["origin"] == log.origin
    assert body["verifier_key"] == log.verifier.to_key()
    assert body["checkpoint"]["tree_size"] == 600
    verify.verify_checkpoint(body["checkpoint"]["signed_note"].encode(), body["verifier_key"])


def _cp(body: dict[str, Any], vkey: str) -> Any:
    cp = verify.verify_checkpoint(body["signed_note"].encode(), vkey)
    assert cp.size == body["tree_size"]
    return cp


def test_inclusion_proofs_by_index_and_hash(client: FlaskClient, app: Flask, filled: ListReader) -> None:
    vkey = _log(app).verifier.to_key()
    for index in (0, 1, 255, 256, 599):
        body: Any = client.get(f"/api/v1/proofs/inclusion?leaf_index={index}").json
        cp = _cp(body["checkpoint"], vkey)
        proof = [base64.b64decode(h) for h in body["inclusion_path"]]
        verify.verify_entry(filled.entries[index], index, proof, cp)
        leaf = merkle.record_hash(filled.entries[index])
        for spelling in (leaf.hex(), base64.b64encode(leaf).decode()):
            by_hash: Any = client.get("/api/v1/proofs/inclusion", query_string={"leaf_hash": spelling}).json
            assert by_hash == body
    # Against an older checkpoint.
    body = client.get("/api/v1/proofs/inclusion?leaf_index=0&tree_size=1").json
    assert body["inclusion_path"] == []
    assert body["checkpoint"]["tree_size"] == 1


def test_entry(client: FlaskClient, app: Flask, filled: ListReader) -> None:
    body: Any = client.get("/api/v1/entries/300").json
    assert base64.b64decode(body["entry"]) == filled.entries[300]
    cp = _cp(body["checkpoint"], _log(app).verifier.to_key())
    verify.verify_entry(filled.entries[300], 300, [base64.b64decode(h) for h in body["inclusion_path"]], cp)
    assert client.get("/api/v1/entries/600").status_code == 404


def test_consistency_proofs(client: FlaskClient, app: Flask, filled: ListReader) -> None:
    vkey = _log(app).verifier.to_key()
    for first, second in ((0, 600), (1, 301), (1, 600), (301, 600), (600, 600)):
        body: Any = client.get(f"/api/v1/proofs/consistency?first={first}&second={second}").json
        old = _cp(body["first_checkpoint"], vkey)
        new = _cp(body["checkpoint"], vkey)
        verify.verify_consistency(old, new, [base64.b64decode(h) for h in body["consistency_path"]])
    latest: Any = client.get("/api/v1/proofs/consistency?first=301").json
    assert latest["second"] == 600


@pytest.mark.parametrize(
    "query,status,path",
    [
        ("leaf_index=%2B1", 400, "leaf_index"),
        ("leaf_index=01", 400, "leaf_index"),
        ("leaf_index=1_0", 400, "leaf_index"),
        ("leaf_index=-1", 400, "leaf_index"),
        ("leaf_index=9223372036854775808", 400, "leaf_index"),
        ("leaf_hash=" + "0" * 63 + "A", 400, "leaf_hash"),
        ("leaf_index=1&leaf_index=2", 400, "leaf_index"),
        ("leaf_hash=zz", 400, "leaf_hash"),
        ("leaf_index=1&bogus=2", 400, "bogus"),
        ("", 400, None),
        ("leaf_index=1&leaf_hash=" + "00" * 32, 400, None),
        ("leaf_index=600", 404, None),
        ("leaf_index=0&tree_size=2", 404, None),
        ("leaf_hash=" + "00" * 32, 404, None),
    ],
)
def test_bad_proof_requests(client: FlaskClient, filled: ListReader, query: str, status: int, path: str | None) -> None:
    r = client.get("/api/v1/proofs/inclusion?" + query)
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/problem+json"
    body: Any = r.json
    assert body["status"] == status
    assert body["detail"]
    if path:
        assert [e["path"] for e in body["errors"]] == [path]


def test_unknown_api_urls_answer_problem_json(client: FlaskClient) -> None:
    r = client.get("/api/v1/nope")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    r = client.post("/checkpoint")
    assert r.status_code == 405
    assert r.headers["Content-Type"] == "application/problem+json"


def test_home_page(client: FlaskClient, app: Flask, filled: ListReader) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Latest signed checkpoint" in html
    assert _log(app).verifier.to_key() in html
    assert "600" in html
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    css = client.get("/static/style.css")
    assert css.status_code == 200
    css.close()
