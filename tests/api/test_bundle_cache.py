"""The bundle cache on SQLite and PostgreSQL: cached answers are the uncached ones, byte for byte."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from keys.records import PlatformKey
from ledger import bundle_cache
from ledger.bundle_cache import BundleCache, check
from ledger.entry_codec import encode_entry
from ledger.errors import StorageError
from ledger.log import Log
from ledger.records.entries import canonical
from ledger.storage import read_bundle_digests, read_entries, read_stored_bundle, stored_digest
from ledger.tlog.merkle import record_hash
from tests.recordkit import decision, sign
from tests.tamper import tamper

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


def test_a_file_for_another_log_is_never_read(app: Flask, client: FlaskClient, log: Log, uncached: FlaskClient) -> None:
    """Files are named by the digest of the bundle's stored bytes: one left by
    another log (or by a release that named files by the bundle's Merkle
    hash) under another digest is never found."""
    root = _cache(app).root
    assert root is not None
    other = root / bundle_cache.LAYOUT / "ndjson" / f"0.{'ab' * 32}"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another log's member")
    url = "/api/v1/export?start=0&end=256&layout=bundles"
    assert client.get(url).data == uncached.get(url).data
    assert check(log, _cache(app)) == [f"{other}: named for stored bytes this log's bundle 0 does not hold"]


def test_files_of_the_earlier_naming_are_neither_read_nor_reported(
    app: Flask, client: FlaskClient, log: Log, uncached: FlaskClient
) -> None:
    """Before 2026-12-07 a file was named by the bundle's level-1 hash directly
    under ``<dir>/<kind>/``; such a file, even one bearing this bundle's
    current source digest, lies outside the layout's folder: the export ignores it and the audit,
    which would otherwise report every one on a healthy log, does not list it."""
    root = _cache(app).root
    assert root is not None
    with log.read() as s:
        level1 = read_bundle_digests(s, 0, 1)[0]
    old = root / "ndjson" / f"0.{level1.hex()}"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"kept by an earlier release")
    url = "/api/v1/export?start=0&end=256&layout=bundles"
    assert client.get(url).data == uncached.get(url).data
    assert check(log, _cache(app)) == []
    assert all(p != old for *_, p in _cache(app).files())


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


# An operator rewrites an entry's stored bytes behind the log's back, after
# its bundle's files were kept (issue 14's export path). The pages read the
# database; so must every download, or the kept files hide the rewrite from
# whoever downloads (a split view).

TAMPERED = [
    "/api/v1/export?start=0&end=531&layout=bundles",
    "/api/v1/export?start=0&end=531&format=csv&layout=bundles",
    *(f"/api/v1/export/bundles/0.{fmt}.gz" for fmt in ("ndjson", "csv", "dsa-csv")),
]


def _rewrite_entry(log: Log, idx: int, old: bytes, new: bytes) -> None:
    """Replace ``old`` with ``new`` in entry ``idx`` as stored, the leaf and tile hashes left alone."""
    with log.read() as s:
        entry = read_entries(s, idx, idx + 1)[0]
    assert entry.count(old) == 1
    tamper(
        log.engine,
        "UPDATE entries SET data = :data WHERE idx = :idx",
        [{"idx": idx, "data": encode_entry(entry.replace(old, new))}],
    )


def _unverified(ndjson: bytes) -> list[int]:
    """The indexes of the lines whose entry does not hash to the leaf hash the
    line states, checked as a reader of the export is told to
    (ledger/records/export.py): the entry is the RFC 8785 form of the line
    without ``index`` and ``leaf_hash``."""
    bad = []
    for line in ndjson.splitlines()[1:]:
        obj = json.loads(line)
        idx, leaf = obj.pop("index"), base64.b64decode(obj.pop("leaf_hash"))
        if record_hash(canonical(obj)) != leaf:
            bad.append(idx)
    return bad


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first index of every batch of lines formatted: a kept file read back formats none."""
    calls: list[int] = []
    real = bundle_cache.lines

    def counting(fmt: str, lo: int, *args: Any, **kwargs: Any) -> bytes:
        calls.append(lo)
        return real(fmt, lo, *args, **kwargs)

    monkeypatch.setattr(bundle_cache, "lines", counting)
    return calls


