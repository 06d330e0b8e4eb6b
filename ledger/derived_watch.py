"""The server's own check of its derived rows, between audits.

A serving process runs :class:`DerivedWatch` in a background thread: every
``interval`` seconds it compares the derived rows of the entries signed
since its last check with what those entries derive (ledger/derived.py),
and every ``full_interval`` seconds, and at start, all of them, since an
edit made behind the log's back may touch old rows as well as new ones.
A mismatch is logged at ERROR and reported by ``GET /healthz`` (503) until
a full check finds every row whole again.

Only one process per state file does the work: the watcher that holds an
exclusive ``flock`` on ``<state>.lock`` checks and writes its finding to
``<state>`` (a temporary file, then a rename); the others read that file
when asked, and take over the lock if its holder dies (the kernel drops
it). Several servers sharing one PostgreSQL each check with their own
state file. The state file says what this server found; it vouches for
nothing to anyone else, who runs ``ledger audit`` or ``client evenness``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger import derived
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.log import Log

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """What the last check found: ``problem`` is None when every row checked matched."""

    checked_size: int
    checked_at_ms: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class DerivedWatch:
    """Checks one log's derived rows in the background; see the module docstring."""

    def __init__(self, log: Callable[[], Log], state: Path, interval: float, full_interval: float) -> None:
        self._log = log
        self._state = state
        self._interval = interval
        self._full_interval = full_interval
        self._started_pid = 0
        self._lock_fd = -1
        self._guard = threading.Lock()
        self._checked: int | None = None
        self._last_full = 0.0
        self._cached: tuple[tuple[int, int, int], Finding | None] = ((0, 0, 0), None)

    def start(self) -> None:
        """Start the checking thread in this process, once (cheap to call per request)."""
        if self._started_pid == os.getpid() or self._interval <= 0:
            return
        with self._guard:
            if self._started_pid == os.getpid():
                return
            self._started_pid = os.getpid()
            threading.Thread(target=self._loop, name="derived-watch", daemon=True).start()

    def finding(self) -> Finding | None:
        """The latest finding of this server's checker, or None before its first check."""
        try:
            st = self._state.stat()
        except FileNotFoundError:
            return None
        # Each write renames a new file into place: a new inode, even when
        # two writes fall within one tick of the file system's clock.
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        seen, cached = self._cached
        if version != seen:
            try:
                cached = Finding(**json.loads(self._state.read_text()))
            except (OSError, ValueError, TypeError):
                return cached
            self._cached = (version, cached)
        return cached

    def _loop(self) -> None:
        while True:
            try:
                if self._elected():
                    self.check()
            except Exception:  # the thread must outlive any one failed check
                logger.exception("derived-row check failed to run")
            time.sleep(self._interval)

    def _elected(self) -> bool:
        if self._lock_fd < 0:
            self._lock_fd = os.open(f"{self._state}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def check(self) -> Finding:
        """Check now: everything if a full check is due, else what was signed since the last."""
        full = self._checked is None or time.monotonic() - self._last_full >= self._full_interval
        start = 0 if full or self._checked is None else self._checked
        log = self._log()
        try:
            with log.read() as s:
                size = log.latest(s).size
                found = derived.check_all(s, size, start=start)
        except LedgerError as e:
            found = [derived.Mismatch(0, "entries", (), None, "readable entries", str(e))]
            size = self._checked or 0
        previous = self.finding()
        if found:
            problem = str(found[0]) + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
            finding = Finding(size, time.time_ns() // 1_000_000, problem)
            if previous is None or previous.problem != problem:
                logger.error("derived rows differ from the log entries: %s; run `flask ledger audit`", problem)
        elif previous is not None and not previous.ok and not full:
            # A mismatch stays reported until a full check finds every row whole.
            finding = Finding(size, time.time_ns() // 1_000_000, previous.problem)
        else:
            finding = Finding(size, time.time_ns() // 1_000_000)
        if full:
            self._last_full = time.monotonic()
        self._checked = size
        self._write(finding)
        return finding

    def _write(self, finding: Finding) -> None:
        tmp = self._state.with_name(f"{self._state.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(finding)))
        tmp.replace(self._state)
