"""The bundle cache on SQLite and PostgreSQL: cached answers are the uncached ones, byte for byte."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from keys.records import PlatformKey
from ledger.bundle_cache import BundleCache, check
from ledger.log import Log
from tests.recordkit import decision, sign

KEY = PlatformKey(bytes([6]) * 32)
SIZE = 1 + 530  # the registry entry, then the records: two full bundles and 19 entries


@pytest.fixture
def log(app: Flask, client: FlaskClient) -> Log:
    lg: Log = app.extensions["ledger"].log
    lg.registry.add_platform("example-social", "Example Social", KEY.public_key)
    recs = [decision(f"d-{i}") for i in range(SIZE - 1)]
    for i in range(0, len(recs), 100):
        batch = {"records": [sign(r, KEY) for r in recs[i : i + 100]]}
        assert client.post("/api/v1/records", json=batch).status_code == 201
    assert lg.latest_size() == SIZE
    return lg


@pytest.fixture
def uncached(app: Flask, log: Log) -> Iterator[FlaskClient]:
    """A second app on the same database and key, keeping no files."""
    other = create_app(
        {k: app.config[k] for k in ("TESTING", "DATABASE_URL", "KEY_FILE", "ORIGIN")}
        | {"DERIVED_CHECK_SECONDS": 0, "EXPORT_CACHE_DIR": ""}
    )
    yield other.test_client()
    other.extensions["ledger"].close()


def _cache(app: Flask) -> BundleCache:
    cache: BundleCache = app.extensions["bundle_cache"]
    return cache


URLS = [
    "/tile/entries/000",
    "/tile/entries/001",
    "/tile/entries/002.p/19",
    *(f"/api/v1/export/bundles/{n}.{fmt}.gz" for n in (0, 1) for fmt in ("ndjson", "csv", "dsa-csv")),
    "/api/v1/export?start=256&end=512&format=csv",
    "/api/v1/export?start=0&end=531",
    *(
        f"/api/v1/export?start={a}&end={b}&format={f}&layout=bundles"
        for a, b in ((0, 531), (100, 520), (3, 10))
        for f in ("ndjson", "csv")
    ),
]


@pytest.mark.parametrize("url", URLS)
def test_cached_answers_are_the_uncached_ones(app: Flask, client: FlaskClient, uncached: FlaskClient, url: str) -> None:
    want = uncached.get(url)
    assert want.status_code == 200, want.data
    first, second = client.get(url), client.get(url)  # the first builds and keeps, the second reads the file
    assert first.data == want.data
    assert second.data == want.data
    assert second.headers == first.headers
    assert first.headers.get("Cache-Control") == want.headers.get("Cache-Control")


def test_full_bundles_are_kept_and_partial_ones_are_not(app: Flask, client: FlaskClient, log: Log) -> None:
    for url in URLS:
        assert client.get(url).data  # read through: a streamed answer keeps its files as it goes
    kept = sorted((kind, n) for kind, n, _, _, _ in _cache(app).files())
    # Entry bundles (/tile/entries) are always read from the database (api/tiles.py).
    assert kept == sorted(
        [("ndjson", 0), ("ndjson", 1), ("csv", 0), ("csv", 1)]
        + [(f"bundle-{fmt}", n) for n in (0, 1) for fmt in ("ndjson", "csv", "dsa-csv")]
    )
    assert check(log, _cache(app)) == []


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@pytest.mark.parametrize("start,end", [(0, 531), (100, 520), (256, 512), (3, 10), (511, 513)])
def test_layouts_hold_the_same_file(client: FlaskClient, log: Log, fmt: str, start: int, end: int) -> None:
    url = f"/api/v1/export?start={start}&end={end}&format={fmt}"
    stream, bundles = client.get(url), client.get(url + "&layout=bundles")
    assert gzip.decompress(bundles.data) == gzip.decompress(stream.data)
    members = (end - 1) // 256 - start // 256 + 2  # the header's, then one per bundle touched
    assert bundles.data.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00") >= members


def test_stream_layout_keeps_its_bytes(client: FlaskClient, log: Log) -> None:
    """The stream layout is still one level-6 gzip member over the whole file, as served before the cache."""
    for url in ("/api/v1/export?start=0&end=531", "/api/v1/export/bundles/1.csv.gz"):
        body = client.get(url).data
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)
        assert gz.compress(gzip.decompress(body)) + gz.flush() == body


def test_dsa_csv_has_no_bundle_layout(client: FlaskClient, log: Log) -> None:
    r = client.get("/api/v1/export?start=0&end=300&format=dsa-csv&layout=bundles")
    assert r.status_code == 400
    assert r.json is not None
    assert r.json["errors"][0]["path"] == "layout"


def test_the_audit_names_a_changed_file(app: Flask, client: FlaskClient, log: Log) -> None:
    for url in (
        "/tile/entries/001",  # read from the database, so it keeps nothing (api/tiles.py)
        "/api/v1/export/bundles/0.csv.gz",
        "/api/v1/export?start=0&end=300&layout=bundles",
    ):
        assert client.get(url).data
    files = {kind: path for kind, _, _, _, path in _cache(app).files()}
    assert set(files) == {"bundle-csv", "ndjson"}
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ledger", "audit", "--quiet"]).exit_code == 0
    for kind, path in files.items():
        good = path.read_bytes()
        path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
        assert check(log, _cache(app)) == [f"{path}: differs from the bundle it is derived from"], kind
        res = runner.invoke(args=["ledger", "audit", "--quiet"])
        assert res.exit_code == 1
        assert f"bundle cache: {path}: differs" in res.output
        path.write_bytes(good)
    stray = path.parent / f"7.{'00' * 32}"
    stray.write_bytes(b"x")
    assert check(log, _cache(app)) == [f"{stray}: not a file of a full bundle of this log"]


def test_a_file_for_another_log_is_never_read(app: Flask, client: FlaskClient, log: Log) -> None:
    """Files are named by the bundle's hash: one left by another log under the same name is not found."""
    root = _cache(app).root
    assert root is not None
    other = root / "entries" / f"0.{'ab' * 32}"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another log's bundle")
    assert client.get("/tile/entries/000").data != b"another log's bundle"
    assert check(log, _cache(app))[0] == f"{other}: named for a bundle hash this log's bundle 0 does not have"


def test_an_unwritable_cache_still_answers(tmp_path: Path, app: Flask, log: Log, uncached: FlaskClient) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")
    app.extensions["bundle_cache"] = BundleCache(blocked)
    client = app.test_client()
    for url in (
        "/tile/entries/000",
        "/api/v1/export/bundles/0.ndjson.gz",
        "/api/v1/export?start=0&end=512&layout=bundles",
    ):
        assert client.get(url).data == uncached.get(url).data
