"""The operator's audit: recompute the whole tree from the stored entries.

Streams the entries in index order, each decoded from its stored form
(ledger/entry_codec.py) as every reader decodes it, rebuilds every tile hash and compares it
with the stored one, recomputes the root at every checkpointed size and
checks the checkpoint's root and signature, and finally checks the head.
Then, from the same entries, it derives every row of the tables readers see
(ledger/derived.py: platforms, keys, revocations, records, the feed's query
index, published statistics) and compares each with the stored row, column
by column; on SQLite it also has FTS5 check the full-text index against its
column. Reads O(n) entries and holds O(log n) hashes and a few batches of
rows in memory.

The rows are derived in a worker process (``jobs``) while this one reads,
decodes and hashes the next batch: a record's JSON parse and index row
cost more than everything else the audit does for it. The worker is pure
(entries in, row tuples out, no database); this process compares, in log
order, batch by batch, so a report never depends on how many processes
made it. On SQLite, FTS5's check of the full-text index runs meanwhile on
a thread of its own (SQLite releases the GIL while it scans).
"""

from __future__ import annotations

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

from sqlalchemy.orm import Session

from keys.note import Verifier
from ledger import derived, storage
from ledger.db import is_sqlite
from ledger.errors import InvalidInput, ProofError, StorageError
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.frontier import Frontier, Row
from ledger.tlog.merkle import EMPTY_ROOT

