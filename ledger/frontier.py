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

from ledger.tile import TILE_HEIGHT, TILE_WIDTH, tile_hash
from ledger.tlog import EMPTY_ROOT, node_hash

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

    @classmethod
    def from_partials(cls, size: int, partials: Sequence[Sequence[bytes]]) -> Frontier:
        ranges = partial_ranges(size)
        if len(partials) != len(ranges) or any(
            len(p) != end - start for p, (_, start, end) in zip(partials, ranges, strict=True)
        ):
            raise AssertionError("frontier: partial tiles do not match the tree size")
        return cls(size, [list(p) for p in partials])

    def copy(self) -> Frontier:
        return Frontier(self.size, [list(p) for p in self.partials])

    def append(self, leaf_hash: bytes) -> list[Row]:
        """Add one leaf; return the rows to store (its hash, and any completed tiles')."""
        rows: list[Row] = [(0, self.size, leaf_hash)]
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

    def root(self) -> bytes:
        """Return the tree hash of the tree of ``size`` leaves."""
        subtrees: list[bytes] = []
        for partial in reversed(self.partials):
            m, offset = len(partial), 0
            for bit in range(TILE_HEIGHT - 1, -1, -1):
                if m & (1 << bit):
                    group = partial[offset : offset + (1 << bit)]
                    subtrees.append(tile_hash(b"".join(group)))
                    offset += 1 << bit
        if not subtrees:
            return EMPTY_ROOT
        h = subtrees[-1]
        for left in reversed(subtrees[:-1]):
            h = node_hash(left, h)
        return h
