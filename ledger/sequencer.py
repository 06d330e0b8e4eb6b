"""The sequencer: the one place that writes to the log.

Appending a batch is one database transaction holding the entries, their
tile hashes, the new signed checkpoint and the advanced head, run on a Core
``Connection`` with fixed statements sent to the driver (no ORM ``Session``,
whose machinery cost a lone record's commit 115-135 µs more:
docs/performance.md, session 10). Writers are
serialised by the database (SQLite ``BEGIN IMMEDIATE``; PostgreSQL
``SELECT ... FOR UPDATE`` on the head row), and the head moves by
compare-and-swap, so two processes, or two machines sharing one PostgreSQL,
can never sign two different trees of the same size: the loser's
transaction rolls back before its signature leaves the process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from keys.note import Signer
from ledger import storage
from ledger.db import WRITER_STALLED_SECONDS, is_sqlite, once_more_if_lost, single_connection, writer
from ledger.errors import InvalidInput, Refused, SplitViewError, StorageError
from ledger.storage import Head, StoredCheckpoint
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.frontier import AppendedTree, Frontier, Row
from ledger.tlog.merkle import EMPTY_ROOT, record_hash
from ledger.tlog.tile import MAX_ENTRY_SIZE

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000


@dataclass(frozen=True)
class AppendResult:
    """Where a batch landed: entries [first, checkpoint.size) and the signed
    checkpoint that first covered them (the latest one if nothing was
    appended). ``logged_at_ms`` is the time written into the entries."""

    first: int
    checkpoint: StoredCheckpoint
    logged_at_ms: int = 0
    #: Proves the appended entries in ``checkpoint``'s tree without reading
    #: storage; None if nothing was appended.
    tree: AppendedTree | None = None


@dataclass
class Plan:
    """What to append, decided under the sequencing lock.

    ``entries`` are the entry bytes; ``write_index`` (optional) writes the
    rows derived from them (query indexes, registry tables) in the same
    transaction, given its connection and the index of the first entry.
    ``stored`` (optional) are the entries' stored forms
    (ledger/entry_codec.py), made by the caller outside the lock; without
    it they are made here.
    """

    entries: list[bytes]
    write_index: Callable[[Connection, int], None] | None = None
    stored: list[bytes] | None = None


#: Called under the lock with (the transaction's connection, current tree
#: size, logged_at_ms). The connection is in the append's transaction: the
#: planner must neither commit nor roll back.
Planner = Callable[[Connection, int, int], Plan]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


#: SQLSTATE classes of refusals that the same data meets again on retry:
#: data exceptions (22: a value the column cannot hold) and integrity
#: constraint violations (23). Everything else (locks, lost connections,
#: a full disk, a cancelled statement) may pass on retry.
_PERMANENT_CLASSES = ("22", "23")

#: The log's own primary keys: a violation means another writer appended
#: at the same index first (a lost compare-and-swap), not bad data.
_LOG_KEYS = ("entries", "hashes", "checkpoints", "log_head")


def _split_view(e: DBAPIError) -> bool:
    if not isinstance(e, IntegrityError):
        return False
    diag = getattr(e.orig, "diag", None)
    table = getattr(diag, "table_name", None)
    if table is not None:  # PostgreSQL names the table
        return table in _LOG_KEYS
    message = str(e.orig)  # SQLite: "UNIQUE constraint failed: entries.idx"
    return any(f"failed: {t}." in message for t in _LOG_KEYS)


#: PostgreSQL's SQLSTATE for a lock wait ended by ``lock_timeout``.
_LOCK_NOT_AVAILABLE = "55P03"


def _lock_refused(e: DBAPIError) -> bool:
    return getattr(e.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


def _permanent(e: DBAPIError) -> bool:
    """Whether the database refused the data itself, so a retry cannot pass."""
    if isinstance(e, IntegrityError | DataError):
        return True
    sqlstate = getattr(e.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _PERMANENT_CLASSES


def _refusal(e: DBAPIError) -> str:
    """What to tell a client of the database's refusal. SQLite's messages
    name the condition ("database or disk is full", "database is locked");
    PostgreSQL's may name files and relations, so the client gets its
    condition's name and SQLSTATE, and the operator's log the whole message."""
    sqlstate = getattr(e.orig, "sqlstate", None)
    if sqlstate is not None:
        return f"{type(e.orig).__name__} (SQLSTATE {sqlstate})"
    return str(e.orig)


class _WriterLock:
    """An exclusive ``flock`` on a file beside a SQLite database, held by the
    sequencer across its write transaction.

    SQLite serialises writers itself, but a writer that finds the database
    locked polls it, sleeping 1, 2, 5, ... up to 100 ms between tries, and
    meanwhile the holder's committer may take the lock again: the other
    gunicorn workers' records waited up to seconds. A process blocked in
    ``flock`` is woken as soon as the lock is released. The kernel drops the
    lock when its process dies, so a crash leaves nothing to clean up, and
    writers that do not take it (another tool) still meet SQLite's own lock
    and busy timeout. None for PostgreSQL, whose row lock on the head already
    queues waiters.
    """

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if is_sqlite(engine) else None
        in_memory = not database or database == ":memory:" or database.startswith("file:")
        self._path = None if in_memory else f"{database}-sequencer.lock"
        self._fd = -1
        self._pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = self._open()
        if fd < 0:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        # An flock belongs to the open file, which a forked child shares with
        # its parent: each process opens its own.
        if self._path is not None and self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:  # e.g. a read-only directory: SQLite's lock alone still serialises
                self._path, self._fd = None, -1
            self._pid = os.getpid()
        return self._fd


class Sequencer:
    """Appends batches of entries. One per process; safe across processes."""

    def __init__(self, engine: Engine, signer: Signer, clock: Callable[[], int] = _now_ms) -> None:
        self._engine = writer(engine)
        self._signer = signer
        self._clock = clock
        # Serialises this process's writers before they queue on the database lock.
        self._lock = threading.Lock()
        self._writer_lock = _WriterLock(engine)
        # The frontier of the head this process last wrote or verified.
        self._frontier: Frontier | None = None
        self._frontier_root = b""
        self._latest: StoredCheckpoint | None = None

    def init(self) -> StoredCheckpoint:
        """Create the empty log and sign its size-0 checkpoint, if not done yet.

        Idempotent; safe when several processes start at once.
        """
        with self._lock, self._writer_lock.held(), self._engine.connect() as connection, connection.begin():
            head = storage.read_head(connection, for_update=True)
            if head is None:
                cp = self._sign(0, EMPTY_ROOT, self._clock())
                storage.insert_head(connection, Head(0, EMPTY_ROOT))
                storage.insert_checkpoint(connection, cp)
                # Commit point: the empty log and its checkpoint become durable together.
                return cp
            latest = storage.checkpoint_at(connection, head.size)
            if latest is None:
                raise AssertionError("log head has no checkpoint")
            return latest

    def append(self, data: Sequence[bytes]) -> AppendResult:
        """Append ``data`` as consecutive entries and sign the new tree.

        All or nothing: on any error nothing is written.
        """
        if not data:
            raise InvalidInput("nothing to append")
        entries = list(data)
        return self.sequence(lambda _s, _size, _now: Plan(entries))

    def sequence(self, planner: Planner) -> AppendResult:
        """Run ``planner`` under the sequencing lock and append what it plans.

        The planner sees the log as of the lock (so checks such as "is this
        record_id new?" cannot race another writer) and may raise to abort:
        then nothing is written. Callers do their parsing and signature
        checks before calling, so the lock is held only for the planner's
        reads, the leaf hashes, the inserts and one signature.
        """
        with self._lock, self._writer_lock.held():
            try:
                return self._sequence_locked(planner)
            except DBAPIError as e:
                self._frontier = None
                if _split_view(e):
                    raise SplitViewError("another writer appended at the same index; nothing was written") from e
                logger.warning("the database refused an append: %s", e.orig)
                if _lock_refused(e):
                    self._end_stalled_writers()
                if _permanent(e):
                    raise Refused(f"the database refused the data: {_refusal(e)}; nothing was appended") from e
                raise StorageError(f"the database refused the append: {_refusal(e)}") from e

    def _end_stalled_writers(self) -> None:
        """After ``lock_timeout``: end another server's sequencer transaction
        that holds the head lock while stalled on its client, which no
        timeout of PostgreSQL's ends (``ledger.storage.end_stalled_writers``).
        This append still fails with 503; the client's retry appends."""
        try:
            with single_connection(self._engine) as conn:
                ended = storage.end_stalled_writers(conn)
        except DBAPIError as e:  # e.g. a role not allowed to signal the others' backends
            logger.warning("could not end stalled writers holding the log's head lock: %s", e.orig)
            return
        if ended:
            logger.warning(
                "ended PostgreSQL backends %s: sequencer transactions stalled on their clients "
                "for over %d s while holding the log's head lock",
                ", ".join(map(str, ended)),
                WRITER_STALLED_SECONDS,
            )

    @contextmanager
    def _write_transaction(self) -> Iterator[tuple[Connection, Head | None]]:
        """The append's transaction, begun: the writer's settings applied and
        the head read (on PostgreSQL, locked).

        Nothing is written before the head is read, so a pooled connection
        found dead there (its server end gone since it was last used: a
        restart, a backend ended, a proxy's idle timeout) is replaced once
        and the transaction begun again, as the pool's pre-ping replaced it
        before (ledger/db.py): the append's outcome is the same as with a
        live connection. A connection lost after that is not retried here:
        the append fails with :class:`StorageError`, and if it was the
        COMMIT that failed, the client's retry finds the batch or appends
        it (records are idempotent by record_id).
        """

        def begin() -> tuple[Connection, RootTransaction, Head | None]:
            connection = self._engine.connect()
            try:
                transaction = connection.begin()
                return connection, transaction, storage.begin_append(connection)
            except BaseException:
                connection.close()  # rolls back what was begun; an invalidated connection is discarded
                raise

        # A Core connection, not a Session: the Session's state machine,
        # its transaction's begin and commit and its connection lookups cost
        # 115-135 µs a transaction more (docs/performance.md, session 10),
        # and the append's statements go to the driver anyway
        # (ledger.db.driver_sql).
        # Leaving the block commits the transaction, or rolls it back if the
        # block raised, then returns the connection to the pool.
        connection, transaction, head = once_more_if_lost(begin)
        with connection, transaction:
            yield connection, head

    def _sequence_locked(self, planner: Planner) -> AppendResult:
        with self._write_transaction() as (connection, head):
            if head is None:
                raise StorageError("the log is not initialised: run `flask --app app ledger init`")
            latest = self._latest_checkpoint(connection, head)
            # logged_at never goes backwards, even if this machine's clock is
            # behind the one that signed the previous checkpoint.
            now = max(self._clock(), latest.created_at_ms)
            plan = planner(connection, head.size, now)
            if not plan.entries:
                return AppendResult(head.size, latest, now)
            _check_batch(plan.entries)
            frontier = self._frontier_for(connection, head)
            prior = frontier.copy()
            rows: list[Row] = []
            leaves = [record_hash(d) for d in plan.entries]
            for leaf in leaves:
                rows.extend(frontier.append(leaf))
            new = Head(frontier.size, frontier.root())
            cp = self._sign(new.size, new.root, now)
            storage.insert_entries(connection, head.size, plan.entries, plan.stored)
            storage.insert_hashes(connection, rows)
            if plan.write_index is not None:
                plan.write_index(connection, head.size)
            if not storage.sign_head(connection, head, new, cp):
                raise SplitViewError("the log head moved during the append; nothing was written")
            # Commit point: entries, hashes, index rows, checkpoint and head
            # become durable together when this block exits. If the process
            # dies before, none of it exists and the signature never left
            # memory; after, the batch is in the log even if the caller never
            # hears back, and a retry finds it (records are idempotent by
            # record_id).
        self._frontier, self._frontier_root = frontier, new.root
        self._latest = cp
        return AppendResult(head.size, cp, now, AppendedTree(prior, leaves))

    def _latest_checkpoint(self, connection: Connection, head: Head) -> StoredCheckpoint:
        cached = self._latest
        if cached is not None and cached.size == head.size and cached.root == head.root:
            return cached
        cp = storage.checkpoint_at(connection, head.size)
        if cp is None or cp.root != head.root:
            raise StorageError(f"the log head (size {head.size}) has no matching checkpoint: run the audit")
        self._latest = cp
        return cp

    def _frontier_for(self, connection: Connection, head: Head) -> Frontier:
        """Return a copy of the frontier of ``head``, from cache or storage.

        A frontier loaded from storage is checked against the head's root
        first: the log never signs a tree on top of hashes it cannot vouch for.
        """
        cached = self._frontier
        if cached is not None and cached.size == head.size and self._frontier_root == head.root:
            return cached.copy()
        frontier = storage.load_frontier(connection, head.size)
        if frontier.root() != head.root:
            raise StorageError(
                f"stored hashes do not reproduce the head's root at size {head.size}; "
                "refusing to sign: run `flask --app app ledger audit`"
            )
        self._frontier, self._frontier_root = frontier, head.root
        return frontier.copy()

    def _sign(self, size: int, root: bytes, now_ms: int) -> StoredCheckpoint:
        note = Checkpoint(self._signer.name, size, root).sign(self._signer)
        return StoredCheckpoint(size, root, note, now_ms)


def _check_batch(entries: Sequence[bytes]) -> None:
    if len(entries) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} entries")
    for i, d in enumerate(entries):
        if len(d) > MAX_ENTRY_SIZE:
            raise InvalidInput(f"entry {i} is {len(d)} bytes; the limit is {MAX_ENTRY_SIZE}")
