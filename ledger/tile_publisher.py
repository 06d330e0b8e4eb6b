"""Publishing the log as static files: a follower that keeps a tile
directory (ledger/tile_directory.py) at the log's latest checkpoint.

It never writes the database and never changes the sequencer: it reads
committed tiles, entry bundles and the latest cosigned checkpoint through
:class:`TileSource` and writes what the tree gained since the directory's
own checkpoint, which is all the state it keeps (there is no other record of
where it got to). Each file holds the bytes the app serves at the same path
(``api/tiles.py``), since both come from the same storage functions.

One round (:func:`publish`), and what a crash at each step leaves:

1. Read and verify ``<dir>/checkpoint`` with the log's key; the log must
   have signed that size with that root, or the round stops (the directory
   belongs to another log, or the database was restored from an older
   backup: publishing would show a fork). A crash here changes nothing.
2. Write every full tile and bundle completed since, then the partial
   tiles of the new tree (one per level at most, and the partial bundle),
   each under a name that is never replaced. A crash leaves some of them,
   unreferenced by any published checkpoint; the next round finds them and
   checks they hold the same bytes.
3. fsync the directories, then read the new files back from the directory
   and verify them against the new checkpoint: the tree hash from the
   directory's tiles is its root, each new full tile hashes to its entry in
   the tile above, each bundle's entries hash to their leaves, and the old
   checkpoint is consistent with the new one (a consistency proof from the
   directory's tiles). On any failure nothing is published.
4. Record the old size in ``.previous``, then replace ``checkpoint``
   (compare-and-swap against the one read in step 1). After it is durable,
   every tile it needs is durable too. A crash before the rename leaves the
   old checkpoint, with all its tiles.
5. Delete the partial tiles of the tiles the new checkpoint has full
   (c2sp.org/tlog-tiles allows it once the full tile exists: a client
   holding an older checkpoint falls back to the full tile, and the
   documented nginx to the app, which still serves them). A crash here is
   finished by the next round, which deletes what ``.previous`` and the
   current checkpoint say it should have.

Partial tiles are written only for the sizes this follower publishes, not
for every size the log signed; with no app behind the directory, a client
holding a checkpoint from the app may find the partial tiles of its size
missing and fall back to full tiles, as the specification says clients may.
A partial tile of a tile still partial is kept: the directory serves every
checkpoint it published until that tile is full.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from keys.note import Verifier
from ledger import storage
from ledger.cosign import cosigned_note
from ledger.errors import InvalidInput, LedgerError, ProofError
from ledger.tile_directory import DirectoryHashReader, TileDirectory, TileDirectoryError
from ledger.tlog import merkle
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.tile import ENTRIES_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, encode_bundle, parse_bundle, tile_hash

if TYPE_CHECKING:
    from ledger.log import Log

logger = logging.getLogger(__name__)

#: Tiles read from the database in one transaction and written before the
#: next: 16 bundles are 4,096 entries (about 8 MB at 2 KB an entry).
BATCH_TILES = 16


@dataclass(frozen=True)
class Head:
    """A signed tree head: ``note`` is the checkpoint as served, with cosignatures."""

    size: int
    root: bytes
    note: bytes | None = None


EMPTY = Head(0, merkle.EMPTY_ROOT)


class TileSource(Protocol):
    """The log, as the publisher reads it."""

    def latest(self) -> Head:
        """The latest checkpoint, with the witness cosignatures stored for it."""
        ...

    def root_at(self, size: int) -> bytes | None:
        """The root the log signed for ``size``, or None if it signed none."""
        ...

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """The bytes of ``tiles`` (all within a committed tree), in order."""
        ...


@dataclass(frozen=True)
class Published:
    """What a round did: the directory went from ``old`` to ``size``."""

    old: int
    size: int
    added: int
    checkpoint_written: bool


def new_tiles(old: int, new: int) -> list[Tile]:
    """The tiles and bundles the tree of size ``new`` has and that of ``old`` lacks.

    Per level, bundles first: the full ones completed since ``old``, then
    the new partial one, if the level's count moved and is not a multiple
    of 256 (empty tiles are never served).
    """
    if not 0 <= old <= new:
        raise AssertionError("tile publisher: sizes out of order")
    out: list[Tile] = []
    level = ENTRIES_LEVEL
    while True:
        shift = 0 if level == ENTRIES_LEVEL else TILE_HEIGHT * level
        count_old, count_new = old >> shift, new >> shift
        if count_new == 0:
            return out
        out.extend(Tile(level, n) for n in range(count_old // TILE_WIDTH, count_new // TILE_WIDTH))
        if count_new != count_old and count_new % TILE_WIDTH:
            out.append(Tile(level, count_new // TILE_WIDTH, count_new % TILE_WIDTH))
        level += 1


def completed(old: int, new: int) -> list[Tile]:
    """The tiles partial in the tree of ``old`` and full in that of ``new``."""
    return [
        t
        for t in new_tiles(old, new)
        if not t.is_partial and t.n == _count(old, t.level) // TILE_WIDTH and _count(old, t.level) % TILE_WIDTH
    ]


def _count(size: int, level: int) -> int:
    return size if level == ENTRIES_LEVEL else size >> (TILE_HEIGHT * level)


def verify_directory(directory: TileDirectory, old: Head, new: Head) -> None:
    """Check the directory's tiles of ``new`` that ``old`` lacks, read back from the files.

    Tiles ``old`` has were checked when it was published; the consistency
    proof ties them to ``new``. Raises :class:`TileDirectoryError`.
    """
    reader = DirectoryHashReader(directory, new.size)
    if merkle.tree_hash(new.size, reader) != new.root:
        raise TileDirectoryError(f"the tiles in {directory.root} do not hash to the root of tree size {new.size}")
    for t in new_tiles(old.size, new.size):
        if t.level == ENTRIES_LEVEL:
            try:
                entries = parse_bundle(reader.tile_data(t.level, t.n), t.width)
            except InvalidInput as e:
                raise TileDirectoryError(f"{t.path()} in {directory.root}: {e}") from None
            # The level-0 tile of the same index and width holds their leaf hashes.
            leaves = reader.tile_data(0, t.n)
            if b"".join(merkle.record_hash(e) for e in entries) != leaves:
                raise TileDirectoryError(f"{t.path()} in {directory.root}: entries differ from their leaf hashes")
        elif not t.is_partial:
            # A partial tile is covered by the root; a full one by the hash of it in the tile above.
            (above,) = reader.read_hashes([merkle.stored_hash_index(TILE_HEIGHT * (t.level + 1), t.n)])
            if tile_hash(reader.tile_data(t.level, t.n)) != above:
                raise TileDirectoryError(f"{t.path()} in {directory.root} differs from its hash in the tile above")
    if 0 < old.size < new.size:
        try:
            merkle.check_tree(merkle.prove_tree(new.size, old.size, reader), new.size, new.root, old.size, old.root)
        except ProofError:
            raise TileDirectoryError(
                f"the log's tree of size {new.size} is not consistent with the checkpoint of size {old.size} "
                f"published in {directory.root}: a fork; nothing was published"
            ) from None


def published(directory: TileDirectory, source: TileSource, verifier: Verifier) -> Head:
    """The directory's checkpoint, verified and checked against the log (EMPTY if none)."""
    note = directory.read_checkpoint()
    if note is None:
        return EMPTY
    try:
        cp = open_checkpoint(note, verifier).checkpoint
    except (ProofError, InvalidInput) as e:
        raise TileDirectoryError(f"{directory.root}/checkpoint is not this log's checkpoint: {e}") from None
    if source.root_at(cp.size) != cp.root:
        raise TileDirectoryError(
            f"{directory.root}/checkpoint (tree size {cp.size}) is not a tree this log signed: another log's "
            "directory, or a database restored from an older backup; publishing would show a fork"
        )
    return Head(cp.size, cp.root, note)


