"""The fast paths of ingestion and reads give the answers of the slow ones:
proofs of a fresh batch from memory, full tiles from the cache without the
database, leaf lookups by hash, the C JSON encoder for RFC 8785, shared
record schemas across threads, and /healthz without the database."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event

from api.record_validator import validate_record
from app import create_app
from ledger import db, storage
from ledger.errors import InvalidInput, NotFound
from ledger.log import Log
from ledger.records.entries import canonical
from ledger.tlog import merkle
from ledger.tlog.frontier import AppendedTree, Frontier
from ledger.tlog.tile import Tile
from tests.conftest import ORIGIN
from tests.recordkit import decision
from tests.reference import ListReader


def _reference(count: int) -> tuple[ListReader, list[bytes]]:
    ref = ListReader()
    for i in range(count):
        ref.add(f"leaf {i}".encode())
    return ref, [ref.hashes[merkle.stored_hash_index(0, i)] for i in range(count)]


def _frontier(leaves: list[bytes]) -> Frontier:
    f = Frontier()
    for leaf in leaves:
        f.append(leaf)
    return f


def test_appended_tree_proves_as_the_stored_tree_every_small_size() -> None:
    """Every batch [first, size) with size <= 100: each proof equals the reference."""
    ref, leaves = _reference(100)
    for first in range(100):
        prior = _frontier(leaves[:first])
        for size in range(first + 1, 101):
            tree = AppendedTree(prior, leaves[first:size])
            for n in range(first, size):
                assert tree.prove(n) == merkle.prove_record(size, n, ref), (first, size, n)
                assert tree.leaf_hash(n) == leaves[n]


@pytest.mark.parametrize("first", [255, 256, 257, 511, 65535, 65536, 65537])
def test_appended_tree_across_tile_boundaries(first: int) -> None:
    """Batches starting at and around full tiles of levels 0 and 1, where the
    frontier's partial tiles empty and the proofs reach full tiles."""
    ref, leaves = _reference(first + 300)
    prior = _frontier(leaves[:first])
    for size in (first + 1, first + 2, first + 255, first + 256, first + 300):
        tree = AppendedTree(prior, leaves[first:size])
        for n in range(first, size, 7):
            assert tree.prove(n) == merkle.prove_record(size, n, ref), (first, size, n)


def test_frontier_root_kept_by_append_equals_root_from_partials() -> None:
    """The subtree hashes append() maintains give the same root as hashing
    the partial tiles afresh, at every size up to 600, from an empty
    frontier and from one loaded mid-way."""
    ref, leaves = _reference(600)
    grown = Frontier()
    assert grown.root() == merkle.EMPTY_ROOT  # from here on, append() keeps the subtree hashes
    loaded: Frontier | None = None
    for n, leaf in enumerate(leaves, start=1):
        grown.append(leaf)
        if loaded is not None:
            loaded.append(leaf)
        fresh = Frontier.from_partials(n, grown.copy().partials)
        assert grown.root() == fresh.root() == merkle.tree_hash(n, ref), n
        if n == 300:
            loaded = Frontier.from_partials(n, grown.partials)
        if loaded is not None:
            assert loaded.root() == grown.root()
            assert loaded.subtrees() == grown.subtrees()


def test_appended_tree_refuses_leaves_outside_the_batch() -> None:
    _, leaves = _reference(10)
    tree = AppendedTree(_frontier(leaves[:4]), leaves[4:10])
    assert [tree.covers(n) for n in (3, 4, 9, 10)] == [False, True, True, False]
    with pytest.raises(AssertionError):
        tree.prove(3)


