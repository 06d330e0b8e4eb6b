"""The operator's audit: recompute the whole tree from the stored entries.

Reads the entries in index order, each decoded from its stored form
(ledger/entry_codec.py) as every reader decodes it, rebuilds every tile hash and compares it
with the stored one, recomputes the root at every checkpointed size and
checks the checkpoint's root and signature, and finally checks the head.
Then, from the same entries, it derives every row of the tables readers see
(ledger/derived.py: platforms, keys, revocations, records, the feed's query
index, published statistics) and compares each with the stored row, column
by column; on SQLite it also has FTS5 check the full-text index against its
column. Reads O(n) entries and holds O(log n) hashes and a few batches of
rows in memory.

The log is audited in batches of :data:`BATCH` entries, each by
:func:`audit_range`, which needs nothing from the batches before it: it
reads the batch's entries, hashes the leaves and compares them with the
stored level-0 hashes, derives the batch's rows and compares them with the
stored ones. Worker processes (``jobs``) each run it on whole batches over
a database connection of their own, so nothing but a batch's bounds goes
to a worker and only its leaf hashes (32 bytes an entry) and what it found
come back. This process takes the batches in log order and folds their
leaf hashes into the tree: the tile hashes above level 0, the checkpoints
and the head, a few hashes a tile. So a report never depends on how many
processes made it. On SQLite, FTS5's check of the full-text index runs
meanwhile on a thread of its own (SQLite releases the GIL while it scans).
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import Pool

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keys.note import Verifier
from ledger import derived, storage
from ledger.db import driver_sql, is_sqlite, make_engine
from ledger.errors import InvalidInput, ProofError, StorageError
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.frontier import Frontier, Row
from ledger.tlog.merkle import EMPTY_ROOT, HASH_SIZE, fold_peaks
from ledger.tlog.tile import TILE_HEIGHT, TILE_WIDTH, tile_hash

BATCH = 4096
#: Below this many entries the worker processes cost more than they save.
PARALLEL_FROM = 4 * BATCH
#: The bytes of a full level-0 tile's hashes.
_TILE_BYTES = TILE_WIDTH * HASH_SIZE


@dataclass
class AuditReport:
    size: int = 0
    entries: int = 0
    checkpoints: int = 0
    #: Derived rows whose table, key, column and values differ from their entries.
    mismatches: list[derived.Mismatch] = field(default_factory=list)
    #: (tree size at which the problem shows, message)
    found: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.found

    @property
    def problems(self) -> list[str]:
        """The problems in log order: the first is the earliest mismatch."""
        return [msg for _, msg in sorted(self.found, key=lambda p: p[0])]

    def add(self, at: int, msg: str) -> None:
        self.found.append((at, msg))

    def add_mismatches(self, mismatches: list[derived.Mismatch]) -> None:
        self.mismatches.extend(mismatches)
        for m in mismatches:
            self.add(m.at, f"derived row differs from its entry: {m}")


def audit(
    session: Session,
    verifier: Verifier,
    progress: Callable[[int, int], None] | None = None,
    max_problems: int = 20,
    derived_rows: bool = True,
    jobs: int | None = None,
) -> AuditReport:
    """Recompute the log, and (unless ``derived_rows`` is false) every derived
    row, from the entries; report mismatches, first first.

    ``jobs`` worker processes audit the batches (0: this process does); by
    default one per core, up to four, for a log of at least
    :data:`PARALLEL_FROM` entries in a database file or server a second
    connection can open. The report is the same whatever ``jobs``.
    """
    report = AuditReport()
    head = storage.read_head(session)
    if head is None:
        report.add(0, "the log is not initialised")
        return report
    report.size = head.size
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    if jobs is None:
        jobs = min(os.cpu_count() or 1, 4) if head.size >= PARALLEL_FROM else 0
    if not _shareable(engine):
        jobs = 0
    with ExitStack() as stack:
        # The workers are forked before the search thread starts: a fork copies one thread.
        pool = stack.enter_context(_pool(engine, jobs)) if jobs else None
        search = None
        if derived_rows and is_sqlite(engine):
            threads = stack.enter_context(ThreadPoolExecutor(1, "audit-search"))
            search = threads.submit(derived.check_search, engine)
        if not _audit_entries(session, verifier, head, report, progress, max_problems, derived_rows, pool, jobs):
            if search is not None:
                search.cancel()  # if it has not started; else leaving waits for it, as it holds a lock
            return report
        if derived_rows:
            report.add_mismatches(derived.check_beyond(session))
            report.add_mismatches(_searched(search))
    return report


def _searched(search: Future[list[derived.Mismatch]] | None) -> list[derived.Mismatch]:
    return [] if search is None else search.result()


def _shareable(engine: Engine) -> bool:
    """Whether another process can open the database (not an in-memory SQLite one)."""
    url = engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


@dataclass
class RangeAudit:
    """What :func:`audit_range` found in entries [start, end)."""

    start: int
    end: int
    #: The entries' leaf hashes, concatenated (32 bytes each).
    leaves: bytes = b""
    #: (tree size at which it shows, message): entries that do not decode, level-0 hashes that differ.
    found: list[tuple[int, str]] = field(default_factory=list)
    mismatches: list[derived.Mismatch] = field(default_factory=list)
    #: Why the rows could not be derived, if they could not.
    underivable: str | None = None
    #: Why the entries could not be read at all (missing from storage), if they could not.
    unreadable: str | None = None


def audit_range(session: Session, start: int, end: int, derived_rows: bool = True) -> RangeAudit:
    """Audit entries [start, end) on their own: decode them, hash the leaves
    and compare them with the stored level-0 hashes, and (with
    ``derived_rows``) compare the rows they derive with the stored rows.

    Needs nothing from the entries before ``start``: the hashes above level
    0 and the checkpoints are the caller's, from the leaf hashes returned.
    """
    out = RangeAudit(start, end)
    # The leaf hashes are recomputed from the decoded entries: what the
    # log serves, not what it stores. An entry that does not decode is
    # hashed as stored, so the tree above it still shows the damage.
    try:
        data, damaged = storage.read_entries_or_damage(session, start, end)
    except StorageError as e:
        out.unreadable = str(e)
        return out
    for i, why in damaged.items():
        out.found.append((i + 1, f"level 0 hash {i} cannot be recomputed: its entry does not decode ({why})"))
    # RFC 6962 section 2.1: a leaf hash is SHA-256(0x00 || entry); hashed
    # here in one loop rather than through record_hash per entry.
    sha256 = hashlib.sha256
    leaves = [sha256(b"\x00" + d).digest() for d in data]
    out.found.extend(_check_leaves(session, start, leaves, damaged))
    out.leaves = b"".join(leaves)
    if derived_rows:
        try:
            expected = derived.derive_range(start, data)
        except InvalidInput as e:
            out.underivable = str(e)
        else:
            out.mismatches = derived.compare_range(session, start, end, expected)
    return out


_LEVEL_HASHES = "SELECT idx, hash FROM hashes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx"


def _check_leaves(session: Session, start: int, leaves: list[bytes], damaged: dict[int, str]) -> list[tuple[int, str]]:
    """The level-0 hashes from ``start`` that differ from ``leaves`` (not
    those of ``damaged`` entries, reported as such). One ordered read,
    compared as one list when the range is whole, as it is when intact."""
    end = start + len(leaves)
    rows, _ = driver_sql(session, _LEVEL_HASHES, (0, start, end))
    if len(rows) == len(leaves) and [h for _, h in rows] == leaves:
        return []  # the indexes are unique and in [start, end): all of them, in order
    stored = {i: bytes(h) for i, h in rows}
    return [
        (i + 1, f"level 0 hash {i} differs from the recomputed hash")
        for i, leaf in enumerate(leaves, start)
        if stored.get(i) != leaf and i not in damaged
    ]


class _Tree:
    """The recomputed tree, fed leaf hashes a run at a time: whole tiles
    become level-1 hashes of a :class:`Frontier` one tile level up (a tile
    hash is the Merkle hash of its 256 leaves, so that frontier's own tiles
    are this tree's level 2 and up); the leaves of the partial tile wait."""

    def __init__(self) -> None:
        self._tiles = Frontier()
        self._partial = b""

    @property
    def size(self) -> int:
        return self._tiles.size * TILE_WIDTH + len(self._partial) // HASH_SIZE

    def add(self, leaves: bytes) -> list[Row]:
        """Append concatenated leaf hashes; return the new hashes above level 0 to check."""
        data = self._partial + leaves
        full = len(data) // _TILE_BYTES
        rows: list[Row] = []
        for k in range(full):
            for level, i, h in self._tiles.append(tile_hash(data[k * _TILE_BYTES : (k + 1) * _TILE_BYTES])):
                rows.append((level + 1, i, h))
        self._partial = data[full * _TILE_BYTES :]
        return rows

    def root(self) -> bytes:
        """The tree hash at :attr:`size`: the right fold of the maximal
        perfect subtrees, the whole tiles' and then the partial tile's."""
        peaks = [h for _, _, h in self._tiles.subtrees()]
        n, offset = len(self._partial) // HASH_SIZE, 0
        for bit in range(TILE_HEIGHT - 1, -1, -1):
            if n & (1 << bit):
                peaks.append(tile_hash(self._partial[offset * HASH_SIZE : (offset + (1 << bit)) * HASH_SIZE]))
                offset += 1 << bit
        return fold_peaks(peaks)


class _Checkpoints:
    """Checks each stored checkpoint as the recomputed tree reaches its size."""

    def __init__(self, session: Session, verifier: Verifier, report: AuditReport) -> None:
        self._cps = storage.iter_checkpoints(session)
        self.next = next(self._cps, None)
        self._verifier = verifier
        self._report = report

    def check(self, tree: _Tree) -> None:
        report = self._report
        while self.next is not None and self.next.size <= tree.size:
            cp = self.next
            report.checkpoints += 1
            root = tree.root() if cp.size == tree.size else None
            if root is None:
                report.add(cp.size, f"checkpoint {cp.size}: no such tree size was reached")
            elif cp.root != root:
                report.add(cp.size, f"checkpoint {cp.size}: stored root differs from the recomputed root")
            try:
                signed = open_checkpoint(cp.note, self._verifier).checkpoint
                if (signed.size, signed.root) != (cp.size, root):
                    report.add(cp.size, f"checkpoint {cp.size}: signed note does not match the recomputed tree")
            except (ProofError, InvalidInput) as e:
                report.add(cp.size, f"checkpoint {cp.size}: signed note does not verify: {e}")
            self.next = next(self._cps, None)


def _audit_entries(
    session: Session,
    verifier: Verifier,
    head: storage.Head,
    report: AuditReport,
    progress: Callable[[int, int], None] | None,
    max_problems: int,
    derived_rows: bool,
    pool: Pool | None,
    jobs: int,
) -> bool:
    """Audit the tree, the checkpoints, the head and (with ``derived_rows``)
    the rows of entries [0, head); False if it stopped at ``max_problems``."""
    cps = _Checkpoints(session, verifier, report)
    tree = _Tree()
    cps.check(tree)
    for r in _ranges(session, head.size, derived_rows, pool, jobs):
        if r.unreadable is not None:
            raise StorageError(r.unreadable)
        report.found.extend(r.found)
        _fold(session, tree, cps, r, report)
        report.entries += r.end - r.start
        if r.underivable is not None:
            report.add(r.end, f"derived rows: {r.underivable}")
        report.add_mismatches(r.mismatches)
        if progress:
            progress(r.end, head.size)
        if len(report.found) >= max_problems:
            return False
    if cps.next is not None:
        report.add(cps.next.size, f"checkpoint {cps.next.size} is beyond the head ({head.size})")
    root = tree.root() if head.size else EMPTY_ROOT
    if root != head.root:
        report.add(head.size, "the head's root differs from the recomputed root")
    extra = storage.entry_count(session) - head.size
    if extra:
        report.add(head.size, f"{extra} entries are stored beyond the head")
    return True


def _fold(session: Session, tree: _Tree, cps: _Checkpoints, r: RangeAudit, report: AuditReport) -> None:
    """Add a batch's leaves to the tree, checking each checkpoint at its size
    and every hash above level 0 the batch completes against the stored one."""
    rows: list[Row] = []
    while cps.next is not None and cps.next.size <= r.end:
        upto = (cps.next.size - r.start) * HASH_SIZE
        if upto > (tree.size - r.start) * HASH_SIZE:
            rows.extend(tree.add(r.leaves[(tree.size - r.start) * HASH_SIZE : upto]))
        cps.check(tree)
    rows.extend(tree.add(r.leaves[(tree.size - r.start) * HASH_SIZE :]))
    for level in sorted({lv for lv, _, _ in rows}):
        idxs = [i for lv, i, _ in rows if lv == level]
        stored = storage.level_hashes_by_index(session, level, min(idxs), max(idxs) + 1)
        for lv, i, h in rows:
            if lv == level and stored.get(i) != h:
                report.add((i + 1) << (TILE_HEIGHT * level), f"level {level} hash {i} differs from the recomputed hash")


def _ranges(session: Session, size: int, derived_rows: bool, pool: Pool | None, jobs: int) -> Iterator[RangeAudit]:
    """Each batch's :class:`RangeAudit`, in log order: from the workers,
    ``2 * jobs`` batches in flight, or else audited here when taken."""
    bounds = ((start, min(size, start + BATCH)) for start in range(0, size, BATCH))
    if pool is None:
        for start, end in bounds:
            yield audit_range(session, start, end, derived_rows)
        return
    pending: deque[Callable[[], RangeAudit]] = deque()
    for start, end in itertools.islice(bounds, 2 * jobs):
        pending.append(pool.apply_async(_audit_range_in_worker, (start, end, derived_rows)).get)
    while pending:
        # A batch that cannot be read raises when the audit comes to it, not
        # when a worker reads it ahead: an audit that stops at max_problems
        # before it returns its report, as in one process.
        taken = pending.popleft()
        for start, end in itertools.islice(bounds, 1):
            pending.append(pool.apply_async(_audit_range_in_worker, (start, end, derived_rows)).get)
        yield taken()


#: A worker's own engine, made after the fork (a connection is never shared across a fork).
_worker_engine: Engine | None = None


def _worker_start(url: str) -> None:
    global _worker_engine
    # What the fork copied stays out of the collector's reach: a worker
    # allocates tens of containers an entry, and each full collection would
    # otherwise walk (and un-share) the whole heap it inherited.
    gc.freeze()
    _worker_engine = make_engine(url)


def _audit_range_in_worker(start: int, end: int, derived_rows: bool) -> RangeAudit:
    if _worker_engine is None:
        raise AssertionError("audit: worker started without an engine")
    # A read transaction of its own, begun after the audit read the head:
    # it sees every entry and row below the head (they commit with it).
    with Session(_worker_engine) as s:
        return audit_range(s, start, end, derived_rows)


@contextmanager
def _pool(engine: Engine, jobs: int) -> Iterator[Pool]:
    """``jobs`` forked worker processes, each with its own connection to
    ``engine``'s database, terminated on leaving (the audit may stop early
    with batches still queued)."""
    url = engine.url.render_as_string(hide_password=False)
    pool = mp.get_context("fork").Pool(jobs, initializer=_worker_start, initargs=(url,))
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()