def publish(
    source: TileSource,
    directory: TileDirectory,
    verifier: Verifier,
    progress: Callable[[int, int], None] | None = None,
) -> Published:
    """Bring ``directory`` up to the log's latest checkpoint (one round; see the module docstring).

    ``progress(done, total)`` is called with counts of tiles written.
    """
    if not directory.try_lock():
        raise TileDirectoryError(f"another process is publishing to {directory.root} (it holds .lock)")
    directory.clean()
    old = published(directory, source, verifier)
    previous = directory.read_previous()
    if previous is not None and previous < old.size:
        # Finish what a writer killed after its last checkpoint left (step 5).
        for t in completed(previous, old.size):
            directory.remove_partials(t)
    head = source.latest()
    if head.note is None:
        raise AssertionError("tile publisher: the source's latest checkpoint has no note")
    cp = open_checkpoint(head.note, verifier).checkpoint
    if (cp.size, cp.root) != (head.size, head.root):
        raise AssertionError("tile publisher: the source's checkpoint note differs from its head")
    if head.size < old.size or (head.size == old.size and head.root != old.root):
        raise TileDirectoryError(
            f"{directory.root}/checkpoint (tree size {old.size}) is ahead of or different from the log's "
            f"latest (tree size {head.size}): is the database an older backup?"
        )
    if head.size == old.size:
        # New cosignatures of the same checkpoint: nothing else changes.
        if head.note != old.note:
            _swap_checkpoint(directory, old, head)
        return Published(old.size, head.size, 0, head.note != old.note)
    added = _write_tiles(source, directory, new_tiles(old.size, head.size), progress)
    directory.sync()
    verify_directory(directory, old, head)
    directory.write_previous(old.size)
    _swap_checkpoint(directory, old, head)
    for t in completed(old.size, head.size):
        directory.remove_partials(t)
    return Published(old.size, head.size, added, True)


