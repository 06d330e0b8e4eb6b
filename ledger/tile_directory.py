"""A directory in the c2sp.org/tlog-tiles layout, written crash-safely.

``<dir>/checkpoint`` and ``<dir>/tile/...`` are the files a static web
server serves at ``<prefix>/checkpoint`` and ``<prefix>/tile/...``. This
module owns the files and their durability; what goes into them, and when,
is ledger/tile_publisher.py's concern. It imports no database.

Durability, the order every reader relies on:

* A tile or entry bundle is written to ``<dir>/.tmp/``, fsynced, then
  hard-linked to its final name, which fails if the name exists: a file
  never replaces another, so a tile is immutable once it has a name, and
  whatever has a name holds all its bytes (they were durable before the
  name existed). An existing file with other bytes is refused, never
  "repaired". The temporary name is then unlinked; a crash leaves it in
  ``.tmp/``, which :meth:`TileDirectory.clean` empties.
* :meth:`TileDirectory.sync` fsyncs every directory that gained a name,
  so after it returns the names survive a power cut too.
* The checkpoint is the only file ever replaced: written to ``.tmp/``,
  fsynced, renamed over ``checkpoint`` (atomic: a reader sees the old one or
  the new one), then ``<dir>`` is fsynced. The publisher calls it last, after
  ``sync``, so a checkpoint that survives a crash never names a missing tile.
* Partial tiles may be deleted once their full tile exists (c2sp.org/tlog-tiles,
  "Partial Tiles"): :meth:`TileDirectory.remove_partials`. ``<dir>/.previous``
  holds the size published before the current checkpoint, so that a
  deletion interrupted by a crash is finished by the next writer.

One writer per directory: :meth:`TileDirectory.try_lock` takes an exclusive
``flock`` on ``<dir>/.lock``, held until :meth:`TileDirectory.unlock` or the
process exits. None of ``.lock``,
``.previous`` and ``.tmp/`` is under ``tile/``, so a server that exposes only
``/checkpoint`` and ``/tile/`` (docs/deployment.md) never serves them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from ledger.errors import LedgerError
from ledger.tlog.merkle import HASH_SIZE
from ledger.tlog.tile import ENTRIES_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, tile_for_index, tile_hash

CHECKPOINT = "checkpoint"
TMP = ".tmp"
LOCK = ".lock"
PREVIOUS = ".previous"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class TileDirectoryError(LedgerError):
    """The directory disagrees with the log, or another process writes it.

    Nothing was published: the directory's checkpoint is the one it had.
    """


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TileDirectory:
    """The files of one tile directory; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / TMP
        self._lock_fd = -1
        self._unsynced: set[Path] = set()
        self._serial = 0

    def try_lock(self) -> bool:
        """Take the directory's writer lock if free; keep it until the process exits."""
        if self._lock_fd >= 0:
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        """Release the writer lock (the kernel also drops it when the process exits)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def clean(self) -> None:
        """Remove what an interrupted writer left in ``.tmp/`` (under the lock only)."""
        if self._lock_fd < 0:
            raise AssertionError("tile directory: clean() without the writer lock")
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def read_checkpoint(self) -> bytes | None:
        try:
            return (self.root / CHECKPOINT).read_bytes()
        except FileNotFoundError:
            return None

    def read_tile(self, tile: Tile) -> bytes | None:
        try:
            return (self.root / tile.path()).read_bytes()
        except FileNotFoundError:
            return None

    def _temp(self, data: bytes) -> Path:
        self._serial += 1
        tmp = self._tmp / f"{os.getpid()}.{self._serial}"
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def add_tile(self, tile: Tile, data: bytes) -> bool:
        """Give ``data`` the name ``tile.path()`` unless it has it already.

        Returns whether a file was added. Raises :class:`TileDirectoryError`
        if a file of that name holds other bytes; it is left as it is.
        """
        path = self.root / tile.path()
        if path.exists():
            self._check_same(tile, path, data)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp(data)
        try:
            os.link(tmp, path)  # never replaces: EEXIST if the name exists
        except FileExistsError:
            self._check_same(tile, path, data)
            return False
        finally:
            tmp.unlink()
        # New directories' own names are made durable by fsyncing their parents.
        d = path.parent
        while d != self.root and d not in self._unsynced:
            self._unsynced.add(d)
            d = d.parent
        self._unsynced.add(self.root)
        return True

    @staticmethod
    def _check_same(tile: Tile, path: Path, data: bytes) -> None:
        if path.read_bytes() != data:
            raise TileDirectoryError(
                f"{path} exists and differs from the log's {tile.path()}; files are never replaced: "
                "find out who wrote it, then remove it and publish again"
            )

    def sync(self) -> None:
        """Make every name added since the last sync durable (deepest directories first)."""
        for d in sorted(self._unsynced, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(d)
        self._unsynced.clear()

    def write_checkpoint(self, note: bytes) -> None:
        """Replace ``checkpoint`` atomically and durably. Call :meth:`sync` first."""
        if self._unsynced:
            raise AssertionError("tile directory: checkpoint written before its tiles were synced")
        tmp = self._temp(note)
        os.replace(tmp, self.root / CHECKPOINT)
        _fsync_dir(self.root)

    def read_previous(self) -> int | None:
        """The size published before the current checkpoint, as :meth:`write_previous` left it."""
        try:
            text = (self.root / PREVIOUS).read_text()
        except FileNotFoundError:
            return None
        return int(text) if _DECIMAL.fullmatch(text) else None

    def write_previous(self, size: int) -> None:
        """Record, durably, the size of the checkpoint about to be replaced."""
        tmp = self._temp(str(size).encode())
        os.replace(tmp, self.root / PREVIOUS)
        _fsync_dir(self.root)

    def remove_partials(self, tile: Tile) -> None:
        """Delete every partial form of the full ``tile``; nothing if the full tile is absent."""
        if tile.is_partial:
            raise AssertionError("tile directory: remove_partials takes the full tile")
        if (self.root / tile.path()).is_file():
            shutil.rmtree(self.root / f"{tile.path()}.p", ignore_errors=True)


class DirectoryHashReader:
    """A :class:`ledger.tlog.merkle.HashReader` over the tiles of the tree of ``size`` in a directory.

    Each stored hash is recomputed from the one tile of that tree holding
    it, full or partial, as Go's ``tlog.TileHashReader`` does. Raises
    :class:`TileDirectoryError` if a tile is missing or has the wrong length.
    """

    def __init__(self, directory: TileDirectory, size: int) -> None:
        self._dir = directory
        self._size = size
        self._tiles: dict[tuple[int, int], bytes] = {}

    def tile(self, level: int, n: int) -> Tile:
        """The tile (level, n) as the tree of ``size`` has it: full, or partial at its width."""
        count = self._size if level == ENTRIES_LEVEL else self._size >> (TILE_HEIGHT * level)
        width = min(TILE_WIDTH, count - n * TILE_WIDTH)
        if width <= 0:
            raise AssertionError(f"tile directory: tile {level}/{n} is beyond the tree of size {self._size}")
        return Tile(level, n, width)

    def tile_data(self, level: int, n: int) -> bytes:
        key = (level, n)
        data = self._tiles.get(key)
        if data is None:
            t = self.tile(level, n)
            data = self._dir.read_tile(t)
            if data is None:
                raise TileDirectoryError(f"{t.path()} is missing from {self._dir.root}")
            if level != ENTRIES_LEVEL and len(data) != t.width * HASH_SIZE:
                raise TileDirectoryError(f"{t.path()} in {self._dir.root} has {len(data)} bytes")
            # Only the few tiles above level 0 and the partial ones are kept:
            # a catch-up reads every level-0 tile and bundle once.
            if level > 0 or t.is_partial:
                self._tiles[key] = data
        return data

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        out = []
        for i in indexes:
            t, start, end = tile_for_index(i)
            out.append(tile_hash(self.tile_data(t.level, t.n)[start:end]))
        return out
