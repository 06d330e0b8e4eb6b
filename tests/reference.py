"""An in-memory reference log built only from ledger.tlog.merkle, the port of Go's
tlog that the published vectors check. Tests compare the stored log with it."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.tlog import merkle
from ledger.tlog.tile import TILE_HEIGHT, TILE_WIDTH, Tile, encode_bundle


class ListReader:
    """A HashReader over a plain list of stored hashes."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.entries: list[bytes] = []

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def add(self, data: bytes) -> None:
        self.hashes.extend(merkle.stored_hashes(len(self.entries), data, self))
        self.entries.append(data)

    def tile_data(self, tile: Tile) -> bytes:
        """The tile's bytes, computed hash by hash from the stored hashes."""
        if tile.level < 0:
            start = tile.n * TILE_WIDTH
            return encode_bundle(self.entries[start : start + tile.width])
        level = TILE_HEIGHT * tile.level
        return b"".join(
            self.hashes[merkle.stored_hash_index(level, tile.n * TILE_WIDTH + i)] for i in range(tile.width)
        )


def tiles_for_size(size: int) -> list[Tile]:
    """Every tile (hash and entry) a client of a tree of ``size`` may fetch."""
    out: list[Tile] = []
    level, count = -1, size
    while count:
        for n in range(count // TILE_WIDTH):
            out.append(Tile(level, n))
        if count % TILE_WIDTH:
            out.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
        count = size >> (TILE_HEIGHT * level)
    return out
