"""The benchmark suite (``make bench``): the real server under load, each
figure beside a ceiling measured on the same machine in the same run.

``python -m bench.run --help`` runs it; bench/README.md says what each
module does and docs/performance.md shows the latest results.
"""

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM stops the bench as Ctrl-C does
    (``KeyboardInterrupt``: servers stopped, temporary databases removed);
    a forked helper that inherited the handler just exits.

    The previous handler is put back afterwards, so a caller of ``main()``
    (the tests) keeps its own. Left behind in the test process, the handler
    was inherited by a later test's ``multiprocessing`` pool, and a worker
    survived ``Pool.terminate()``'s SIGTERM (one that arrives as a forked
    child starts can be dropped; the default action cannot): the pool's
    ``terminate`` waited for it for ever and CI hung."""
    main_pid = os.getpid()

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != main_pid:
            os._exit(128 + signum)  # a forked helper (pool, load generator): just go
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def child_signals() -> None:
    """In a forked helper: leave Ctrl-C to the parent, which stops every
    helper in its ``finally`` (SIGTERM, then SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
