"""Hostile bodies get a clear 400 (or 413), never a 500, and append nothing."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient

from keys.records import PlatformKey
from ledger.log import Log
from tests.recordkit import decision, sign

KEY = PlatformKey(bytes([13]) * 32)


@pytest.fixture
def log(app: Flask) -> Log:
    lg: Log = app.extensions["ledger"].log
    lg.registry.add_platform("example-social", "Example Social", KEY.public_key)
    return lg


def _item_with(field: str, raw_value: str) -> bytes:
    """A signed item whose record has ``field`` replaced by raw JSON text."""
    item = sign(decision("d-hostile"), KEY)
    marker = "__HOSTILE__"
    item["record"][field] = marker
    return json.dumps(item).replace(json.dumps(marker), raw_value).encode()


HOSTILE = [
    ("huge integer", _item_with("schema_version", "1" * 5000)),
    ("integer beyond 2^53", _item_with("schema_version", str(2**60))),
    ("huge float", _item_with("schema_version", "1e999999")),
    ("lone surrogate", _item_with("statement", '"\\ud800"')),
    ("deep nesting inside a record", _item_with("rule", "[" * 5000 + "]" * 5000)),
    ("very long string", _item_with("statement", json.dumps("x" * 100_000))),
    ("many keys", _item_with("rule", json.dumps({f"k{i}": i for i in range(20_000)}))),
    ("null record", b'{"record": null, "signature": null}'),
    ("string body", b'"hello"'),
    ("empty body", b""),
    ("BOM", b"\xef\xbb\xbf{}"),
    ("NUL bytes", b"{\x00}"),
]


@pytest.mark.parametrize("case,body", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies(client: FlaskClient, log: Log, case: str, body: bytes) -> None:
    size = log.latest_size()
    r = client.post("/api/v1/records", data=body, content_type="application/json")
    assert r.status_code == 400, (r.status_code, r.data[:300])
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json is not None
    assert r.json["detail"]
    assert log.latest_size() == size
