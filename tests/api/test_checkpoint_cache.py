"""What a serving process keeps for the latest head (``/checkpoint``'s
bytes, the checkpoint proofs are against) is never served once another
process moved the head or stored a cosignature: the head is read on every
request. Two ``Log`` objects on one database stand for two workers (or two
servers sharing PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger import storage
from ledger.db import cosignatures, writer
from ledger.log import Log
from ledger.tlog import merkle
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.merkle import check_record, record_hash


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
    assert kept == [1] * 2 * len(indexes)  # every one of them from the kept tiles, none missed


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
