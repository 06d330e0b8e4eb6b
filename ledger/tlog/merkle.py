"""Merkle tree hashing and proofs, per RFC 6962 §2.1 / RFC 9162 §2.1.

A line-by-line port of Go's ``golang.org/x/mod/sumdb/tlog/tlog.go`` so a
reader can put the two side by side. Records are numbered from 0; a tree of
size ``t`` holds records ``0 .. t-1``.

Hashes are addressed by *stored hash index*: the order in which a log that
keeps every complete subtree hash would write them (record 0's leaf, record
1's leaf, then their parent, ...). Storage reaches the algorithms only
through :class:`HashReader`, so proofs cost exactly the hashes they read:
``prove_record`` and ``prove_tree`` read O(log t) hashes, ``tree_hash`` at
most 1 + log2(t).

Proof hashes are ordered from the leaf upwards, as in RFC 9162 §2.1.3 and
§2.1.4, which is also the order Go and transparency-dev use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

from ledger.errors import InvalidInput, ProofError

HASH_SIZE = 32

#: The hash of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
#: Go's x/mod 0.7.0 ``tlog.TreeHash(0)`` returns 32 zero bytes instead; C2SP
#: checkpoints of empty logs carry this value.
EMPTY_ROOT = hashlib.sha256(b"").digest()


class HashReader(Protocol):
    """Storage, as the algorithms see it."""

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the stored hashes at ``indexes``, in the same order.

        Must raise rather than return fewer hashes than asked for.
        """
        ...


def record_hash(data: bytes) -> bytes:
    """Return the leaf hash of a record: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def fold_peaks(peaks: Sequence[bytes]) -> bytes:
    """The tree hash of a tree given its maximal perfect subtrees' hashes,
    left to right (one per set bit of its size): RFC 9162's right fold,
    ``node_hash(p0, node_hash(p1, ... pk))``; the empty tree's for none."""
    if not peaks:
        return EMPTY_ROOT
    h = peaks[-1]
    for left in reversed(peaks[:-1]):
        h = node_hash(left, h)
    return h


def _maxpow2(n: int) -> tuple[int, int]:
    """Return (k, l) with k = 2**l the largest power of two below n (n > 1)."""
    level = (n - 1).bit_length() - 1
    return 1 << level, level


def _trailing_zeros(x: int) -> int:
    return (x & -x).bit_length() - 1


def stored_hash_index(level: int, n: int) -> int:
    """Return the stored hash index of the n'th hash at ``level``."""
    # Level L's n'th hash is written right after level L+1's 2n+1'th hash.
    # Work down to the level-0 ordering and add the level count back at the end.
    for _ in range(level, 0, -1):
        n = 2 * n + 1
    # Level 0's n'th hash is written at n + n/2 + n/4 + ...
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """Invert :func:`stored_hash_index`: return (level, n)."""
    # stored_hash_index(0, n) < 2n, so the n we want is in
    # [index/2, index/2 + log2(index)].
    n = index // 2
    index_n = stored_hash_index(0, n)
    if index_n > index:
        raise AssertionError("tlog: bad math in split_stored_hash_index")
    while True:
        # Each new record n adds 1 + trailing_zeros(n+1) hashes.
        x = index_n + 1 + _trailing_zeros(n + 1)
        if x > index:
            break
        n += 1
        index_n = x
    # The hash we want was committed with record n:
    # it is one of (0, n), (1, n/2), (2, n/4), ...
    level = index - index_n
    return level, n >> level


def stored_hash_count(n: int) -> int:
    """Return how many hashes a log of n records stores."""
    if n == 0:
        return 0
    num_hash = stored_hash_index(0, n - 1) + 1
    # Plus the hashes of subtrees completed by the last leaf.
    i = n - 1
    while i & 1:
        num_hash += 1
        i >>= 1
    return num_hash


def stored_hashes(n: int, data: bytes, reader: HashReader) -> list[bytes]:
    """Return the hashes to store when record n (0-based) with ``data`` is added."""
    return stored_hashes_for_record_hash(n, record_hash(data), reader)


