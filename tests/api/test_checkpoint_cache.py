"""What a serving process keeps for the latest head (``/checkpoint``'s
bytes, the checkpoint proofs are against) is never served once another
process moved the head or stored a cosignature: the head is read on every
request. Two ``Log`` objects on one database stand for two workers (or two
servers sharing PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger import db, storage
from ledger.db import cosignatures, writer
from ledger.errors import NotFound, StorageError
from ledger.log import Log
from ledger.tlog import merkle
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.merkle import check_record, record_hash
from ledger.tlog.tile import Tile
from tests.reference import ListReader
from tests.tamper import tamper


def _size(log: Log, note: bytes) -> int:
    return open_checkpoint(note, log.verifier).checkpoint.size


def test_checkpoint_follows_another_process(engine: Engine, signer: Signer) -> None:
    server, other = Log(engine, signer), Log(engine, signer)
    server.sequencer.init()
    server.sequencer.append([b"a", b"b"])
    first = server.checkpoint_note()
    assert server.checkpoint_note() is first  # kept while the head stays
    assert _size(server, first) == 2
    other.sequencer.append([b"c"])
    moved = server.checkpoint_note()
    assert _size(server, moved) == 3
    # A cosignature stored by another process for the current size shows at once.
    line = "— witness.example AAAAAAAA"
    with Session(writer(engine)) as s, s.begin():
        s.execute(
            cosignatures.insert().values(
                size=3, witness_key_id="00000000", witness_name="witness.example", line=line, created_at_ms=0
            )
        )
    assert server.checkpoint_note() == moved + (line + "\n").encode()


def test_proofs_follow_another_process(engine: Engine, signer: Signer) -> None:
    server, other = Log(engine, signer), Log(engine, signer)
    server.sequencer.init()
    data = [f"entry {i}".encode() for i in range(300)]
    server.sequencer.append(data)
    for i in range(300):  # warm every cache the fast path reads
        server.inclusion(i)
    other.sequencer.append([b"late"])
    data.append(b"late")
    for i in (0, 255, 299, 300):
        for proof in (server.inclusion(i), server.inclusion_by_hash(record_hash(data[i]))):
            assert (proof.index, proof.checkpoint.size) == (i, 301)
            check_record(proof.proof, 301, proof.checkpoint.root, i, record_hash(data[i]))


def test_kept_proofs_are_the_stored_proofs(engine: Engine, signer: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proofs from what the process keeps (storage.kept_nodes) equal the
    proofs read in a transaction, in a tree past one level-1 tile (65,536
    leaves: nodes from level-1 tiles' inner nodes and partial tiles)."""
    log = Log(engine, signer)
    log.sequencer.init()
    size = 65_536 + 2 * 256 + 7
    for start in range(0, size, 10_000):
        log.sequencer.append([f"e{i}".encode() for i in range(start, min(size, start + 10_000))])
    kept = []
    monkeypatch.setattr(storage, "kept_nodes", _counting(storage.kept_nodes, kept))
    indexes = [0, 1, 255, 256, 65_535, 65_536, 65_791, 65_792, size - 8, size - 1, *range(0, size, 4_099)]
    for i in indexes:
        log.inclusion(i)  # warm: the first reads tiles in a transaction
    with log.read() as s:
        cp = log.latest(s)
        reader = storage.TileHashReader(s)
        stored = {i: merkle.prove_record(size, i, reader) for i in indexes}
    kept.clear()
    for i in indexes:
        proof = log.inclusion(i)
        assert proof.proof == stored[i], i
        assert log.inclusion_by_hash(proof.leaf_hash).proof == stored[i], i
        merkle.check_record(proof.proof, size, cp.root, i, record_hash(f"e{i}".encode()))
    # Every one of them from what the process keeps, none missed: a leaf of a
    # full tile from its tile and the kept proof of the tile's root (no
    # walk), the leaf of the partial tile (size - 1) by the kept nodes.
    assert kept == [1, 1]