def test_a_rewritten_entry_is_served_as_the_database_holds_it(
    app: Flask, client: FlaskClient, log: Log, uncached: FlaskClient
) -> None:
    kept = {url: client.get(url).data for url in TAMPERED}
    assert all(kept[url] == uncached.get(url).data for url in TAMPERED)
    assert _unverified(gzip.decompress(kept[TAMPERED[0]])) == []
    old_files = {path for *_, path in _cache(app).files()}

    _rewrite_entry(log, 5, b'"d-4"', b'"d-X"')  # entry 5 is record d-4 (entry 0 is the registry's)

    for url in TAMPERED:
        served = client.get(url).data
        assert served == uncached.get(url).data, url  # the database's bytes, as an uncached server serves them
        assert served != kept[url], url
        text = gzip.decompress(served)
        assert b'"d-X"' in text or b",d-X," in text, url
        assert b'"d-4"' not in text, url
        assert b",d-4," not in text, url
    # A reader who checks the download against the log finds the rewrite,
    # at the entry rewritten; before it, the same check passed.
    assert _unverified(gzip.decompress(client.get(TAMPERED[0]).data)) == [5]
    # The files kept before the rewrite are never read again; the audit names them.
    assert sorted(check(log, _cache(app))) == sorted(
        f"{p}: named for stored bytes this log's bundle 0 does not hold" for p in old_files if p.name.startswith("0.")
    )
    # (The operator's audit names the rewrite itself, and checks the kept
    # files only of a log that passes, cli.py.)
    res = app.test_cli_runner().invoke(args=["ledger", "audit", "--quiet"])
    assert res.exit_code == 1
    assert "level 0 hash 5 differs from the recomputed hash" in res.output


def test_a_kept_file_is_read_while_the_database_holds_its_bytes(
    client: FlaskClient, log: Log, builds: list[int]
) -> None:
    rng = "/api/v1/export?start=0&end=531&layout=bundles"
    one = "/api/v1/export/bundles/1.csv.gz"
    first = client.get(rng).data
    assert builds == [0, 256, 512]  # both full bundles built, and the partial one
    assert client.get(one).data
    assert builds[3:] == [256]
    builds.clear()
    for _ in range(2):
        assert client.get(rng).data == first
        assert client.get(one).data
    assert builds == [512, 512]  # only the partial bundle, never kept: the full ones are read from their files

    _rewrite_entry(log, 300, b'"d-299"', b'"d-XXX"')
    builds.clear()
    assert client.get(rng).data != first
    assert client.get(one).data
    assert builds == [256, 512, 256]  # bundle 1 built again, for each file; bundle 0's member still read back
    builds.clear()
    assert client.get(rng).data
    assert client.get(one).data
    assert builds == [512]  # and the rebuilt files are kept


def test_the_stored_digest_is_the_same_in_the_database_and_here(log: Log) -> None:
    """PostgreSQL computes the digests a request looks files up by; a miss
    names the file it builds by the digest computed here. Were they to
    differ, no file would ever be found (the test above would fail too)."""
    with log.read() as s:
        here = [stored_digest(*read_stored_bundle(s, lo, lo + 256)) for lo in (0, 256)]
        assert read_bundle_digests(s, 0, 2) == here
        assert read_bundle_digests(s, 1, 2) == here[1:]
        with pytest.raises(StorageError, match="missing"):
            read_bundle_digests(s, 1, 3)  # bundle 2 is not full
    _rewrite_entry(log, 7, b'"d-6"', b'"d-Y"')
    with log.read() as s:
        assert read_bundle_digests(s, 0, 2) == [stored_digest(*read_stored_bundle(s, 0, 256)), here[1]]
        assert read_bundle_digests(s, 0, 1) != here[:1]


def test_the_stored_digest_marks_where_each_entry_ends() -> None:
    leaves = [bytes(32)] * 2
    assert stored_digest(leaves, [b"ab", b"c"]) != stored_digest(leaves, [b"a", b"bc"])
    assert stored_digest(leaves, [b"ab", b"c"]) == stored_digest(leaves, [b"ab", b"c"])
    with pytest.raises(StorageError, match="not 32 bytes"):
        stored_digest([bytes(31), bytes(33)], [b"a", b"b"])


def test_a_leaf_hash_of_another_size_is_refused(log: Log) -> None:
    """The digest is injective only over 32-byte leaf hashes, a size the
    database does not enforce: either side of the digest refuses another."""
    tamper(log.engine, "UPDATE hashes SET hash = :h WHERE level = 0 AND idx = 9", [{"h": bytes(33)}])
    with log.read() as s, pytest.raises(StorageError, match="not 32 bytes"):
        read_bundle_digests(s, 0, 1)
    with log.read() as s:
        assert read_bundle_digests(s, 1, 2)  # the other bundles are read as before
