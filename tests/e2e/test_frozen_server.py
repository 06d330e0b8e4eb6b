"""Two servers on one PostgreSQL: freezing one while it holds the log's head
lock stalls the other for seconds, not for as long as the freeze (issue 12).

Server A takes batches continuously; the test stops all of A's processes
(SIGSTOP, as a machine that loses its network would) at a moment when one
of A's transactions holds the row lock on ``log_head`` (seen in
``pg_locks``), and then server B must append within 10 s. PostgreSQL ends
A's transaction once it has been idle for 5 s (the sequencer's
``idle_in_transaction_session_timeout``), and B's waits give up after 3 s
(``lock_timeout``) with 503 and Retry-After, which the client honours.

A writer frozen in the middle of its ``COPY`` is not idle, and PostgreSQL
ends it on no timeout of its own; there B's sequencer, refused the lock,
ends the stalled transaction (``ledger.storage.end_stalled_writers``) once
its statement has run for 6 s. The second case freezes A exactly there.

Afterwards every record either server acknowledged is in the log, once,
and the log is whole (no fork: the head moves by compare-and-swap).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from keys.records import PlatformKey
from ledger.db import record_index
from ledger.log import LogProvider
from tests.checklog import check_log
from tests.conftest import ORIGIN, PG_URL
from tests.recordkit import decision, sign
from tests.server import ServerURL, gunicorn

KEY = PlatformKey(b"\x44" * 32)
PLATFORM = "example-social"

pytestmark = pytest.mark.skipif(not PG_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")


@pytest.fixture
def pg_url(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        pytest.skip("several servers share a database on PostgreSQL only")
    return db_url


def _count(db_url: str, sql: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _holders(db_url: str) -> int:
    """Transactions holding the row lock of this schema's log head (FOR UPDATE takes RowShareLock)."""
    return _count(
        db_url,
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'log_head' AND c.relnamespace = current_schema()::regnamespace "
        "AND l.mode = 'RowShareLock' AND l.granted",
    )


def _copying(db_url: str) -> int:
    """Sequencer transactions holding the head lock that are in the middle of
    a ``COPY``, waiting for their client's next rows."""
    return _count(
        db_url,
        "SELECT count(*) FROM pg_stat_activity a WHERE a.state = 'active' "
        "AND a.wait_event = 'ClientRead' AND a.query LIKE 'COPY %' "
        "AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted "
        "AND l.locktype = 'relation' AND l.relation = 'log_head'::regclass AND l.mode = 'RowShareLock')",
    )


#: Where A is frozen: anywhere it holds the head lock, or in a COPY.
MOMENTS = {"holding the head lock": _holders, "in a COPY": _copying}


def _freeze(server: ServerURL, sig: signal.Signals) -> None:
    for pid in server.processes():
        os.kill(pid, sig)


class Load:
    """Batches posted to one server until stopped; remembers what was acknowledged."""

    def __init__(self, url: str, prefix: str, size: int = 200) -> None:
        self.url, self.prefix, self.size = url, prefix, size
        self.acked: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                batch = [sign(decision(f"{self.prefix}-{n + i}"), KEY) for i in range(self.size)]
                n += self.size
                try:
                    r = http.post("/api/v1/records", json={"records": batch})
                except httpx.HTTPError:
                    continue
                if r.status_code == 201:
                    for rec in r.json()["records"]:
                        self.acked[rec["record_id"]] = rec["leaf_index"]


def _append_within(url: str, record_id: str, seconds: float) -> float:
    """Post one record to ``url`` until it is appended; return how long it took."""
    start = time.monotonic()
    with httpx.Client(base_url=url, timeout=seconds) as http:
        while True:
            r = http.post("/api/v1/records", json=sign(decision(record_id), KEY))
            if r.status_code == 201:
                return time.monotonic() - start
            assert r.status_code == 503, r.text
            assert time.monotonic() - start < seconds, "the other server could not append in time"
            time.sleep(float(r.headers.get("Retry-After", "1")) / 4)


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_frozen_server_stalls_the_other_for_seconds(pg_url: str, tmp_path: Path, moment: str) -> None:
    key_file = str(tmp_path / "log.key")
    env = {"LEDGER_DATABASE_URL": pg_url, "LEDGER_KEY_FILE": key_file, "LEDGER_ORIGIN": ORIGIN}
    # Server B, as on another machine: its own copy of the key, so its own
    # intake lock and derived-row check beside it.
    other = tmp_path / "b"
    other.mkdir()
    with gunicorn(env) as a:
        shutil.copy2(key_file, other / "log.key")
        b_env = {**env, "LEDGER_KEY_FILE": str(other / "log.key")}
        with gunicorn(b_env) as b:
            _freeze_and_append(a, b, pg_url, key_file, moment)


def _freeze_and_append(a: ServerURL, b: ServerURL, pg_url: str, key_file: str, moment: str) -> None:
    provider = LogProvider(pg_url, key_file, ORIGIN)
    try:
        provider.log.registry.add_platform(PLATFORM, "Example Social", KEY.public_key)
        took = _freeze_while_locked(a, b, pg_url, moment)
        print(f"frozen {moment}: the other server appended after {took:.1f} s")
        assert took < 10
        log = provider.log
        with log.read() as s:
            logged = {r.record_id: r.leaf_index for r in s.execute(record_index.select()).all()}
        assert "b-0" in logged
        check_log(log)
    finally:
        provider.close()


def _freeze_while_locked(a: ServerURL, b: ServerURL, pg_url: str, moment: str) -> float:
    """Freeze A at ``moment`` (holding the head lock); return how long B took
    to append. Every record A acknowledged must be in the log afterwards."""
    caught = MOMENTS[moment]
    # Batches of 1,000 when aiming at a COPY: its rows take longer to send.
    load = Load(a, "a", 200 if caught is _holders else 1000)
    frozen = False
    try:
        # Catch A at that moment: holding the head lock it does most of the
        # time under load; in a COPY, a few percent of the tries.
        for _ in range(600):
            time.sleep(0.05)
            _freeze(a, signal.SIGSTOP)
            if caught(pg_url):
                frozen = True
                break
            _freeze(a, signal.SIGCONT)
        assert frozen, f"server A was never frozen {moment}"
        took = _append_within(b, "b-0", 30)
        assert _holders(pg_url) == 0  # PostgreSQL ended the frozen transaction
    finally:
        _freeze(a, signal.SIGCONT)
        load.stop.set()
        load.thread.join(90)
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            logged = dict(conn.execute(text("SELECT record_id, leaf_index FROM record_index")).all())
    finally:
        engine.dispose()
    for record_id, index in load.acked.items():
        assert logged.get(record_id) == index, record_id  # nothing acknowledged was lost
    return took
