"""The server's own check of its derived rows, between audits.

A serving process runs :class:`DerivedWatch` in a background thread: every
``interval`` seconds it compares the derived rows of the entries signed
since its last check with what those entries derive (ledger/derived.py),
and, since an edit made behind the log's back may touch old rows as well
as new ones, the next slice of the older entries: a rolling sweep that
covers the whole log about once every ``full_interval`` seconds, wrapping
to entry 0, its cursor kept in the state file across restarts. Each check
costs about the same, ~25 ms at 200k entries, where a check of the whole
log at once held one worker's thread for 7 s there (and for tens of
seconds at a million), at every start too (docs/performance.md, session 10).

A mismatch is logged at ERROR and reported by ``GET /healthz`` (503) until
a complete sweep that began after it was found finds every row whole: a
clean slice says nothing of the rows of other slices. A server without a
state file (its first start) checks every entry once, as new.

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
import math
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


#: The fewest older entries a check sweeps, so that a small log is swept
#: more often than every ``full_interval`` for little work (~9 ms a check
#: at the ~35 µs an entry the check measured: docs/performance.md, session 10).
MIN_SLICE = 256


def default_state_path(key_file: str | os.PathLike[str]) -> Path:
    """The state file used unless ``LEDGER_DERIVED_CHECK_STATE`` names one:
    beside the log's key file, ``<key file>.derived-check.json``."""
    return Path(f"{os.fspath(key_file)}.derived-check.json")


@dataclass(frozen=True)
class Finding:
    """What the checker found, as its state file holds it.

    ``checked_size``: the log size the check has reached: every entry below
    it was checked at least once (when new; at a first start, all at once).
    ``problem``: the first mismatch found, or None when every row matched;
    kept until a complete sweep that began after it finds every row whole.
    ``swept_to``: the sweep's cursor: the current sweep has checked entries
    [0, swept_to); 0 when the next check begins a new sweep.
    ``sweep_size``: the ``checked_size`` when the current (or, at 0, the
    last) sweep began: the entries from there on are checked as new after
    it began, so a sweep that reaches it has seen every row since it began.
    ``sweep_clean``: that sweep has found no mismatch, so far.
    ``swept_at_ms``: when a sweep last completed; None before the first.
    A state file of the earlier format (the first three fields) loads with
    the defaults: the next check begins a sweep.
    """

    checked_size: int
    checked_at_ms: int
    problem: str | None = None
    swept_to: int = 0
    sweep_size: int = 0
    sweep_clean: bool = True
    swept_at_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class DerivedWatch:
    """Checks one log's derived rows in the background; see the module docstring."""

    def __init__(
        self,
        log: Callable[[], Log],
        state: Path,
        interval: float,
        full_interval: float,
        min_slice: int = MIN_SLICE,
    ) -> None:
        self._log = log
        self._state = state
        self._interval = interval
        self._full_interval = full_interval
        self._min_slice = min_slice
        self._started_pid = 0
        self._lock_fd = -1
        self._guard = threading.Lock()
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

    def slice_size(self, sweep_size: int) -> int:
        """How many older entries a check sweeps in a sweep of ``sweep_size``:
        enough to cover them in ``full_interval / interval`` checks, and at
        least ``min_slice``. Every check sweeps them all when ``interval`` is 0
        (the watch does not run; a caller drives :meth:`check`) or at least
        ``full_interval``."""
        checks = self._full_interval / self._interval if self._interval > 0 else 1.0
        return max(self._min_slice, math.ceil(sweep_size / max(1.0, checks)))

    def check(self) -> Finding:
        """Check now: the entries signed since the last check, and the sweep's next slice of older ones."""
        before = self.finding() or Finding(0, 0)
        begins = before.swept_to == 0
        clean = True if begins else before.sweep_clean
        log = self._log()
        try:
            with log.read() as s:
                size = log.latest(s).size
                # A log smaller than the state says (another database, a
                # restore): the rows beyond its head are check_beyond's.
                checked = min(before.checked_size, size)
                sweep_size = checked if begins else min(before.sweep_size, size)
                start = min(before.swept_to, sweep_size)
                stop = min(sweep_size, start + self.slice_size(sweep_size))
                found = derived.check_entries(s, start, stop) + derived.check_entries(s, checked, size)
                found += derived.check_beyond(s)
                complete = stop >= sweep_size
        except LedgerError as e:  # nothing checked: the state stays, but for the problem
            found = [derived.Mismatch(0, "entries", (), None, "readable entries", str(e))]
            size, sweep_size, stop, complete = before.checked_size, before.sweep_size, before.swept_to, False
        now_ms = time.time_ns() // 1_000_000
        clean = clean and not found
        problem = before.problem
        if found:
            problem = str(found[0]) + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
            if problem != before.problem:
                logger.error("derived rows differ from the log entries: %s; run `flask ledger audit`", problem)
        elif problem is not None and complete and clean:
            logger.info("derived rows whole again: a complete sweep found every row equal to its entry")
            problem = None
        finding = Finding(
            checked_size=size,
            checked_at_ms=now_ms,
            problem=problem,
            swept_to=0 if complete else stop,
            sweep_size=sweep_size,
            sweep_clean=clean,
            swept_at_ms=now_ms if complete else before.swept_at_ms,
        )
        self._write(finding)
        return finding

    def _write(self, finding: Finding) -> None:
        tmp = self._state.with_name(f"{self._state.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(finding)))
        tmp.replace(self._state)
