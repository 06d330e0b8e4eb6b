"""One sequencer for every worker process of a server.

Each gunicorn worker verifies its requests' records in its own threads
(:func:`ledger.submit.verify_items`); the appending is done by a single
:class:`~ledger.submit.Committer` per server, in whichever worker holds an
exclusive ``flock`` on ``<rendezvous>.lock`` (the leader). The other
workers (followers) hand it their verified records over a Unix socket and
get back where each landed, the signed checkpoint and the inclusion
proofs. So every record queued anywhere on the server joins the next group
commit, the log does not take turns between per-worker committers, and a
single record waits for one transaction, not for each worker's in turn.

The kernel drops the lock when its holder dies; the next follower that
cannot reach the leader takes the lock and leads. A request in flight to a
dying leader gets 503 and Retry-After: its records may or may not have been
appended, and the retry finds them (records are idempotent by record_id).
Several servers sharing one PostgreSQL each have their own leader, and
their leaders serialise on the log's head row, with timeouts
(ledger/db.py).

The socket is in Linux's abstract namespace, named after the lock file, and
the leader serves only peers of its own user id (``SO_PEERCRED``): what a
follower sends has had its signatures checked, and only the server's own
processes may vouch for that.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import pickle
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger import errors
from ledger.errors import LedgerError, StorageError
from ledger.storage import StoredCheckpoint
from ledger.submit import Placed, VerifiedRecord

if TYPE_CHECKING:
    from ledger.log import InclusionProof, Log

logger = logging.getLogger(__name__)

#: How long a follower waits for a leader to appear before answering 503.
FIND_LEADER_SECONDS = 5.0
#: How long a follower waits for its records' append (the committer's own bound, plus margin).
APPEND_SECONDS = 70.0
_LENGTH = struct.Struct(">I")
_UCRED = struct.Struct("3i")


@dataclass(frozen=True)
class Receipt:
    """Where each record landed, the checkpoint that covers them all, and
    each record's inclusion proof in that checkpoint's tree."""

    placed: list[Placed]
    checkpoint: StoredCheckpoint
    proofs: list[InclusionProof]


class Intake:
    """Appends verified records through this server's one committer."""

    def __init__(self, log: Log, rendezvous: str | None) -> None:
        self._log = log
        self._path = rendezvous
        self._pid = 0
        self._leading = False
        self._lock_fd = -1
        self._guard = threading.Lock()
        self._local = threading.local()
        self._server: socket.socket | None = None

    def append(self, recs: list[VerifiedRecord]) -> Receipt:
        """Append ``recs`` (all or none); raise the project error that says why not."""
        deadline = time.monotonic() + FIND_LEADER_SECONDS
        while True:
            # A follower already connected to the leader asks no lock: only a
            # lost connection means the leader may be gone.
            if not self._connected() and self._lead():
                return self._append_here(recs)
            try:
                return self._append_there(recs)
            except ConnectionError:
                self._drop_connection()
                if time.monotonic() > deadline:
                    raise StorageError("this server's sequencer is restarting; retry the same request") from None
                time.sleep(0.02)

    # The leader ----------------------------------------------------------------

    def _lead(self) -> bool:
        """Whether this process leads, taking the lock if it is free."""
        if self._path is None:
            return True
        if self._pid == os.getpid() and self._leading:
            return True
        with self._guard:
            if self._pid != os.getpid():  # forked: locks and sockets are not ours
                self._pid, self._leading, self._lock_fd = os.getpid(), False, -1
            if self._leading:
                return True
            if self._lock_fd < 0:
                self._lock_fd = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(self._address())
            server.listen(256)
            self._server = server
            threading.Thread(target=self._serve, args=(server,), name="intake-leader", daemon=True).start()
            self._leading = True
            logger.info("process %d sequences this server's records", os.getpid())
            return True

    def _append_here(self, recs: list[VerifiedRecord]) -> Receipt:
        outcome = self._log.committer.submit(recs)
        proofs = self._log.inclusions([p.leaf_index for p in outcome.placed], outcome.checkpoint, outcome.tree)
        return Receipt(outcome.placed, outcome.checkpoint, proofs)

    def close(self) -> None:
        """Stop leading (if this process leads) and let another process take over."""
        with self._guard:
            if self._server is not None and self._pid == os.getpid():
                self._server.close()
            self._server = None
            if self._lock_fd >= 0 and self._pid == os.getpid():
                os.close(self._lock_fd)
            self._lock_fd, self._leading = -1, False
        self._drop_connection()

    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: this process no longer leads
                return
            _pid, uid, _gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
            if uid != os.getuid():
                logger.warning("refused a sequencer connection from user id %d", uid)
                conn.close()
                continue
            threading.Thread(target=self._handle, args=(conn,), name="intake-peer", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    recs = _receive(conn)
                except (ConnectionError, OSError):
                    return
                try:
                    answer: tuple[Any, ...] = ("ok", self._append_here(recs))
                except LedgerError as e:
                    answer = ("error", type(e).__name__, str(e), getattr(e, "errors", None))
                except Exception as e:  # a bug: the follower answers 503, this process logs it
                    logger.exception("sequencer: append for a follower failed")
                    answer = ("error", "StorageError", f"internal error while appending: {type(e).__name__}", None)
                try:
                    _send(conn, answer)
                except OSError:
                    return

    # A follower ----------------------------------------------------------------

    def _append_there(self, recs: list[VerifiedRecord]) -> Receipt:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", 0) != os.getpid():
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(APPEND_SECONDS)
            try:
                conn.connect(self._address())
            except OSError as e:
                conn.close()
                raise ConnectionError(str(e)) from None
            self._local.conn, self._local.pid = conn, os.getpid()
        try:
            _send(conn, recs)
        except OSError as e:  # the leader went away before it had the records: find the next one
            raise ConnectionError(str(e)) from None
        try:
            answer = _receive(conn)
        except TimeoutError:
            self._drop_connection()
            raise StorageError("the log did not confirm the append in time; retry the same request") from None
        except OSError as e:
            # The records may have been appended before the leader went away:
            # a retry finds them.
            self._drop_connection()
            raise StorageError("this server's sequencer went away; retry the same request") from e
        if answer[0] == "ok":
            receipt: Receipt = answer[1]
            return receipt
        _, kind, message, detail = answer
        cls = getattr(errors, kind, None)
        if not (isinstance(cls, type) and issubclass(cls, LedgerError)):
            cls = StorageError
        error = cls(message) if cls is not errors.RateLimited else cls(message, 1)
        if detail:
            error.errors = detail  # type: ignore[attr-defined]
        raise error

    def _connected(self) -> bool:
        return getattr(self._local, "conn", None) is not None and getattr(self._local, "pid", 0) == os.getpid()

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _address(self) -> bytes:
        assert self._path is not None
        digest = hashlib.sha256(os.path.realpath(f"{self._path}.lock").encode()).hexdigest()[:32]
        return b"\0moderation-ledger-intake-" + digest.encode()


def _send(conn: socket.socket, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    conn.sendall(_LENGTH.pack(len(data)) + data)


def _receive(conn: socket.socket) -> Any:
    (length,) = _LENGTH.unpack(_exactly(conn, _LENGTH.size))
    # Only processes of this server's own user reach here (SO_PEERCRED).
    return pickle.loads(_exactly(conn, length))  # noqa: S301


def _exactly(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buf += chunk
    return bytes(buf)
