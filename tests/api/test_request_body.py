"""Bodies over ``LEDGER_MAX_CONTENT_LENGTH`` are refused with 413 however
they are framed, through real gunicorn workers: gunicorn decodes chunked
transfer coding itself, so only a real server shows what the app is given.
A body of exactly the limit is accepted either way."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app import DEFAULTS
from keys.records import PlatformKey
from ledger.log import LogProvider
from tests.recordkit import decision, sign
from tests.server import gunicorn

pytestmark = pytest.mark.slow

ORIGIN = "bodies.example/ledger"
KEY = PlatformKey(bytes([21]) * 32)
LIMIT = int(DEFAULTS["MAX_CONTENT_LENGTH"])
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LogProvider]]:
    """One server for the module (SQLite: the limit is enforced before any
    storage is touched; the log is read back only to see nothing changed)."""
    tmp: Path = tmp_path_factory.mktemp("bodies")
    db_url, key_file = f"sqlite:///{tmp / 'ledger.sqlite3'}", tmp / "keys" / "log.key"
    with gunicorn({"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(key_file), "LEDGER_ORIGIN": ORIGIN}) as url:
        provider = LogProvider(db_url, str(key_file), ORIGIN)
        provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
        yield url, provider
        provider.close()


def _padded(record_id: str, size: int) -> bytes:
    """A valid signed submission followed by JSON whitespace, ``size`` bytes
    in all: every prefix that still holds the item parses."""
    body = json.dumps(sign(decision(record_id), KEY)).encode()
    return body + b" " * (size - len(body))


def _post(url: str, body: bytes, chunked: bool) -> tuple[int, dict[str, object]]:
    """POST ``body`` framed by Content-Length or by chunked transfer coding,
    over a raw socket: the server may answer 413 and stop reading before the
    body is sent, so a thread sends while this one reads the answer."""
    head = b"POST /api/v1/records HTTP/1.1\r\nHost: ledger.test\r\nContent-Type: application/json\r\n"
    if chunked:
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in _chunks(body)) + b"0\r\n\r\n"
    else:
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        framed = body
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server stopped reading after its answer
                sock.sendall(head + framed)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            return resp.status, json.loads(resp.read())
        finally:
            with contextlib.suppress(OSError):  # already closed by the server
                sock.shutdown(socket.SHUT_RDWR)
            sender.join(30)


def _chunks(body: bytes) -> list[bytes]:
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("over", [1, CHUNK, LIMIT])
def test_over_the_limit_is_413(served: tuple[str, LogProvider], chunked: bool, over: int) -> None:
    url, provider = served
    size = provider.log.latest_size()
    status, problem = _post(url, _padded(f"d-over-{over}-{chunked}", LIMIT + over), chunked)
    assert status == 413, problem
    assert problem["detail"] == f"the request body exceeds the limit of {LIMIT} bytes"
    assert provider.log.latest_size() == size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_exactly_the_limit_is_accepted(served: tuple[str, LogProvider], chunked: bool) -> None:
    url, provider = served
    size = provider.log.latest_size()
    status, answer = _post(url, _padded(f"d-exact-{chunked}", LIMIT), chunked)
    assert status == 201, answer
    assert provider.log.latest_size() == size + 1
