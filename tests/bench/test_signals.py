"""bench.sigterm_interrupts: SIGTERM as Ctrl-C while a bench runs, and the
process's own handler back afterwards (the tests call the benches' main())."""

from __future__ import annotations

import os
import signal

import pytest

from bench import sigterm_interrupts


def _terminated_inside(before: object) -> None:
    with sigterm_interrupts():
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the block")


def test_sigterm_interrupts_the_block_and_the_handler_is_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        _terminated_inside(before)
    assert signal.getsignal(signal.SIGTERM) is before
