"""Slow clients, loopback only and bounded in time: gunicorn alone gives
each connection one of its threads while it reads the request, with no
timeout, so 40 stalled connections stop it answering; behind the nginx
configuration documented in docs/deployment.md (read from the document
itself), the same 40 stall nginx instead and normal requests answer at
once. Stalled here means headers sent a byte at a time (slowloris) or a
body trickled a byte at a time; a connection that sends nothing at all
gunicorn 27 parks by itself after 5 s, so it is not the threat.

The nginx test needs Debian's nginx (``apt-get install nginx``); it is
skipped without it, unless ``LEDGER_TEST_REQUIRE_NGINX=1`` (CI), which
makes that a failure.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from keys.records import PlatformKey
from ledger.log import LogProvider
from tests import server
from tests.recordkit import decision, sign
from tests.server import documented_nginx_conf, free_port, gunicorn, nginx

pytestmark = pytest.mark.slow

ORIGIN = "slow.example/ledger"
KEY = PlatformKey(bytes([22]) * 32)
STALLED = 40
#: A byte every TRICKLE seconds: never silent long enough for a read timeout.
TRICKLE = 0.5
#: What "promptly" means for a request made while the stalled connections wait.
PROMPT = 2.0
PROBES = 10
#: client_header_timeout in the documented configuration, and the slack given to nginx's timer.
HEADER_TIMEOUT = 10.0
SLACK = 3.0


class Stalled:
    """``STALLED`` connections to ``port``, half sending a request's headers
    a byte at a time, half a POST body; each notes when the server answered
    or closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.closed_at: dict[int, float] = {}  # connection -> seconds after start the server ended it
        self._ready = threading.Semaphore(0)
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(STALLED)]

    def kind(self, i: int) -> str:
        return "headers" if i % 2 == 0 else "body"

    def __enter__(self) -> Stalled:
        for t in self._threads:
            t.start()
        for _ in self._threads:
            if not self._ready.acquire(timeout=30):
                raise AssertionError("the stalled connections did not all connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self, i: int) -> None:
        if self.kind(i) == "headers":
            head, drip = b"", b"GET /checkpoint HTTP/1.1\r\nHost: ledger.test\r\n" + b"X-Slow: loris\r\n" * 500
        else:
            head = b"POST /api/v1/records HTTP/1.1\r\nHost: ledger.test\r\nContent-Type: application/json\r\n"
            head, drip = head + b"Content-Length: 100000\r\n\r\n", b" " * 100_000
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            try:
                sock.sendall(head + drip[:1])
            finally:
                self._ready.release()
            for b in drip[1:]:
                readable, _, _ = select.select([sock], [], [], TRICKLE)
                if self.stop.is_set():
                    return
                try:
                    if readable:
                        sock.recv(4096)  # an answer (408) or the end: either way the server let go
                        break
                    sock.sendall(bytes([b]))
                except OSError:
                    break
            self.closed_at[i] = time.monotonic() - self.started


def _probe(url: str) -> float | None:
    """Seconds a GET /checkpoint took to answer 200, or None if it did not
    answer within PROMPT. Any other answer fails the test."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url + "/checkpoint", timeout=PROMPT) as r:
            r.read()
            assert r.status == 200
    except urllib.error.HTTPError:
        raise
    except (TimeoutError, urllib.error.URLError):
        return None
    return time.monotonic() - t0


def _probes(url: str) -> list[float | None]:
    out = []
    for _ in range(PROBES):
        out.append(_probe(url))
        time.sleep(0.2)
    return out


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port
    return port


def _submit(url: str, record_id: str) -> int:
    req = urllib.request.Request(
        url + "/api/v1/records",
        data=json.dumps(sign(decision(record_id), KEY)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=PROMPT) as r:
        return int(r.status)


@contextmanager
def _served(tmp: Path, workers: int) -> Iterator[str]:
    db_url, key_file = f"sqlite:///{tmp / 'ledger.sqlite3'}", tmp / "keys" / "log.key"
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(key_file), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env, workers=workers) as url:
        provider = LogProvider(db_url, str(key_file), ORIGIN)
        provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
        provider.close()
        yield url


@pytest.fixture
def require_nginx() -> None:
    server.require_nginx()


def test_gunicorn_alone_stops_answering(tmp_path: Path) -> None:
    """Why the proxy is required: gunicorn has no timeout for reading a
    request, so the 40 stalled connections hold all 16 threads of a worker
    and requests queue behind them. One worker makes that certain; with
    the default two, a probe answers whenever it lands on a worker that
    happened to accept fewer than 16 of them (3 to 6 probes of 10 went
    unanswered in three runs)."""
    with _served(tmp_path, workers=1) as url:
        assert _probe(url) is not None
        with Stalled(_port(url)) as stalled:
            time.sleep(1)  # the worker's threads pick the stalled connections up
            answered = [_probe(url) for _ in range(3)]
            assert not stalled.closed_at, "gunicorn dropped a stalled connection"
        assert answered == [None] * 3, f"gunicorn answered while stalled: {answered}"
        assert _probe(url) is not None


def test_documented_nginx_holds_stalled_connections(require_nginx: None, tmp_path: Path) -> None:
    """The deployment as documented (2 workers x 16 threads) behind nginx."""
    listen = free_port()
    with (
        _served(tmp_path, workers=2) as upstream,
        nginx(documented_nginx_conf(_port(upstream), listen), tmp_path / "nginx", listen) as url,
        Stalled(listen) as stalled,
    ):
        time.sleep(1)
        answered = _probes(url)
        assert None not in answered, f"a probe through nginx took over {PROMPT} s: {answered}"
        assert _submit(url, "d-slow-1") == 201
        # client_header_timeout ends the slowloris connections, as the limits table says.
        deadline = stalled.started + HEADER_TIMEOUT + SLACK
        while time.monotonic() < deadline and len(stalled.closed_at) < STALLED // 2:
            time.sleep(0.2)
        headers_closed = {i: t for i, t in stalled.closed_at.items() if stalled.kind(i) == "headers"}
        assert len(headers_closed) == STALLED // 2, stalled.closed_at
        assert all(HEADER_TIMEOUT - 1 <= t <= HEADER_TIMEOUT + SLACK for t in headers_closed.values()), headers_closed
        # A body still trickling is held by nginx (client_body_timeout is
        # between two reads), costing it a connection and gunicorn nothing.
        assert not [i for i in stalled.closed_at if stalled.kind(i) == "body"], stalled.closed_at
        assert _probe(url) is not None