BATCH = 4096
#: Below this many entries the worker process costs more than it saves.
PARALLEL_FROM = 4 * BATCH


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

    ``jobs`` worker processes derive the rows (0: this process does); by
    default one per core but one, up to four, for a log of at least
    :data:`PARALLEL_FROM` entries. The report is the same whatever ``jobs``.
    """
    report = AuditReport()
    head = storage.read_head(session)
    if head is None:
        report.add(0, "the log is not initialised")
        return report
    report.size = head.size
    if jobs is None:
        jobs = min((os.cpu_count() or 1) - 1, 4) if derived_rows and head.size >= PARALLEL_FROM else 0
    with ExitStack() as stack:
        # The worker is forked before the search thread starts: a fork copies one thread.
        pool = stack.enter_context(_pool(jobs)) if derived_rows and jobs else None
        search = None
        if derived_rows and is_sqlite(session.get_bind()):  # type: ignore[arg-type]
            threads = stack.enter_context(ThreadPoolExecutor(1, "audit-search"))
            search = threads.submit(derived.check_search, session.get_bind())  # type: ignore[arg-type]
        ahead = 1 + jobs if pool is not None else 1
        if not _audit_entries(session, verifier, head, report, progress, max_problems, derived_rows, pool, ahead):
            if search is not None:
                search.cancel()  # if it has not started; else leaving waits for it, as it holds a lock
            return report
        if derived_rows:
            report.add_mismatches(derived.check_beyond(session))
            report.add_mismatches(_searched(search))
    return report


def _searched(search: Future[list[derived.Mismatch]] | None) -> list[derived.Mismatch]:
    return [] if search is None else search.result()


class _Checkpoints:
    """Checks each stored checkpoint as the recomputed tree reaches its size."""

    def __init__(self, session: Session, verifier: Verifier, report: AuditReport) -> None:
        self._cps = storage.iter_checkpoints(session)
        self.next = next(self._cps, None)
        self._verifier = verifier
        self._report = report

    def check(self, frontier: Frontier) -> None:
        report = self._report
        while self.next is not None and self.next.size <= frontier.size:
            cp = self.next
            report.checkpoints += 1
            root = frontier.root() if cp.size == frontier.size else None
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
    depth: int,
) -> bool:
    """Audit the tree, the checkpoints, the head and (with ``derived_rows``)
    the rows of entries [0, head), reading ``depth`` batches ahead; False if
    it stopped at ``max_problems``."""
    cps = _Checkpoints(session, verifier, report)
    frontier = Frontier()
    cps.check(frontier)
    # Each worker derives a batch's rows (one batch ahead, with one worker)
    # while this process hashes the batch before, so no worker waits.
    batches = _read_batches(session, head.size)
    ahead: deque[tuple[int, int, list[bytes], dict[int, str], Callable[[], _Derived]]] = deque()

    def read_ahead() -> None:
        for start, end, data, damaged in itertools.islice(batches, depth - len(ahead)):
            derive = derived_rows and _UNREADABLE not in damaged
            ahead.append((start, end, data, damaged, _derive(pool, start, data) if derive else _nothing))

    read_ahead()
    while ahead:
        start, end, data, damaged, derived_later = ahead.popleft()
        if _UNREADABLE in damaged:
            raise StorageError(damaged[_UNREADABLE])
        read_ahead()
        for i, why in damaged.items():
            report.add(i + 1, f"level 0 hash {i} cannot be recomputed: its entry does not decode ({why})")
        _check_tree(session, frontier, cps, data, damaged, report)
        if derived_rows:
            rows = derived_later()
            if isinstance(rows, str):
                report.add(end, f"derived rows: {rows}")
            else:
                report.add_mismatches(derived.compare_range(session, start, end, rows))
        if progress:
            progress(end, head.size)
        if len(report.found) >= max_problems:
            return False
    cps.check(frontier)
    if cps.next is not None:
        report.add(cps.next.size, f"checkpoint {cps.next.size} is beyond the head ({head.size})")
    root = frontier.root() if head.size else EMPTY_ROOT
    if root != head.root:
        report.add(head.size, "the head's root differs from the recomputed root")
    extra = storage.entry_count(session) - head.size
    if extra:
        report.add(head.size, f"{extra} entries are stored beyond the head")
    return True


def _read_batches(session: Session, size: int) -> Iterator[tuple[int, int, list[bytes], dict[int, str]]]:
    """The entries in batches, each read when the previous one is taken.

    A batch that cannot be read (entries missing from storage) raises when
    the audit comes to it, not when it is read ahead: an audit that stops
    at ``max_problems`` before it returns its report, as in one process.
    """
    for start in range(0, size, BATCH):
        end = min(size, start + BATCH)
        # The leaf hashes are recomputed from the decoded entries: what the
        # log serves, not what it stores. An entry that does not decode is
        # hashed as stored, so the tree above it still shows the damage.
        try:
            data, damaged = storage.read_entries_or_damage(session, start, end)
        except StorageError as e:
            yield start, end, [], {_UNREADABLE: str(e)}
            return
        yield start, end, data, damaged


#: In a batch's ``damaged``: the batch could not be read at all (why).
_UNREADABLE = -1


def _check_tree(
    session: Session,
    frontier: Frontier,
    cps: _Checkpoints,
    data: list[bytes],
    damaged: dict[int, str],
    report: AuditReport,
) -> None:
    """Append a batch's leaves, check every hash it completes against the
    stored one, and each checkpoint it reaches."""
    sha256 = hashlib.sha256
    # RFC 6962 section 2.1: a leaf hash is SHA-256(0x00 || entry); hashed
    # here in one loop rather than through record_hash per entry.
    leaves = [sha256(b"\x00" + d).digest() for d in data]
    new_rows: list[Row] = []
    append = frontier.append
    for leaf in leaves:
        new_rows.extend(append(leaf))
        report.entries += 1
        if cps.next is not None and cps.next.size == frontier.size:
            cps.check(frontier)
    stored: dict[int, dict[int, bytes]] = {}
    for level in {lv for lv, _, _ in new_rows}:
        idxs = [i for lv, i, _ in new_rows if lv == level]
        stored[level] = storage.level_hashes_by_index(session, level, min(idxs), max(idxs) + 1)
    for level, i, h in new_rows:
        if stored[level].get(i) != h and not (level == 0 and i in damaged):
            report.add(((i + 1) << (8 * level)), f"level {level} hash {i} differs from the recomputed hash")


#: A batch's derived rows, or why they could not be derived.
_Derived = derived.TupleRows | str


def _nothing() -> _Derived:
    return {}


def _derive_or_why(start: int, data: list[bytes]) -> _Derived:
    try:
        return derived.derive_range(start, data)
    except InvalidInput as e:
        return str(e)


def _derive(pool: Pool | None, start: int, data: list[bytes]) -> Callable[[], _Derived]:
    """Start deriving a batch's rows; return how to wait for them."""
    if pool is None:
        return lambda: _derive_or_why(start, data)
    pending = pool.apply_async(_derive_or_why, (start, data))
    return pending.get


@contextmanager
def _pool(jobs: int) -> Iterator[Pool]:
    """``jobs`` forked worker processes, terminated on leaving (the audit
    may stop early with batches still queued)."""
    pool = mp.get_context("fork").Pool(jobs)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()
