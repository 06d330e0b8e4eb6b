"""The stored log, on SQLite and PostgreSQL: every size, every proof."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keys.note import Signer
from ledger.errors import InvalidInput, NotFound, ProofError, StorageError
from ledger.log import Log
from ledger.tlog import merkle, verify
from ledger.tlog.checkpoint import parse_checkpoint
from ledger.tlog.tile import MAX_ENTRY_SIZE, Tile
from tests.checklog import check_log
from tests.reference import ListReader

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MAX_SIZE = 130


def test_empty_log_has_signed_checkpoint_of_sha256_empty(log: Log) -> None:
    with log.read() as s:
        cp = log.latest(s)
    parsed = verify.verify_checkpoint(cp.note, log.verifier)
    assert parsed.size == 0
    assert parsed.root == merkle.EMPTY_ROOT
    assert parsed.root.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    check_log(log)


def test_init_is_idempotent(log: Log) -> None:
    first = log.sequencer.init()
    assert log.sequencer.init() == first


def test_every_size_every_proof(log: Log) -> None:
    """Sizes 0..130, one checkpoint each: every inclusion and consistency
    proof the database serves equals the reference proof and verifies."""
    ref = ListReader()
    cps = [verify.verify_checkpoint(log.sequencer.init().note, log.verifier)]
    for i in range(MAX_SIZE):
        data = f"entry {i}".encode()
        ref.add(data)
        res = log.sequencer.append([data])
        assert res.first == i
        cps.append(verify.verify_checkpoint(res.checkpoint.note, log.verifier))
    for t, cp in enumerate(cps):
        assert cp.size == t
        assert cp.root == merkle.tree_hash(t, ref)
        for n in range(t):
            p = log.inclusion(n, t)
            assert p.proof == merkle.prove_record(t, n, ref)
            verify.verify_entry(ref.entries[n], n, p.proof, cp)
        for n in range(0, t + 1):
            c = log.consistency(n, t)
            if n > 0:
                assert c.proof == merkle.prove_tree(t, n, ref)
            verify.verify_consistency(cps[n], cp, c.proof)
    check_log(log)


def test_batches_spanning_tiles(log: Log) -> None:
    """Batches that cross tile boundaries at level 0 and level 1."""
    ref = ListReader()
    sizes = [1, 254, 1, 1, 300, 256, *[10_000] * 6, 65536 - 60_813 - 1, 2, 700]
    for k, n in enumerate(sizes):
        batch = [f"{k}/{i}".encode() for i in range(n)]
        for d in batch:
            ref.add(d)
        cp = verify.verify_checkpoint(log.sequencer.append(batch).checkpoint.note, log.verifier)
        assert cp.root == merkle.tree_hash(len(ref.entries), ref)
    size = len(ref.entries)
    assert size > 65536
    for n in (0, 255, 256, 65535, 65536, size - 1):
        p = log.inclusion(n)
        assert p.proof == merkle.prove_record(size, n, ref)
    assert log.tile(Tile(2, 0, 1)) == ref.tile_data(Tile(2, 0, 1))
    check_log(log)


def test_tessera_interop(engine: Engine) -> None:
    """With Tessera's test key and origin, appending its words one per
    checkpoint reproduces its published checkpoints, tiles and bundles."""
    v = json.loads((VECTORS / "tessera_testdata.json").read_text())
    signer = Signer.from_key(v["private_key"])
    assert signer.verifier.to_key() == v["public_key"]
    log = Log(engine, signer)
    notes = [log.sequencer.init().note]
    notes += [log.sequencer.append([w.encode()]).checkpoint.note for w in v["entries"]]
    for note, row in zip(notes, v["checkpoints"], strict=True):
        expected = f"{v['origin']}\n{row['size']}\n{row['root']}\n\n— {v['origin']} {row['signature']}\n"
        assert note.decode() == expected
    leaves = b"".join(merkle.record_hash(w.encode()) for w in v["entries"])
    for w in range(1, len(v["entries"]) + 1):
        assert log.tile(Tile(0, 0, w)) == leaves[: 32 * w]
    for path, hexbytes in v["bytes"].items():
        from ledger.tlog.tile import parse_tile_path

        assert log.tile(parse_tile_path(path)) == bytes.fromhex(hexbytes)


def test_tiles_beyond_the_tree_are_not_found(log: Log) -> None:
    log.sequencer.append([b"a", b"b", b"c"])
    assert log.tile(Tile(-1, 0, 3)) == b"\x00\x01a\x00\x01b\x00\x01c"
    for t in (Tile(0, 0, 4), Tile(0, 0), Tile(0, 1, 1), Tile(1, 0, 1), Tile(-1, 0, 4), Tile(-1, 0)):
        with pytest.raises(NotFound):
            log.tile(t)


def test_append_rejects_bad_batches_and_writes_nothing(log: Log) -> None:
    log.sequencer.append([b"x"])
    with pytest.raises(InvalidInput, match="nothing"):
        log.sequencer.append([])
    with pytest.raises(InvalidInput, match="65535"):
        log.sequencer.append([b"ok", b"y" * (MAX_ENTRY_SIZE + 1)])
    log.sequencer.append([b"y" * MAX_ENTRY_SIZE])
    with log.read() as s:
        assert log.latest(s).size == 2
    check_log(log)


def test_proof_requests_out_of_range(log: Log) -> None:
    log.sequencer.append([b"a", b"b"])
    log.sequencer.append([b"c"])
    with pytest.raises(NotFound):
        log.inclusion(3)
    with pytest.raises(NotFound, match="no checkpoint for tree size 1"):
        log.inclusion(0, 1)
    with pytest.raises(NotFound, match="beyond"):
        log.consistency(2, 9)
    with pytest.raises(InvalidInput):
        log.consistency(3, 2)
    with pytest.raises(NotFound):
        log.inclusion_by_hash(merkle.record_hash(b"zzz"))
    p = log.inclusion_by_hash(merkle.record_hash(b"c"))
    assert p.index == 2
    with pytest.raises(NotFound):
        log.inclusion_by_hash(merkle.record_hash(b"c"), 2)


def test_a_tampered_proof_is_rejected(log: Log) -> None:
    log.sequencer.append([bytes([i]) for i in range(20)])
    p = log.inclusion(7)
    cp = parse_checkpoint(verify.verify_checkpoint(p.checkpoint.note, log.verifier).body())
    bad = list(p.proof)
    bad[2] = bytes([bad[2][0] ^ 1]) + bad[2][1:]
    with pytest.raises(ProofError):
        verify.verify_entry(bytes([7]), 7, bad, cp)
    with pytest.raises(ProofError):
        verify.verify_entry(bytes([8]), 7, p.proof, cp)


def test_wrong_key_is_refused(log: Log) -> None:
    log.sequencer.append([b"a"])
    other = Log(log.engine, Signer.from_seed(log.origin, bytes(32)))
    with pytest.raises(StorageError, match="did not sign"):
        other.check_key()
    log.check_key()