def _write_tiles(
    source: TileSource, directory: TileDirectory, tiles: list[Tile], progress: Callable[[int, int], None] | None
) -> int:
    """Write ``tiles`` a batch (one read transaction) at a time; return how many were new."""
    added = 0
    for i in range(0, len(tiles), BATCH_TILES):
        batch = tiles[i : i + BATCH_TILES]
        for t, data in zip(batch, source.read_tiles(batch), strict=True):
            added += directory.add_tile(t, data)
        if progress is not None:
            progress(i + len(batch), len(tiles))
    return added


def _swap_checkpoint(directory: TileDirectory, old: Head, new: Head) -> None:
    # Compare-and-swap: the lock makes this writer the only one, but a
    # second machine on a shared file system may not honour flock.
    if directory.read_checkpoint() != old.note:
        raise TileDirectoryError(f"{directory.root}/checkpoint changed under this writer: two publishers?")
    if new.note is None:
        raise AssertionError("tile publisher: no note to publish")
    directory.write_checkpoint(new.note)


class LogTileSource:
    """A :class:`TileSource` over the log's database, through the storage
    functions the app's read path uses (``Log.tile``), each batch in one
    read transaction."""

    def __init__(self, log: Log) -> None:
        self._log = log

    def latest(self) -> Head:
        with self._log.read() as s:
            cp = self._log.latest(s)
            return Head(cp.size, cp.root, cosigned_note(s, cp))

    def root_at(self, size: int) -> bytes | None:
        with self._log.read() as s:
            cp = storage.checkpoint_at(s, size)
        return None if cp is None else cp.root

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        out: list[bytes] = []
        with self._log.read() as s:
            # One range read per run of consecutive tiles of one level.
            for _, run_iter in itertools.groupby(enumerate(tiles), key=lambda it: (it[1].level, it[1].n - it[0])):
                run = [t for _, t in run_iter]
                start, end = run[0].n * TILE_WIDTH, run[-1].n * TILE_WIDTH + run[-1].width
                if run[0].level == ENTRIES_LEVEL:
                    entries = storage.read_entries(s, start, end)
                    out.extend(encode_bundle(entries[i : i + TILE_WIDTH]) for i in range(0, len(entries), TILE_WIDTH))
                else:
                    hashes = storage.read_level_hashes(s, run[0].level, start, end)
                    out.extend(b"".join(hashes[i : i + TILE_WIDTH]) for i in range(0, len(hashes), TILE_WIDTH))
        return out


class TilesWatch:
    """Keeps a tile directory up to date from a serving process, in a thread.

    Every process of a machine may start one; the one holding the
    directory's ``flock`` publishes, the others retry each interval and take
    over when it dies (the kernel drops the lock).
    """

    def __init__(self, log: Callable[[], Log], directory: Path, interval: float) -> None:
        self._log = log
        self._dir = TileDirectory(directory)
        self._interval = interval
        self._started_pid = 0
        self._guard = threading.Lock()
        self._last_error: str | None = None

    def start(self) -> None:
        """Start the publishing thread in this process, once (cheap to call per request)."""
        if self._started_pid == os.getpid() or self._interval <= 0:
            return
        with self._guard:
            if self._started_pid == os.getpid():
                return
            self._started_pid = os.getpid()
            # A fork does not inherit the parent's flock holder role: start afresh.
            self._dir = TileDirectory(self._dir.root)
            threading.Thread(target=self._loop, name="tiles-publisher", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.round()
            time.sleep(self._interval)

    def round(self) -> Published | None:
        """Publish once if this process holds the lock; log (once per distinct message) what failed."""
        try:
            if not self._dir.try_lock():
                return None
            log = self._log()
            res = publish(LogTileSource(log), self._dir, log.verifier)
        except (LedgerError, OSError) as e:
            if str(e) != self._last_error:
                logger.error("publishing tiles to %s failed: %s", self._dir.root, e)
                self._last_error = str(e)
            return None
        except Exception:  # the thread must outlive any one failed round
            logger.exception("publishing tiles to %s failed", self._dir.root)
            return None
        self._last_error = None
        return res
