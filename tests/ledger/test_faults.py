"""Database faults under load: each gives a clear 503 with Retry-After (never
a half-written batch), and the server recovers without operator action.

- PostgreSQL: every server connection is terminated, repeatedly, while
  batches are being appended (pg_terminate_backend: what a PostgreSQL
  restart or a dropped connection looks like to the server; restarting the
  shared test cluster itself would disturb other test runs).
- SQLite: another process holds the write lock longer than the busy
  timeout; the disk fills up (a small tmpfs, so the test needs root, as
  CI has; elsewhere it is skipped unless LEDGER_TEST_REQUIRE_DISK_FULL is
  set).
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from keys.records import PlatformKey
from ledger.log import LogProvider
from tests.checklog import check_log
from tests.conftest import PG_URL
from tests.recordkit import decision, sign
from tests.server import gunicorn

KEY = PlatformKey(bytes([12]) * 32)
ORIGIN = "faults.example/ledger"


def _load(
    url: str, tag: str, stop: threading.Event, acked: dict[str, int], statuses: list[int], retry_after: list[str]
) -> None:
    n = 0
    with httpx.Client(base_url=url, timeout=60) as http:
        while not stop.is_set() and n < 2000:
            n += 1
            items = [sign(decision(f"{tag}-{n}-{i}"), KEY) for i in range(5)]
            r = http.post("/api/v1/records", json={"records": items})
            statuses.append(r.status_code)
            if r.status_code in (200, 201):
                for res in r.json()["records"]:
                    acked[res["record_id"]] = res["leaf_index"]
            else:
                assert r.headers["Content-Type"] == "application/problem+json"
                retry_after.append(r.headers.get("Retry-After", ""))


def _check_acked(provider: LogProvider, acked: dict[str, int]) -> None:
    log = provider.log
    check_log(log)
    from ledger.db import record_index

    with log.read() as s:
        rows = {r.record_id: r.leaf_index for r in s.execute(record_index.select()).all()}
    for record_id, index in acked.items():
        assert rows[record_id] == index


@pytest.mark.skipif(not PG_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")
def test_postgresql_connections_dropped_mid_batch(tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    app_name = f"ledger-faults-{os.getpid()}"
    url = f"{db_url}&application_name={app_name}"
    env = {"LEDGER_DATABASE_URL": url, "LEDGER_KEY_FILE": str(tmp_path / "log.key"), "LEDGER_ORIGIN": ORIGIN}
    provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        with gunicorn(env) as base:
            provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
            stop = threading.Event()
            acked: dict[str, int] = {}
            statuses: list[int] = []
            retry: list[str] = []
            threads = [
                threading.Thread(target=_load, args=(base, f"t{t}", stop, acked, statuses, retry)) for t in range(3)
            ]
            for t in threads:
                t.start()
            killed = 0
            for _ in range(8):
                time.sleep(0.3)
                with admin.connect() as conn:
                    killed += len(
                        conn.execute(
                            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                            {"a": app_name},
                        ).all()
                    )
            time.sleep(1.0)  # recovery: requests after the last fault must succeed
            ok_before = len(acked)
            time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join(60)
            assert killed > 0
            assert set(statuses) <= {201, 503}, set(statuses)
            assert all(r == "1" for r in retry)
            assert len(acked) > ok_before, "the server recovered by itself"
            assert statuses[-1] == 201
        _check_acked(provider, acked)
    finally:
        provider.close()
        admin.dispose()


def test_sqlite_locked_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    env: dict[str, Any] = {
        "LEDGER_DATABASE_URL": f"sqlite:///{db}",
        "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_SQLITE_BUSY_TIMEOUT_MS": "300",
    }
    provider = LogProvider(env["LEDGER_DATABASE_URL"], env["LEDGER_KEY_FILE"], ORIGIN)
    try:
        with gunicorn(env) as base, httpx.Client(base_url=base, timeout=30) as http:
            provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
            assert http.post("/api/v1/records", json=sign(decision("before"), KEY)).status_code == 201
            size = provider.log.latest_size()
            other = sqlite3.connect(db, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process's write lock
            try:
                r = http.post("/api/v1/records", json=sign(decision("during"), KEY))
                assert r.status_code == 503
                assert r.headers["Retry-After"] == "1"
                assert "database" in r.json()["detail"]
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert provider.log.latest_size() == size  # nothing half-written
            # The lock is gone: the same request now succeeds, with no operator action.
            r = http.post("/api/v1/records", json=sign(decision("during"), KEY))
            assert r.status_code == 201
        check_log(provider.log)
    finally:
        provider.close()


@contextmanager
def _small_disk(where: Path, size: str, owner: str | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (owned by ``owner``): a disk that really fills up."""
    where.mkdir(exist_ok=True)
    options = f"size={size}"
    if owner is not None:
        user = pwd.getpwnam(owner)
        options += f",uid={user.pw_uid},gid={user.pw_gid},mode=0700"
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError, KeyError) as e:
        if os.environ.get("LEDGER_TEST_REQUIRE_DISK_FULL"):
            raise
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {e}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = disk / "filler"
    error = None
    with filler.open("wb", buffering=0) as f:
        while error is None:
            try:
                f.write(b"\0" * 4096)
            except OSError as e:
                error = e
    if error.errno != errno.ENOSPC:
        raise error
    return filler