def _counting(f: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    """``f`` (kept_nodes), counting its calls, and its readers' misses as -1
    (a CacheMiss raised, or a tile named in ``missing``)."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        node = f(*args, **kwargs)
        missing = kwargs.get("missing")

        def counted_node(level: int, i: int) -> bytes:
            before = len(missing) if missing is not None else 0
            try:
                h = node(level, i)
            except storage.CacheMiss:
                calls.append(-1)
                raise
            if missing is not None and len(missing) > before:
                calls.append(-1)
            return h

        return counted_node

    return counted


@contextmanager
def _driver_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The fixed statements the read paths run on the driver (storage's, through ledger.db.connection_sql)."""
    seen: list[str] = []
    real = db.connection_sql

    def recording(connection: Any, sql: str, params: Any = ()) -> Any:
        seen.append(sql)
        return real(connection, sql, params)

    with monkeypatch.context() as m:
        m.setattr(db, "connection_sql", recording)
        m.setattr(storage, "connection_sql", recording)
        yield seen


def _stored_tile(log: Log, tile: Tile) -> bytes:
    with log.read() as s:
        start = tile.n * 256
        return b"".join(storage.read_level_hashes(s, tile.level, start, start + tile.width))


def test_misses_and_hits_give_the_same_bytes(engine: Engine, signer: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log that keeps no tile (every tile and proof a miss, read in one
    statement with the head) answers byte for byte as one that keeps them
    all, and as the stored hashes and the transaction's proofs, in a
    bounded number of statements."""
    size = 3 * 256 + 7  # full and partial level-0 tiles, a partial level-1 tile
    writer_log, cold = Log(engine, signer), Log(engine, signer, tile_cache_size=0)
    writer_log.sequencer.init()
    data = [f"e{i}".encode() for i in range(size)]
    writer_log.sequencer.append(data)
    warm = Log(engine, signer)
    tiles = [Tile(0, 0), Tile(0, 1), Tile(0, 2), Tile(0, 3, 7), Tile(0, 1, 9), Tile(1, 0, 3)]
    for t in tiles:
        stored = _stored_tile(writer_log, t)
        assert len(stored) == t.width * 32
        assert cold.tile(t) == cold.tile(t) == warm.tile(t) == warm.tile(t) == stored, t.path()
    with writer_log.read() as s:
        cp = writer_log.latest(s)
        reader = storage.TileHashReader(s)
        stored_proofs = {i: merkle.prove_record(size, i, reader) for i in range(0, size, 17)}
    for log in (cold, warm):
        log.inclusion(size - 1)  # a transaction's proof: the latest checkpoint and its edge are kept
    for i, path in stored_proofs.items():
        for log in (cold, warm, cold, warm):
            with _driver_statements(monkeypatch) as seen:
                by_index = log.inclusion(i)
                statements = len(seen)
                by_hash = log.inclusion_by_hash(record_hash(data[i]))
            assert (by_index.proof, by_hash.proof, by_hash.index) == (path, path, i)
            assert by_index.leaf_hash == record_hash(data[i])
            # By index the head and the tiles it lacks: one statement, hit or
            # miss; by hash the head and the leaf's index, then what it lacks.
            assert statements == 1, (i, seen)
            assert len(seen) - statements == (1 if log is warm or i >= 768 else 2), (i, seen)
            check_record(path, size, cp.root, i, record_hash(data[i]))


def test_partial_tiles_are_never_kept_as_full(engine: Engine, signer: Signer) -> None:
    """A partial tile served or read for a proof is not kept as its full
    tile: once the tree fills it, the full tile is the stored one."""
    log = Log(engine, signer)
    log.sequencer.init()
    log.sequencer.append([f"e{i}".encode() for i in range(300)])
    assert log.tile(Tile(0, 1, 44)) == _stored_tile(log, Tile(0, 1, 44))
    for i in (0, 255, 256, 299):
        log.inclusion(i)
        log.inclusion(i, 300)
    assert log._tiles.get((0, 1)) is None
    assert log._tiles.get((0, 0)) == _stored_tile(log, Tile(0, 0))
    with pytest.raises(NotFound):
        log.tile(Tile(0, 1))  # not yet full
    log.sequencer.append([f"e{i}".encode() for i in range(300, 600)])
    full = log.tile(Tile(0, 1))
    assert full == _stored_tile(log, Tile(0, 1))
    assert len(full) == 256 * 32
    assert log.tile(Tile(0, 1, 44)) == full[: 44 * 32]
    with pytest.raises(NotFound):
        log.tile(Tile(0, 2, 89))  # one hash beyond the tree of 600


def test_a_proof_after_another_process_appended_reads_the_new_tree(engine: Engine, signer: Signer) -> None:
    """A miss whose head statement finds the head moved keeps the full
    tiles it read (they never change) and answers in the new tree."""
    server, other = Log(engine, signer, tile_cache_size=0), Log(engine, signer)
    server.sequencer.init()
    data = [f"e{i}".encode() for i in range(700)]
    server.sequencer.append(data[:600])
    server.inclusion(0)  # keeps the checkpoint of 600 and its edge
    other.sequencer.append(data[600:])
    for i in (3, 300, 599):
        for proof in (server.inclusion(i), server.inclusion_by_hash(record_hash(data[i]))):
            assert (proof.index, proof.checkpoint.size) == (i, 700)
            check_record(proof.proof, 700, proof.checkpoint.root, i, record_hash(data[i]))


def test_concurrent_readers_never_see_a_head_older_than_their_request(engine: Engine, signer: Signer) -> None:
    """Request threads of one process (which share the head statement on
    PostgreSQL, ledger.shared_read) while another process appends: every
    checkpoint and proof is of a tree at least as large as the one committed
    before the thread asked, and every proof verifies against its checkpoint."""
    server, other = Log(engine, signer), Log(engine, signer)
    server.sequencer.init()
    data = [f"entry {i}".encode() for i in range(40)]
    server.sequencer.append(data)
    server.inclusion(0)  # keeps the checkpoint and the partial tiles
    committed = [40]  # sizes whose append has returned, in order
    stop = threading.Event()
    errors: list[str] = []

    def append() -> None:
        try:
            for i in range(40, 100):
                other.sequencer.append([f"entry {i}".encode()])
                committed.append(i + 1)
        finally:
            stop.set()

    def read(worker: int) -> None:
        try:
            while not stop.is_set():
                before = committed[-1]
                size = _size(server, server.checkpoint_note())
                proof = server.inclusion(worker)
                if size < before or proof.checkpoint.size < before:
                    errors.append(f"asked at {before}, served {size} and a proof at {proof.checkpoint.size}")
                leaf = record_hash(data[worker])
                check_record(proof.proof, proof.checkpoint.size, proof.checkpoint.root, worker, leaf)
        except Exception as e:  # reported by the test, not lost in the thread
            errors.append(repr(e))

    readers = [threading.Thread(target=read, args=(w,)) for w in range(6)]
    writer_thread = threading.Thread(target=append)
    for t in (*readers, writer_thread):
        t.start()
    for t in (writer_thread, *readers):
        t.join(120)
    assert not any(t.is_alive() for t in (writer_thread, *readers))
    assert errors == []
    assert _size(server, server.checkpoint_note()) == 100


def test_kept_tile_proofs_equal_the_reference_across_tile_boundaries(engine: Engine, signer: Signer) -> None:
    """Proofs against the latest checkpoint, once the proof of each full
    tile's root is kept (every asking after a tile's first: from the tile's
    inner nodes and the kept upper part), equal the reference proofs at
    every leaf, in trees just below, at and past tile boundaries, and by
    hash as by index; a head that moved is never answered from the kept part."""
    log, ref, full_tiles = Log(engine, signer), ListReader(), 0
    log.sequencer.init()
    for size in (255, 256, 257, 511, 512, 513, 800):
        batch = [f"entry {i}".encode() for i in range(len(ref.entries), size)]
        for d in batch:
            ref.add(d)
        log.sequencer.append(batch)
        root = merkle.tree_hash(size, ref)
        for _ in range(2):  # the first asking of a tile keeps its root's proof
            for n in range(size):
                want = merkle.prove_record(size, n, ref)
                by_index, by_hash = log.inclusion(n), log.inclusion_by_hash(record_hash(ref.entries[n]))
                assert (by_index.checkpoint.size, by_index.checkpoint.root) == (size, root)
                assert (by_index.leaf_hash, by_index.proof) == (record_hash(ref.entries[n]), want), (size, n)
                assert (by_hash.index, by_hash.proof) == (n, want), (size, n)
        full_tiles += size // 256
        assert len(log._uppers) == full_tiles  # one per full tile of each tree, by its size and root


def test_kept_tile_proof_reads_a_dropped_tile_with_the_head(
    engine: Engine, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof of a tile's root kept while the tile itself was dropped:
    the tile is read in the head's statement by index (one statement in
    all), after the head and leaf's by hash (two), the answer the stored proof; a
    tile whose hashes storage lacks is an error, never a short proof."""
    log = Log(engine, signer)
    log.sequencer.init()
    size = 3 * 256 + 9
    data = [f"e{i}".encode() for i in range(size)]
    log.sequencer.append(data)
    with log.read() as s:
        reader = storage.TileHashReader(s)
        stored = {i: merkle.prove_record(size, i, reader) for i in (0, 300, 767)}
    for i in stored:
        log.inclusion(i)  # keeps the proofs of tiles 0, 1 and 2's roots
    for i, path in stored.items():
        for by_hash in (False, True):
            log._tiles, log._trees = storage.TileCache(), storage.TileCache()  # dropped
            with _driver_statements(monkeypatch) as seen:
                proof = log.inclusion_by_hash(record_hash(data[i])) if by_hash else log.inclusion(i)
            assert (proof.index, proof.proof) == (i, path)
            assert len(seen) == (2 if by_hash else 1), seen
            assert log._tiles.get((0, i // 256)) is not None  # kept again
    log._tiles = storage.TileCache()
    tamper(engine, "DELETE FROM hashes WHERE level = 0 AND idx = 301")
    with pytest.raises(StorageError, match="missing"):
        log.inclusion(300)


def test_kept_consistency_proofs_equal_the_reference(
    engine: Engine, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consistency proofs to the latest checkpoint from what the process
    keeps equal the reference proofs from every signed size, in one
    statement (the head's, with the older checkpoint or the tiles it lacks);
    a log that keeps no tile (every tile read beside the head) answers the
    same; sizes never signed or beyond the head are refused as before; and
    once another process moved the head, proofs are to the new head."""
    log, cold, ref = Log(engine, signer), Log(engine, signer, tile_cache_size=0), ListReader()
    log.sequencer.init()
    sizes = [1, 2, 3, 255, 256, 257, 600, 777]
    for size in sizes:
        batch = [f"entry {i}".encode() for i in range(len(ref.entries), size)]
        for d in batch:
            ref.add(d)
        log.sequencer.append(batch)
    for server in (log, cold):
        server.inclusion(0)  # keeps the latest checkpoint and its edge
        for again in (False, True):  # the older checkpoints read, then kept
            for first in [0, *sizes]:
                with _driver_statements(monkeypatch) as seen:
                    c = server.consistency(first)
                # The first asking may read the tiles it lacks after the older
                # checkpoint, whose size says which: then one statement more.
                assert len(seen) == 1 or (not again and len(seen) == 2), (first, seen)
                assert (c.first.size, c.second.size) == (first, 777)
                assert c.proof == ([] if first in (0, 777) else merkle.prove_tree(777, first, ref)), first
                if first:
                    merkle.check_tree(c.proof, 777, c.second.root, first, c.first.root)
                assert c.first == log.consistency(first, 777).first
    for bad in (4, 778):
        with pytest.raises(NotFound):
            log.consistency(bad)
    other = Log(engine, signer)
    other.sequencer.append([b"late"])
    ref.add(b"late")
    for first in (3, 777):
        c = log.consistency(first)
        assert (c.second.size, c.proof) == (778, merkle.prove_tree(778, first, ref))
