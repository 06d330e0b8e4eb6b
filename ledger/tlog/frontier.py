"""The right edge of the tree, kept as partial tiles: what appending needs.

Pure. For a tree of size n, level L's partial tile holds the
``(n >> 8L) % 256`` newest complete level-L hashes (Merkle level 8L) that do
not yet fill a tile. Appending a leaf may complete tiles, which carry one
hash up a level; the root is the right-fold of the maximal perfect subtrees,
which these partial tiles spell out (RFC 9162 §2.1.1 splits at the largest
power of two below n, so MTH(D[n]) is the fold of the subtrees given by n's
binary digits, largest first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.tlog.merkle import fold_peaks, node_hash
from ledger.tlog.tile import TILE_HEIGHT, TILE_WIDTH, tile_hash

#: A new stored row: (tile level, index within the level, hash).
Row = tuple[int, int, bytes]


def partial_ranges(size: int) -> list[tuple[int, int, int]]:
    """Return (level, start, end): the rows making up each partial tile of ``size``."""
    out = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        out.append((level, count - count % TILE_WIDTH, count))
        level += 1
    return out


@dataclass
class Frontier:
    """The partial tiles of a tree of ``size`` leaves."""

    size: int = 0
    partials: list[list[bytes]] = field(default_factory=list)
    # The hashes of the maximal perfect subtrees, left to right, once known:
    # kept up to date by append() at O(1) amortised node hashes per leaf (a
    # leaf merges with one subtree per trailing 1 bit of the old size), so
    # the root of every append costs O(log n), not a re-hash of the partials.
    _peaks: list[bytes] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_partials(cls, size: int, partials: Sequence[Sequence[bytes]]) -> Frontier:
        ranges = partial_ranges(size)
        if len(partials) != len(ranges) or any(
            len(p) != end - start for p, (_, start, end) in zip(partials, ranges, strict=True)
        ):
            raise AssertionError("frontier: partial tiles do not match the tree size")
        return cls(size, [list(p) for p in partials])

    def copy(self) -> Frontier:
        peaks = None if self._peaks is None else list(self._peaks)
        return Frontier(self.size, [list(p) for p in self.partials], peaks)

    def append(self, leaf_hash: bytes) -> list[Row]:
        """Add one leaf; return the rows to store (its hash, and any completed tiles')."""
        rows: list[Row] = [(0, self.size, leaf_hash)]
        if self._peaks is not None:
            h, n = leaf_hash, self.size
            while n & 1:
                h = node_hash(self._peaks.pop(), h)
                n >>= 1
            self._peaks.append(h)
        self.size += 1
        if not self.partials:
            self.partials.append([])
        self.partials[0].append(leaf_hash)
        level = 0
        while len(self.partials[level]) == TILE_WIDTH:
            h = tile_hash(b"".join(self.partials[level]))
            self.partials[level] = []
            level += 1
            if len(self.partials) == level:
                self.partials.append([])
            self.partials[level].append(h)
            rows.append((level, (self.size >> (TILE_HEIGHT * level)) - 1, h))
        return rows

    def tile_data(self, level: int, n: int, width: int) -> bytes | None:
        """The first ``width`` hashes of tile ``n`` at tile level ``level``, if
        that tile is this tree's partial tile there and holds that many; else
        None. A tile's hashes never change, so the answer holds for every
        tree that has the tile, smaller or larger than this one."""
        if level >= len(self.partials) or n != (self.size >> (TILE_HEIGHT * level)) // TILE_WIDTH:
            return None
        partial = self.partials[level]
        return b"".join(partial[:width]) if 0 < width <= len(partial) else None

    def subtrees(self) -> list[tuple[int, int, bytes]]:
        """Return the maximal perfect subtrees, left to right, as (lo, hi, hash):
        one per set bit of ``size``, records [lo, hi)."""
        if self._peaks is None:
            self._peaks = self._hash_peaks()
        out: list[tuple[int, int, bytes]] = []
        lo, peaks = 0, iter(self._peaks)
        for bit in range(self.size.bit_length() - 1, -1, -1):
            if self.size & (1 << bit):
                out.append((lo, lo + (1 << bit), next(peaks)))
                lo += 1 << bit
        if next(peaks, None) is not None:
            raise AssertionError("frontier: more subtree hashes than set bits of the size")
        return out

    def _hash_peaks(self) -> list[bytes]:
        """The maximal perfect subtrees' hashes, from the partial tiles."""
        out: list[bytes] = []
        for level in range(len(self.partials) - 1, -1, -1):
            partial, offset = self.partials[level], 0
            for bit in range(TILE_HEIGHT - 1, -1, -1):
                if len(partial) & (1 << bit):
                    out.append(tile_hash(b"".join(partial[offset : offset + (1 << bit)])))
                    offset += 1 << bit
        return out

    def root(self) -> bytes:
        """Return the tree hash of the tree of ``size`` leaves."""
        return fold_peaks([h for _, _, h in self.subtrees()])


class AppendedTree:
    """Inclusion proofs for a batch just appended, from memory alone.

    Pure. Given the frontier of the tree before the batch (size ``first``)
    and the batch's leaf hashes, proves any leaf in [first, size) in the
    tree of ``size`` leaves exactly as :func:`ledger.tlog.merkle.prove_record`
    would, without reading a tile. RFC 9162 §2.1.3 splits [lo, hi) at
    lo + k, k the largest power of two below hi - lo, and lo is always a
    multiple of 2k; so a sibling that ends at or before ``first`` is a
    perfect subtree whose parent reaches past ``first``, that is, one of the
    frontier's maximal subtrees. Every other sibling is hashed from the
    batch's leaves and those subtrees.

    Threads may share one instance: the memo only ever gains entries, and
    two threads computing the same node store the same hash.
    """

    def __init__(self, prior: Frontier, leaf_hashes: Sequence[bytes]) -> None:
        self.first = prior.size
        self.size = prior.size + len(leaf_hashes)
        self._leaves = list(leaf_hashes)
        self._memo: dict[tuple[int, int], bytes] = {(lo, hi): h for lo, hi, h in prior.subtrees()}

    def covers(self, index: int) -> bool:
        return self.first <= index < self.size

    def leaf_hash(self, index: int) -> bytes:
        if not self.covers(index):
            raise AssertionError(f"frontier: leaf {index} is not in the appended batch")
        return self._leaves[index - self.first]

    def prove(self, index: int) -> list[bytes]:
        """Return the inclusion proof of leaf ``index`` in the tree of ``size``."""
        if not self.covers(index):
            raise AssertionError(f"frontier: leaf {index} is not in the appended batch")
        proof: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(self._hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._hash(lo, lo + k))
                lo += k
        proof.reverse()  # RFC 9162 lists the siblings from the leaf up
        return proof

    def _hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of the tree with hi > first, or a frontier subtree."""
        h = self._memo.get((lo, hi))
        if h is not None:
            return h
        if hi <= self.first:
            raise AssertionError(f"frontier: [{lo}, {hi}) is not a subtree of the frontier")
        if hi - lo == 1:
            return self._leaves[lo - self.first]
        k = _split(hi - lo)
        h = node_hash(self._hash(lo, lo + k), self._hash(lo + k, hi))
        self._memo[(lo, hi)] = h
        return h


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)
