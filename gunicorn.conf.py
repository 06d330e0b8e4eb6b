"""gunicorn settings, from LEDGER_* environment variables (see README.md)."""

from __future__ import annotations

import os
import sys
from typing import Protocol

# The app lives beside this file; gunicorn reads this file before it
# changes to --chdir, so the import below must not depend on the cwd.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app import SettingsError, environment_whole


def _whole(name: str, default: int, least: int) -> int:
    """A whole-number setting; a bad one stops the server with app's message."""
    try:
        return environment_whole(name, default, least)
    except SettingsError as e:
        raise SystemExit(str(e)) from None


bind = os.environ.get("LEDGER_BIND", "127.0.0.1:8000")
workers = _whole("LEDGER_WORKERS", 2, 1)
# One worker's committer appends what every worker's threads have queued
# as one transaction (ledger/intake.py): with 16 threads each, a burst of
# single-record submissions shares one commit (and one fsync) per up to 32
# records rather than per 4. gthread
# threads cost little; ledger/log.py's connection pool (POOL_SIZE) must
# stay above this.
threads = _whole("LEDGER_THREADS", 16, 1)
# gthread: restarts a worker whose main loop stops answering the master,
# not one whose thread waits on a slow client or a slow request.
timeout = _whole("LEDGER_TIMEOUT", 30, 0)
# How long a stopping worker may finish the requests it holds.
graceful_timeout = 10
# Nothing here drops slow clients: gunicorn has no timeout for reading a
# request, and each connection holds one of a worker's threads from its
# first byte until its request is read. Slow clients that fill a worker's
# threads (16) stall what that worker accepts, and workers x threads (32)
# stall the server. It must run behind the reverse proxy of
# docs/deployment.md, which reads whole requests itself and times out slow
# ones (tests/e2e/test_slow_clients.py).
limit_request_line = 8190
limit_request_fields = 100
accesslog = os.environ.get("LEDGER_ACCESS_LOG") or None
errorlog = "-"
# gunicorn 27's control socket defaults to one path per user; several
# ledgers (or test servers) on one machine would fight over it.
control_socket_disable = True


class _Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...


class _Arbiter(Protocol):
    """What on_starting uses of gunicorn's (untyped) Arbiter."""

    log: _Log


def on_starting(server: _Arbiter) -> None:
    """Initialise the log once, in the master, before any worker starts."""
    from app import create_app

    try:
        app = create_app()
    except SettingsError as e:
        raise SystemExit(str(e)) from None
    with app.app_context():
        provider = app.extensions["ledger"]
        log, created = provider.initialise()
        if created:
            server.log.info("created a new log signing key in %s (mode 0600; back it up)", provider.key_file)
        server.log.info("log %s; verifier key %s", log.origin, log.verifier.to_key())
        provider.close()