def stored_hashes_for_record_hash(n: int, h: bytes, reader: HashReader) -> list[bytes]:
    """Like :func:`stored_hashes`, given the record's leaf hash."""
    hashes = [h]
    # Each trailing 1 bit of n completes a subtree and consumes the hash of
    # its left sibling, stored earlier.
    m = _trailing_zeros(n + 1)
    indexes = [0] * m
    for i in range(m):
        indexes[m - 1 - i] = stored_hash_index(i, (n >> i) - 1)
    old = reader.read_hashes(indexes)
    if len(old) != m:
        raise AssertionError("tlog: reader returned the wrong number of hashes")
    for i in range(m):
        h = node_hash(old[m - 1 - i], h)
        hashes.append(h)
    return hashes


def sub_tree_index(lo: int, hi: int, need: list[int]) -> list[int]:
    """Append the stored indexes needed to hash records [lo, hi)."""
    while lo < hi:
        k, level = _maxpow2(hi - lo + 1)
        if lo & (k - 1):
            raise AssertionError("tlog: bad math in sub_tree_index")
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def _sub_tree_hash(lo: int, hi: int, hashes: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Hash records [lo, hi) from the hashes sub_tree_index asked for.

    Returns the hash and the unconsumed rest of ``hashes``.
    """
    # Partition into a left side of 2**level records, as large as possible,
    # whose hash is stored, and a right fringe that needs further work.
    num_tree = 0
    while lo < hi:
        k, _ = _maxpow2(hi - lo + 1)
        if lo & (k - 1) or lo >= hi:
            raise AssertionError("tlog: bad math in _sub_tree_hash")
        num_tree += 1
        lo += k
    if len(hashes) < num_tree:
        raise AssertionError("tlog: bad index math in _sub_tree_hash")
    h = hashes[num_tree - 1]
    for i in range(num_tree - 2, -1, -1):
        h = node_hash(hashes[i], h)
    return h, hashes[num_tree:]


def tree_hash(n: int, reader: HashReader) -> bytes:
    """Return the hash of the tree of size n, reading at most 1 + log2 n hashes."""
    if n == 0:
        return EMPTY_ROOT
    indexes = sub_tree_index(0, n, [])
    hashes = reader.read_hashes(indexes)
    if len(hashes) != len(indexes):
        raise AssertionError("tlog: reader returned the wrong number of hashes")
    h, rest = _sub_tree_hash(0, n, hashes)
    if rest:
        raise AssertionError("tlog: bad index math in tree_hash")
    return h


# Inclusion proofs (RFC 9162 §2.1.3)


def prove_record(t: int, n: int, reader: HashReader) -> list[bytes]:
    """Return the proof that record n is in the tree of size t."""
    if t < 0 or n < 0 or n >= t:
        raise InvalidInput(f"tlog: invalid inputs in prove_record (t={t}, n={n})")
    indexes = _leaf_proof_index(0, t, n, [])
    if not indexes:
        return []
    hashes = reader.read_hashes(indexes)
    if len(hashes) != len(indexes):
        raise AssertionError("tlog: reader returned the wrong number of hashes")
    p, rest = _leaf_proof(0, t, n, hashes)
    if rest:
        raise AssertionError("tlog: bad index math in prove_record")
    return p


#: ``node(level, i)``: the hash of the complete subtree of records
#: [i * 2**level, (i + 1) * 2**level), the stored hash (level, i).
NodeReader = Callable[[int, int], bytes]


def prove_record_nodes(t: int, n: int, node: NodeReader) -> list[bytes]:
    """:func:`prove_record` over a reader of single nodes: the same proof
    (RFC 9162 section 2.1.3.1, PATH(n, D[0:t])), walked down from the root
    without a list of stored hash indexes. For a reader that finds a node
    straight from its level and index (a full tile's kept inner nodes),
    where the index arithmetic cost more than the proof's hashing."""
    if t < 0 or n < 0 or n >= t:
        raise InvalidInput(f"tlog: invalid inputs in prove_record_nodes (t={t}, n={n})")
    proof = []
    lo, hi = 0, t
    while hi - lo > 1:
        k, level = _maxpow2(hi - lo)
        if n < lo + k:
            proof.append(_sub_tree_nodes(lo + k, hi, node))
            hi = lo + k
        else:
            proof.append(node(level, lo >> level))
            lo += k
    proof.reverse()  # leaf to root, as _leaf_proof appends
    return proof


def _sub_tree_nodes(lo: int, hi: int, node: NodeReader) -> bytes:
    """The hash of records [lo, hi) as :func:`_sub_tree_hash` makes it: the
    maximal complete subtrees left to right, hashed right to left."""
    parts = []
    while lo < hi:
        k, level = _maxpow2(hi - lo + 1)
        if lo & (k - 1):
            raise AssertionError("tlog: bad math in _sub_tree_nodes")
        parts.append(node(level, lo >> level))
        lo += k
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def _leaf_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if not lo <= n < hi:
        raise AssertionError("tlog: bad math in _leaf_proof_index")
    if lo + 1 == hi:
        return need
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        need = _leaf_proof_index(lo, lo + k, n, need)
        need = sub_tree_index(lo + k, hi, need)
    else:
        need = sub_tree_index(lo, lo + k, need)
        need = _leaf_proof_index(lo + k, hi, n, need)
    return need


def _leaf_proof(lo: int, hi: int, n: int, hashes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    if not lo <= n < hi:
        raise AssertionError("tlog: bad math in _leaf_proof")
    if lo + 1 == hi:
        # The verifier knows the leaf hash; it is not part of the proof.
        return [], hashes
    # Walk down toward n, recording the hash of the other half each time.
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        p, hashes = _leaf_proof(lo, lo + k, n, hashes)
        th, hashes = _sub_tree_hash(lo + k, hi, hashes)
    else:
        th, hashes = _sub_tree_hash(lo, lo + k, hashes)
        p, hashes = _leaf_proof(lo + k, hi, n, hashes)
    p.append(th)
    return p, hashes


def check_record(proof: Sequence[bytes], t: int, th: bytes, n: int, h: bytes) -> None:
    """Verify that record n with leaf hash h is in the tree of size t and hash th.

    Raises :class:`ProofError` if not.
    """
    if t < 0 or n < 0 or n >= t or len(th) != HASH_SIZE or len(h) != HASH_SIZE:
        raise ProofError("invalid proof")
    th2 = _run_record_proof(list(proof), 0, t, n, h)
    if th2 != th:
        raise ProofError("invalid proof")


def _run_record_proof(p: list[bytes], lo: int, hi: int, n: int, leaf: bytes) -> bytes:
    if not lo <= n < hi:
        raise AssertionError("tlog: bad math in _run_record_proof")
    if lo + 1 == hi:
        # The proof must not carry unnecessary hashes.
        if p:
            raise ProofError("invalid proof")
        return leaf
    if not p:
        raise ProofError("invalid proof")
    last = p[-1]
    if len(last) != HASH_SIZE:
        raise ProofError("invalid proof")
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        return node_hash(_run_record_proof(p[:-1], lo, lo + k, n, leaf), last)
    return node_hash(last, _run_record_proof(p[:-1], lo + k, hi, n, leaf))


# Consistency proofs (RFC 9162 §2.1.4)


def prove_tree(t: int, n: int, reader: HashReader) -> list[bytes]:
    """Return the proof that the tree of size n is a prefix of the tree of size t.

    Like Go's ProveTree, requires 1 <= n <= t: every tree is trivially
    consistent with the empty tree, and RFC 9162 defines no proof for it.
    """
    if t < 1 or n < 1 or n > t:
        raise InvalidInput(f"tlog: invalid inputs in prove_tree (t={t}, n={n})")
    indexes = _tree_proof_index(0, t, n, [])
    if not indexes:
        return []
    hashes = reader.read_hashes(indexes)
    if len(hashes) != len(indexes):
        raise AssertionError("tlog: reader returned the wrong number of hashes")
    p, rest = _tree_proof(0, t, n, hashes)
    if rest:
        raise AssertionError("tlog: bad index math in prove_tree")
    return p


def prove_tree_nodes(t: int, n: int, node: NodeReader) -> list[bytes]:
    """:func:`prove_tree` over a reader of single nodes: the same proof
    (RFC 9162 section 2.1.4.1, SUBPROOF(n, D[0:t], true)), walked down from
    the root, as :func:`prove_record_nodes` walks an inclusion proof."""
    if t < 1 or n < 1 or n > t:
        raise InvalidInput(f"tlog: invalid inputs in prove_tree_nodes (t={t}, n={n})")
    proof = []
    lo, hi = 0, t
    while n != hi:
        k, _ = _maxpow2(hi - lo)
        if n <= lo + k:
            proof.append(_sub_tree_nodes(lo + k, hi, node))
            hi = lo + k
        else:
            proof.append(_sub_tree_nodes(lo, lo + k, node))
            lo += k
    if lo != 0:
        # [lo, n) is a subtree of the old tree whose hash the verifier does not know.
        proof.append(_sub_tree_nodes(lo, hi, node))
    proof.reverse()  # deepest first, as _tree_proof appends
    return proof


def _tree_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if not lo < n <= hi:
        raise AssertionError("tlog: bad math in _tree_proof_index")
    if n == hi:
        if lo == 0:
            return need
        return sub_tree_index(lo, hi, need)
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        need = _tree_proof_index(lo, lo + k, n, need)
        need = sub_tree_index(lo + k, hi, need)
    else:
        need = sub_tree_index(lo, lo + k, need)
        need = _tree_proof_index(lo + k, hi, n, need)
    return need


def _tree_proof(lo: int, hi: int, n: int, hashes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    if not lo < n <= hi:
        raise AssertionError("tlog: bad math in _tree_proof")
    if n == hi:
        if lo == 0:
            # This subtree is exactly the old tree, whose hash the verifier knows.
            return [], hashes
        th, hashes = _sub_tree_hash(lo, hi, hashes)
        return [th], hashes
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        p, hashes = _tree_proof(lo, lo + k, n, hashes)
        th, hashes = _sub_tree_hash(lo + k, hi, hashes)
    else:
        th, hashes = _sub_tree_hash(lo, lo + k, hashes)
        p, hashes = _tree_proof(lo + k, hi, n, hashes)
    p.append(th)
    return p, hashes


def check_tree(proof: Sequence[bytes], t: int, th: bytes, n: int, h: bytes) -> None:
    """Verify that the tree of size n and hash h is a prefix of the tree (t, th).

    Raises :class:`ProofError` if not.
    """
    if t < 1 or n < 1 or n > t or len(th) != HASH_SIZE or len(h) != HASH_SIZE:
        raise ProofError("invalid proof")
    h2, th2 = _run_tree_proof(list(proof), 0, t, n, h)
    if th2 != th or h2 != h:
        raise ProofError("invalid proof")


def _run_tree_proof(p: list[bytes], lo: int, hi: int, n: int, old: bytes) -> tuple[bytes, bytes]:
    """Return (hash of the old tree's part of [lo, hi), hash of [lo, hi))."""
    if not lo < n <= hi:
        raise AssertionError("tlog: bad math in _run_tree_proof")
    if n == hi:
        if lo == 0:
            if p:
                raise ProofError("invalid proof")
            return old, old
        if len(p) != 1 or len(p[0]) != HASH_SIZE:
            raise ProofError("invalid proof")
        return p[0], p[0]
    if not p:
        raise ProofError("invalid proof")
    last = p[-1]
    if len(last) != HASH_SIZE:
        raise ProofError("invalid proof")
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        oh, th = _run_tree_proof(p[:-1], lo, lo + k, n, old)
        return oh, node_hash(th, last)
    oh, th = _run_tree_proof(p[:-1], lo + k, hi, n, old)
    return node_hash(last, oh), node_hash(last, th)