def test_fresh_proofs_equal_stored_proofs(log: Log) -> None:
    """Through the sequencer and storage, on both databases: each append's
    in-memory proofs equal the ones the database serves, and a mix of old
    and new leaves is answered in order."""
    size = 0
    for batch in (1, 3, 250, 5, 1, 300):
        res = log.sequencer.append([f"e{size + i}".encode() for i in range(batch)])
        assert res.tree is not None
        assert (res.tree.first, res.tree.size) == (size, res.checkpoint.size)
        size = res.checkpoint.size
        for n in range(res.first, size):
            stored = log.inclusion(n, size)
            assert (res.tree.leaf_hash(n), res.tree.prove(n)) == (stored.leaf_hash, stored.proof)
        wanted = [size - 1, 0, res.first, size // 2]
        mixed = log.inclusions(wanted, res.checkpoint, res.tree)
        assert [(p.index, p.leaf_hash, p.proof) for p in mixed] == [
            (n, log.inclusion(n, size).leaf_hash, log.inclusion(n, size).proof) for n in wanted
        ]


def test_proofs_from_a_newer_edge_equal_the_reference(log: Log) -> None:
    """The log keeps the partial tiles of the newest tree it has proved in;
    proofs in older trees, whose partial tiles are prefixes of those or
    other tiles altogether, still equal the reference proofs."""
    ref = ListReader()
    sizes = [*range(1, 12), 250, 255, 256, 257, 300, 511, 512, 513, 600]
    for size in sizes:
        batch = [f"entry {i}".encode() for i in range(len(ref.entries), size)]
        for d in batch:
            ref.add(d)
        assert log.sequencer.append(batch).checkpoint.size == size
    log.inclusion(0)  # the edge is now the tree of 600
    for i in range(len(sizes) - 1, -1, -1):
        t = sizes[i]
        for n in range(0, t, 1 if t < 20 else 13):
            p = log.inclusion(n, t)
            assert (p.leaf_hash, p.proof) == (
                ref.hashes[merkle.stored_hash_index(0, n)],
                merkle.prove_record(t, n, ref),
            )
        for first in sizes[: i : max(1, i // 4)]:
            assert log.consistency(first, t).proof == merkle.prove_tree(t, first, ref)


def test_find_leaf_takes_the_lowest_match_below_the_size(log: Log) -> None:
    """The same entry at 2 and 5: found at 2 once the tree covers 2, never beyond the size."""
    dup, other = b"the same entry", b"another"
    log.sequencer.append([b"a", b"b", dup])
    log.sequencer.append([b"c", other, dup, b"d"])
    leaf = merkle.record_hash(dup)
    with log.read() as s:
        assert [storage.find_leaf(s, leaf, n) for n in (0, 2, 3, 5, 6, 7)] == [None, None, 2, 2, 2, 2]
        assert storage.find_leaf(s, merkle.record_hash(other), 4) is None
        assert storage.find_leaf(s, merkle.record_hash(other), 5) == 4
        assert storage.find_leaf(s, merkle.record_hash(b"never appended"), 7) is None
    assert log.inclusion_by_hash(leaf, 3).index == log.inclusion_by_hash(leaf).index == 2
    with pytest.raises(NotFound):
        log.inclusion_by_hash(merkle.record_hash(other), 3)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement run on ``engine``: through SQLAlchemy, and the fixed
    ones run on the driver's cursor (ledger.db.connection_sql), which
    SQLAlchemy's events do not see."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    real = db.connection_sql

    def on_driver(connection: Any, sql: str, params: Any = ()) -> Any:
        if connection.engine is engine or connection.engine.url == engine.url:
            seen.append(sql)
        return real(connection, sql, params)

    event.listen(engine, "before_cursor_execute", record)
    db.connection_sql = storage.connection_sql = on_driver  # type: ignore[assignment]
    try:
        yield seen
    finally:
        db.connection_sql = storage.connection_sql = real  # type: ignore[assignment]
        event.remove(engine, "before_cursor_execute", record)


def test_full_tile_from_cache_is_the_stored_tile_and_needs_no_database(log: Log) -> None:
    log.sequencer.append([f"e{i}".encode() for i in range(300)])
    full, partial = Tile(0, 0), Tile(0, 1, 44)
    with log.read() as s:
        stored = b"".join(storage.read_level_hashes(s, 0, 0, 256))
    assert log.tile(full) == stored  # read from the database, then cached
    with _statements(log.engine) as seen:
        assert log.tile(full) == stored
        assert seen == []
        with log.read() as s:
            tail = b"".join(storage.read_level_hashes(s, 0, 256, 300))
        seen.clear()
        assert log.tile(partial) == tail
        assert seen, "a partial tile is read from the database"


def test_tile_route_serves_cached_tiles_as_immutable(app: Flask) -> None:
    log: Log = app.extensions["ledger"].log
    log.sequencer.append([f"e{i}".encode() for i in range(256)])
    client = app.test_client()
    first, again = client.get("/tile/0/000"), client.get("/tile/0/000")
    assert first.status_code == again.status_code == 200
    assert first.data == again.data
    assert len(again.data) == 256 * 32
    assert again.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/tile/0/001").status_code == 404


def test_healthz_answers_without_the_database(tmp_path: Path, key_file: Path) -> None:
    """With the database missing, /healthz still says ok; the log's paths say 503."""
    url = f"sqlite:///{tmp_path / 'no such directory' / 'ledger.sqlite3'}"
    # No derived-row checker: its thread would outlive the test, failing on
    # the missing database every 10 s and printing a traceback, whose carets
    # CPython 3.11 computes with ast.parse, racing another test's ast.parse
    # (a SystemError in test_imports once, CPython's global AST state).
    config = {"TESTING": True, "DATABASE_URL": url, "KEY_FILE": str(key_file), "ORIGIN": ORIGIN}
    app = create_app(config | {"DERIVED_CHECK_SECONDS": 0})
    client = app.test_client()
    r = client.get("/healthz")
    assert (r.status_code, r.data, r.mimetype) == (200, b"ok", "text/plain")
    assert r.headers["Cache-Control"] == "no-store"
    assert client.get("/checkpoint").status_code == 503


def test_healthz_on_a_working_log(client: Any) -> None:
    r = client.get("/healthz")
    assert (r.status_code, r.data) == (200, b"ok")


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('\x00\x1f\x7f\u2028\ue000\U0001f600"\\'))
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=st.sampled_from("ab\x01é\ue000\U0001f600"), max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(_JSON)
def test_canonical_is_rfc8785(value: Any) -> None:
    """Whichever encoder canonical() uses, the bytes (or the refusal) are rfc8785's."""
    _assert_canonical_is_rfc8785(value)


def _assert_canonical_is_rfc8785(value: Any) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        expected = None
    if expected is None:
        with pytest.raises(InvalidInput):
            canonical(value)
    else:
        assert canonical(value) == expected


@pytest.mark.parametrize(
    "value",
    ["\ud800", {"k": ["\udfff"]}, 2**53, -(2**53), 1.0, 1e21, {"\U0001f600": 1, "\ue000": 2}, {"a\x00": "\x1f\x7f"}],
)
def test_canonical_edge_cases(value: Any) -> None:
    _assert_canonical_is_rfc8785(value)


def test_shared_schemas_validate_concurrently_each_with_its_own_now() -> None:
    """One schema instance serves every thread; each load sees its own ``now``:
    the same record is valid now and from the future a day earlier."""
    record = decision("dec-1")
    decided = datetime.fromisoformat(record["decided_at"].replace("Z", "+00:00"))
    later, earlier = decided + timedelta(days=1), decided - timedelta(days=1)
    wrong: list[tuple[bool, list[dict[str, str]]]] = []
    start = threading.Barrier(8)

    def work(valid: bool) -> None:
        start.wait()
        for _ in range(200):
            errors = validate_record(record, later if valid else earlier)
            if (errors == []) != valid:
                wrong.append((valid, errors))

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert validate_record(record, datetime.now(UTC)) == []


def test_inclusion_answer_is_jsonify_byte_for_byte(app: Flask) -> None:
    """The proof's answer put together by hand (api/v1.py) equals
    ``jsonify`` of the answer's dict, byte for byte: by index and by hash,
    with an empty path (a tree of one), against the latest and an older
    checkpoint, after the head moved (the checkpoint's part encoded anew);
    and in debug mode, where jsonify indents, it is jsonify's answer."""
    from api.v1 import _inclusion_json  # the dict the answer always was

    log = app.extensions["ledger"].log
    client = app.test_client()
    for batch in ([b"only"], [f"e{i}".encode() for i in range(300)]):
        log.sequencer.append(batch)
        size = log.latest_size()
        for query in ("leaf_index=0", f"leaf_index={size - 1}", "leaf_index=0&tree_size=1", "leaf_index=150"):
            if "150" in query and size < 151:
                continue
            got = client.get(f"/api/v1/proofs/inclusion?{query}")
            assert got.status_code == 200, got.data
            body = got.get_json()
            index, tree_size = body["leaf_index"], body["tree_size"]
            with app.app_context():
                want = app.json.response(_inclusion_json(log.inclusion(index, tree_size)))
            assert got.data == want.data, query
            assert got.headers["Content-Type"] == want.headers["Content-Type"] == "application/json"
            leaf = base64.b64decode(body["leaf_hash"]).hex()
            by_hash = client.get(f"/api/v1/proofs/inclusion?leaf_hash={leaf}&tree_size={tree_size}")
            assert by_hash.data == want.data
    app.debug = True
    got = client.get("/api/v1/proofs/inclusion?leaf_index=7")
    with app.app_context():
        assert got.data == app.json.response(_inclusion_json(log.inclusion(7))).data
    assert b'\n  "leaf_index": 7' in got.data
