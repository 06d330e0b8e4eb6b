"""``GET /checkpoint``, tiles and inclusion proofs answered before Flask
(``LeanReads``, api/lean.py) give the very answer Flask's own routes give:
status line, every header in order, body bytes; for good requests, for
each kind of bad one (which the layer hands to Flask) and for HEAD, on
SQLite and PostgreSQL. Flask's routes are reached by calling the layer's
``flask_wsgi`` (what it passes every other request to)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from api.lean import LeanReads
from api.submissions import LeanSubmissions
from ledger.tlog.merkle import record_hash

Answer = tuple[str, list[tuple[str, str]], bytes]


def _call(wsgi: Any, path: str, query: str = "", method: str = "GET", headers: Any = None) -> Answer:
    environ = EnvironBuilder(path=path, query_string=query, method=method, headers=headers).get_environ()
    if query:
        environ["QUERY_STRING"] = query  # as sent, not re-encoded
    app_iter, status, got = run_wsgi_app(wsgi, environ)
    try:
        data = b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return status, list(got.items()), data


def _reads(app: Flask) -> LeanReads:
    outer = app.wsgi_app
    assert isinstance(outer, LeanSubmissions)
    reads = outer.flask_wsgi
    assert isinstance(reads, LeanReads)
    return reads


def _alike(app: Flask, path: str, query: str = "", lean_only: bool = False, **kw: Any) -> Answer:
    """The layer's answer, asserted equal to Flask's; ``lean_only``: and the
    layer answered it without passing it to Flask."""
    reads = _reads(app)
    flask_wsgi = reads.flask_wsgi
    passed: list[str] = []

    def counted(environ: Any, start_response: Any) -> Any:
        passed.append(environ["PATH_INFO"])
        return flask_wsgi(environ, start_response)

    reads.flask_wsgi = counted
    try:
        lean = _call(app.wsgi_app, path, query, **kw)
    finally:
        reads.flask_wsgi = flask_wsgi
    assert not (lean_only and passed), (path, query)
    flask = _call(flask_wsgi, path, query, **kw)
    assert lean == flask, (path, query)
    return lean


def _filled(app: Flask, count: int = 700) -> list[bytes]:
    log = app.extensions["ledger"].log
    entries = [f"entry {i}".encode() for i in range(count)]
    for start in range(0, count, 300):
        log.sequencer.append(entries[start : start + 300])
    return entries


def test_the_layer_runs_the_hooks_flask_would(app: Flask) -> None:
    reads = _reads(app)
    assert app.before_request_funcs == {None: list(reads.before)}
    (after,) = app.after_request_funcs[None]
    added = after(app.response_class())
    assert [h for h in added.headers.items() if h[0] != "Content-Type"] == [*reads.headers]


def test_good_reads_are_answered_alike(app: Flask) -> None:
    entries = _filled(app)
    status, _, body = _alike(app, "/checkpoint", lean_only=True)
    assert status == "200 OK"
    assert body.count(b"\n") >= 3
    for path in ("/tile/0/000", "/tile/0/002.p/188", "/tile/1/000.p/2", "/tile/entries/000", "/tile/entries/002.p/188"):
        status, _, body = _alike(app, path, lean_only=True)
        assert status == "200 OK", path
        assert body, path
    for i in (0, 1, 255, 256, 699):
        assert _alike(app, "/api/v1/proofs/inclusion", f"leaf_index={i}", lean_only=True)[0] == "200 OK"
        h = record_hash(entries[i])
        assert _alike(app, "/api/v1/proofs/inclusion", f"leaf_hash={h.hex()}", lean_only=True)[0] == "200 OK"
        b64 = base64.b64encode(h).decode()
        quoted = b64.replace("+", "%2B").replace("/", "%2f").replace("=", "%3D")
        assert _alike(app, "/api/v1/proofs/inclusion", f"leaf_hash={quoted}", lean_only=True)[0] == "200 OK"
    # conditional and range headers: neither answer heeds them
    for headers_sent in (
        {"If-None-Match": '"x"'},
        {"If-Modified-Since": "Tue, 01 Dec 2026 00:00:00 GMT"},
        {"Range": "bytes=0-3"},
    ):
        assert _alike(app, "/tile/0/000", headers=headers_sent, lean_only=True)[0] == "200 OK"
        assert _alike(app, "/checkpoint", headers=headers_sent, lean_only=True)[0] == "200 OK"


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/api/v1/proofs/inclusion", "leaf_index=700", "404 NOT FOUND"),  # beyond the tree
        ("/api/v1/proofs/inclusion", "leaf_index=-1", "400 BAD REQUEST"),
        ("/api/v1/proofs/inclusion", "leaf_index=x", "400 BAD REQUEST"),
        ("/api/v1/proofs/inclusion", "leaf_index=99999999999999999999999", None),
        ("/api/v1/proofs/inclusion", "leaf_hash=" + "ab" * 32, "404 NOT FOUND"),  # unknown hash
        ("/api/v1/proofs/inclusion", "leaf_hash=abc", "400 BAD REQUEST"),
        ("/api/v1/proofs/inclusion", "leaf_index=1&leaf_index=2", "400 BAD REQUEST"),
        ("/api/v1/proofs/inclusion", "leaf_index=1&leaf_hash=" + "ab" * 32, "400 BAD REQUEST"),
        ("/api/v1/proofs/inclusion", "leaf_index=1&tree_size=300", "200 OK"),
        ("/api/v1/proofs/inclusion", "leaf_index=1&tree_size=5", "404 NOT FOUND"),
        ("/api/v1/proofs/inclusion", "leaf_index=+1", None),
        ("/api/v1/proofs/inclusion", "other=1", "400 BAD REQUEST"),
        ("/api/v1/proofs/inclusion", "", "400 BAD REQUEST"),
        ("/checkpoint", "x=1", "200 OK"),
        ("/checkpoint/", "", None),
        ("/tile/0/003", "", "404 NOT FOUND"),  # a full tile beyond the tree
        ("/tile/0/002.p/189", "", "404 NOT FOUND"),  # a partial one wider than the tree
        ("/tile/0/002", "", "404 NOT FOUND"),  # full, but the tree holds only part of it
        ("/tile/entries/003", "", "404 NOT FOUND"),
        ("/tile/2/000", "", "404 NOT FOUND"),
        ("/tile/0/x000/000", "", None),  # not canonical
        ("/tile/0//000", "", None),
        ("/tile/0/000.p/0", "", None),
        ("/tile/0/000.p/256", "", None),
        ("/tile/64/000", "", None),
        ("/tile/", "", None),
        ("/tile/0/000", "x=1", "200 OK"),
    ],
)
def test_errors_and_odd_requests_are_answered_alike(app: Flask, path: str, query: str, status: str | None) -> None:
    _filled(app)
    got = _alike(app, path, query)
    if status is not None:
        assert got[0] == status, got


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "OPTIONS"])
def test_other_methods_are_answered_alike(app: Flask, method: str) -> None:
    _filled(app, 300)
    for path, query in (("/checkpoint", ""), ("/tile/0/000", ""), ("/api/v1/proofs/inclusion", "leaf_index=3")):
        _alike(app, path, query, method=method)
    assert _call(app.wsgi_app, "/tile/0/000", method="HEAD")[2] == b""


def test_an_empty_log_is_answered_alike(app: Flask) -> None:
    for path, query in (("/checkpoint", ""), ("/tile/0/000.p/1", ""), ("/api/v1/proofs/inclusion", "leaf_index=0")):
        _alike(app, path, query)
