"""One read shared by the threads that ask for it at about the same time,
never older than the asking.

:class:`SharedRead` runs ``read()`` for a thread that calls :meth:`~SharedRead.get`
and hands the answer to every thread that called ``get`` *before that read
began*: a read that began earlier, still running when a thread asks, may
have missed a commit made just before the thread asked, so the thread waits
for the next one. Each caller therefore gets the answer of a read that began
after it called, exactly as if it had run its own, and at most one read
runs at a time. Under load, one statement answers the callers of a round
trip instead of one each.

For the log's head on PostgreSQL (:meth:`ledger.log.Log.head_now`), where a
statement is a round trip: a worker's request threads reading the head for
``/checkpoint`` and cached proofs share one statement, and another server's
append committed before a request arrived is still seen by that request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class SharedRead(Generic[_T]):
    """``read()``, run at most once at a time, its answer shared with the
    callers that asked before it began (see the module docstring)."""

    def __init__(self, read: Callable[[], _T]) -> None:
        self._read = read
        self._cond = threading.Condition(threading.Lock())
        self._started = 0  # reads begun, numbered from 1
        self._running = False
        self._done = 0  # the number of the newest read finished
        self._answer: tuple[_T | None, BaseException | None] = (None, None)

    def get(self) -> _T:
        """The answer of a read that began after this call; a read's
        exception is raised to every caller it was for."""
        with self._cond:
            # Reads numbered up to _started began before this call (the one
            # running among them too): only a later one will do.
            wanted = self._started + 1
            while self._done < wanted:
                if not self._running:
                    self._started += 1
                    self._running = True
                    number = self._started
                    break
                self._cond.wait()
            else:
                return self._unwrap(self._answer)
        answer: tuple[_T | None, BaseException | None]
        try:
            answer = (self._read(), None)
        except BaseException as e:
            answer = (None, e)
        with self._cond:
            self._done = number
            self._answer = answer
            self._running = False
            self._cond.notify_all()
        return self._unwrap(answer)

    @staticmethod
    def _unwrap(answer: tuple[_T | None, BaseException | None]) -> _T:
        value, error = answer
        if error is not None:
            raise error
        return value  # type: ignore[return-value]
