"""ledger.shared_read: one read shared by the threads that asked before it began."""

from __future__ import annotations

import threading
import time

from ledger.shared_read import SharedRead


class _Reads:
    """A read that blocks until released and answers its own number."""

    def __init__(self) -> None:
        self.started = 0
        self.release = threading.Semaphore(0)
        self.running = threading.Event()
        self.fail = False

    def __call__(self) -> int:
        self.started += 1
        number = self.started
        self.running.set()
        self.release.acquire()
        self.running.clear()
        if self.fail:
            raise RuntimeError(f"read {number} failed")
        return number


def _ask(shared: SharedRead[int], out: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            out.append(shared.get())
        except RuntimeError as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t


def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def test_alone_each_call_is_its_own_read() -> None:
    reads = _Reads()
    shared = SharedRead(reads)
    for n in (1, 2, 3):
        reads.release.release()
        assert shared.get() == n


def test_callers_during_a_read_share_the_next_one_never_the_running_one() -> None:
    """Threads that ask while read 1 runs are answered by read 2, which
    began after they asked, all of them by that one read."""
    reads = _Reads()
    shared = SharedRead(reads)
    first: list[object] = []
    t1 = _ask(shared, first)
    _until(reads.running.is_set, "read 1 to start")
    later: list[object] = []
    waiting = [_ask(shared, later) for _ in range(5)]
    time.sleep(0.05)  # they are waiting, not reading: one read at a time
    assert reads.started == 1
    reads.release.release()
    t1.join(5)
    assert first == [1]
    _until(lambda: reads.started == 2, "read 2 to start")
    reads.release.release()
    for t in waiting:
        t.join(5)
    assert later == [2] * 5
    assert reads.started == 2


def test_a_failed_read_fails_the_callers_it_was_for_and_the_next_call_reads_again() -> None:
    reads = _Reads()
    shared = SharedRead(reads)
    first: list[object] = []
    t1 = _ask(shared, first)
    _until(reads.running.is_set, "read 1 to start")
    later: list[object] = []
    waiting = [_ask(shared, later) for _ in range(3)]
    reads.release.release()
    t1.join(5)
    _until(lambda: reads.started == 2, "read 2 to start")
    reads.fail = True
    reads.release.release()
    for t in waiting:
        t.join(5)
    assert first == [1]
    assert [str(e) for e in later] == ["read 2 failed"] * 3
    reads.fail = False
    reads.release.release()
    assert shared.get() == 3


def test_no_caller_is_answered_by_a_read_begun_before_it_asked() -> None:
    """Many threads, many rounds: each answer is a read numbered after the
    last read begun when the thread asked."""
    counter = {"begun": 0}
    lock = threading.Lock()

    def read() -> int:
        with lock:
            counter["begun"] += 1
            number = counter["begun"]
        time.sleep(0.0005)
        return number

    shared = SharedRead(read)
    bad: list[tuple[int, int]] = []

    def run() -> None:
        for _ in range(200):
            with lock:
                before = counter["begun"]
            got = shared.get()
            if got <= before:
                bad.append((before, got))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert bad == []
    assert counter["begun"] < 8 * 200  # shared: fewer reads than calls
