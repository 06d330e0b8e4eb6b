"""Exhaustive checks of the Merkle math on small trees (principle 12), in
memory: every tree size 0..130, every inclusion and consistency proof, and
single-bit flips of each proof rejected.

Every bit of every proof hash is flipped for trees up to 24 leaves; above
that, for each proof hash one bit position drawn by a seeded generator
(flipping all 256 bits of all ~60,000 proof hashes up to 130 leaves would
take minutes and exercise the same code paths).
"""

from __future__ import annotations

import random

import pytest

from ledger.errors import InvalidInput, ProofError
from ledger.tlog import merkle
from ledger.tlog.frontier import Frontier
from tests.reference import ListReader

MAX_SIZE = 130
ALL_BITS_UP_TO = 24


@pytest.fixture(scope="module")
def ref() -> ListReader:
    r = ListReader()
    for i in range(MAX_SIZE):
        r.add(f"leaf {i}".encode())
    return r


def _naive_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1, recursively."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return merkle.record_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_naive_mth(leaves[:k]), _naive_mth(leaves[k:]))


def _flips(proof: list[bytes], t: int, rng: random.Random) -> list[list[bytes]]:
    out = []
    for i, h in enumerate(proof):
        bits = range(256) if t <= ALL_BITS_UP_TO else [rng.randrange(256)]
        for b in bits:
            flipped = bytearray(h)
            flipped[b // 8] ^= 1 << (b % 8)
            out.append(proof[:i] + [bytes(flipped)] + proof[i + 1 :])
    return out


def test_tree_hash_matches_rfc_definition(ref: ListReader) -> None:
    for t in range(MAX_SIZE + 1):
        assert merkle.tree_hash(t, ref) == _naive_mth(ref.entries[:t])


def test_frontier_matches_tree_hash(ref: ListReader) -> None:
    f = Frontier()
    assert f.root() == merkle.EMPTY_ROOT
    for t in range(1, MAX_SIZE + 1):
        f.append(merkle.record_hash(ref.entries[t - 1]))
        assert f.root() == merkle.tree_hash(t, ref)


@pytest.mark.parametrize("t", range(1, MAX_SIZE + 1))
def test_every_inclusion_proof(ref: ListReader, t: int) -> None:
    rng = random.Random(t)
    th = merkle.tree_hash(t, ref)
    for n in range(t):
        h = merkle.record_hash(ref.entries[n])
        proof = merkle.prove_record(t, n, ref)
        merkle.check_record(proof, t, th, n, h)
        for bad in _flips(proof, t, rng):
            with pytest.raises(ProofError):
                merkle.check_record(bad, t, th, n, h)
        for wrong_n in {n - 1, n + 1} - {-1, t}:
            with pytest.raises(ProofError):
                merkle.check_record(proof, t, th, wrong_n, h)


@pytest.mark.parametrize("t", range(1, MAX_SIZE + 1))
def test_prove_record_nodes_is_prove_record(ref: ListReader, t: int) -> None:
    """The node-by-node prover gives every proof the stored-index one gives."""

    def node(level: int, i: int) -> bytes:
        return ref.read_hashes([merkle.stored_hash_index(level, i)])[0]

    for n in range(t):
        assert merkle.prove_record_nodes(t, n, node) == merkle.prove_record(t, n, ref), (t, n)
    for bad in (-1, t):
        with pytest.raises(InvalidInput):
            merkle.prove_record_nodes(t, bad, node)


@pytest.mark.parametrize("t", range(1, MAX_SIZE + 1))
def test_prove_tree_nodes_is_prove_tree(ref: ListReader, t: int) -> None:
    """The node-by-node consistency prover gives every proof the stored-index one gives."""

    def node(level: int, i: int) -> bytes:
        return ref.read_hashes([merkle.stored_hash_index(level, i)])[0]

    for n in range(1, t + 1):
        assert merkle.prove_tree_nodes(t, n, node) == merkle.prove_tree(t, n, ref), (t, n)
    for bad in (0, t + 1):
        with pytest.raises(InvalidInput):
            merkle.prove_tree_nodes(t, bad, node)


@pytest.mark.parametrize("t", range(1, MAX_SIZE + 1))
def test_every_consistency_proof(ref: ListReader, t: int) -> None:
    rng = random.Random(-t)
    th = merkle.tree_hash(t, ref)
    for n in range(1, t + 1):
        h = merkle.tree_hash(n, ref)
        proof = merkle.prove_tree(t, n, ref)
        merkle.check_tree(proof, t, th, n, h)
        for bad in _flips(proof, t, rng):
            with pytest.raises(ProofError):
                merkle.check_tree(bad, t, th, n, h)
        if n < t:
            with pytest.raises(ProofError):
                merkle.check_tree(proof, t, th, n, merkle.tree_hash(n + 1, ref))


def test_stored_hash_index_round_trips() -> None:
    for index in range(5000):
        level, n = merkle.split_stored_hash_index(index)
        assert merkle.stored_hash_index(level, n) == index
    for n in range(1, 600):
        assert merkle.stored_hash_count(n) == merkle.stored_hash_index(0, n)