def _disk_full_refuses_then_recovers(env: dict[str, str], disk: Path, full_words: tuple[str, ...]) -> None:
    """A full disk refuses the batch with a clear 503 and appends nothing; once
    space is freed the same request succeeds with no restart."""
    provider = LogProvider(env["LEDGER_DATABASE_URL"], env["LEDGER_KEY_FILE"], ORIGIN)
    try:
        with gunicorn(env) as base, httpx.Client(base_url=base, timeout=60) as http:
            provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
            first = {"records": [sign(decision(f"before-{i}"), KEY) for i in range(50)]}
            assert http.post("/api/v1/records", json=first).status_code == 201
            size = provider.log.latest_size()
            filler = _fill(disk)
            batch = {"records": [sign(decision(f"full-{i}"), KEY) for i in range(200)]}
            r = http.post("/api/v1/records", json=batch)
            assert r.status_code == 503, r.text
            assert r.headers["Content-Type"] == "application/problem+json"
            assert r.headers["Retry-After"] == "1"
            assert any(w in r.json()["detail"] for w in full_words), r.json()
            assert "/" not in r.json()["detail"], "no file names for clients"
            assert provider.log.latest_size() == size  # nothing half-written
            assert http.get("/checkpoint").status_code == 200  # reads go on
            filler.unlink()  # the operator frees space; nobody restarts anything
            r = http.post("/api/v1/records", json=batch)
            assert r.status_code == 201, r.text
            assert provider.log.latest_size() == size + 200
        check_log(provider.log)
    finally:
        provider.close()


def test_sqlite_disk_full(tmp_path: Path) -> None:
    with _small_disk(tmp_path / "disk", "8m") as disk:
        env = {
            "LEDGER_DATABASE_URL": f"sqlite:///{disk / 'ledger.sqlite3'}",
            "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
            "LEDGER_ORIGIN": ORIGIN,
        }
        _disk_full_refuses_then_recovers(env, disk, ("database or disk is full",))


@pytest.mark.skipif(not PG_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")
def test_postgresql_disk_full(tmp_path: Path) -> None:
    """The log's tables in a tablespace on a small tmpfs (the server must run
    on this machine, as in CI): PostgreSQL's "No space left on device",
    told to the client as its condition, without the file names."""
    # The server (user postgres) must reach the mount point: not under pytest's 0700 tmp_path.
    mount = Path(tempfile.mkdtemp(prefix="ledger-tablespace-"))
    name = f"test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        with _small_disk(mount, "16m", owner="postgres") as disk:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE TABLESPACE \"{name}\" LOCATION '{disk}'"))
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            try:
                options = quote(f"-csearch_path={name} -cdefault_tablespace={name}")
                env = {
                    "LEDGER_DATABASE_URL": f"{PG_URL}{'&' if '?' in (PG_URL or '') else '?'}options={options}",
                    "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
                    "LEDGER_ORIGIN": ORIGIN,
                }
                _disk_full_refuses_then_recovers(env, disk, ("DiskFull (SQLSTATE 53100)",))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
                    conn.execute(text(f'DROP TABLESPACE "{name}"'))
    finally:
        admin.dispose()
        mount.rmdir()
