"""The benchmark suite (``make bench``): the real server under load, each
figure beside a ceiling measured on the same machine in the same run.

``python -m bench.run --help`` runs it; bench/README.md says what each
module does and docs/performance.md shows the latest results.
"""

import signal


def child_signals() -> None:
    """In a forked helper: leave Ctrl-C to the parent, which stops every
    helper in its ``finally`` (SIGTERM, then SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
