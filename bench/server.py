"""The system under test: a fresh database and the real gunicorn serving it.

Everything here cleans up after itself in ``finally``, Ctrl-C included:
gunicorn is stopped, and a PostgreSQL schema made for the run is dropped
(the log's triggers forbid DELETE and TRUNCATE, so a schema is the unit of
cleanup, as in tests/conftest.py). The server binds 127.0.0.1 only.

On PostgreSQL the server's connections carry an ``application_name`` of
their own, so that :meth:`Server.cpu_probe` can find its backends in
``pg_stat_activity`` and count their CPU as the server's (bench/cpu.py).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, text

from bench import cpu
from keys.keyfile import read_signer

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "bench.localhost/ledger"


@dataclass
class Database:
    """A database of one run: ``kind`` is "sqlite" or "postgresql"."""

    kind: str
    url: str
    path: Path | None = None  # the SQLite file
    schema: str | None = None  # the PostgreSQL schema
    admin_url: str | None = None

    def disk_bytes(self) -> int:
        """Bytes the log's tables take: the SQLite file and its WAL after a
        truncating checkpoint; PostgreSQL tables with indexes and TOAST."""
        if self.kind == "sqlite":
            assert self.path is not None
            eng = create_engine(f"sqlite:///{self.path}")
            try:
                with eng.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                eng.dispose()
            wal = self.path.with_name(self.path.name + "-wal")
            return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        return int(self._pg_scalar(_PG_SIZE, {"schema": self.schema}))

    def table_bytes(self) -> dict[str, int]:
        """Bytes per table, its indexes included (FTS5's shadow tables under
        their virtual table's name)."""
        eng = create_engine(self.url)
        try:
            with eng.connect() as conn:
                if self.kind == "sqlite":
                    rows = conn.exec_driver_sql(_SQLITE_TABLES).all()
                else:
                    rows = conn.execute(text(_PG_TABLES), {"schema": self.schema}).all()
        finally:
            eng.dispose()
        out: dict[str, int] = {}
        for name, size in rows:
            key = "record_search (FTS5)" if name.startswith("record_search") else name
            out[key] = out.get(key, 0) + int(size)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def analyze(self) -> None:
        """PostgreSQL: refresh the planner's statistics of the schema's tables, as
        autovacuum would within a minute or so of a bulk load. (SQLite has no
        automatic ANALYZE, and the server runs none, so neither does this.)"""
        if self.kind != "postgresql":
            return
        eng = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as conn:
                tables = conn.execute(text(_PG_TABLES), {"schema": self.schema}).scalars().all()
                for table in tables:
                    conn.execute(text(f'ANALYZE "{self.schema}"."{table}"'))
        finally:
            eng.dispose()

    def version(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        return f"PostgreSQL {self._pg_scalar('SHOW server_version', {})}"

    def _pg_scalar(self, sql: str, params: dict[str, object]) -> Any:
        eng = create_engine(self.url)
        try:
            with eng.connect() as conn:
                return conn.execute(text(sql), params).scalar_one()
        finally:
            eng.dispose()


_PG_SIZE = """
SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relkind = 'r'
"""


_SQLITE_TABLES = """
SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name
"""
_PG_TABLES = """
SELECT c.relname, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relkind = 'r'
"""


@contextmanager
def database(kind: str, tmp: Path, pg_url: str | None) -> Iterator[Database]:
    """A new, empty database; a PostgreSQL schema is dropped afterwards."""
    if kind == "sqlite":
        path = tmp / "ledger.sqlite3"
        yield Database(kind, f"sqlite:///{path}", path=path)
        return
    if not pg_url:
        raise RuntimeError("no PostgreSQL URL: set BENCH_POSTGRES_URL")
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in pg_url else "?"
        url = f"{pg_url}{sep}options={quote(f'-csearch_path={schema}')}"
        try:
            yield Database(kind, url, schema=schema, admin_url=pg_url)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@dataclass
class Server:
    url: str
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    key_file: Path
    log_file: Path
    root: Path = ROOT  # the checkout whose code it serves (and whose flask CLI runs)
    cli_seconds: list[float] = field(default_factory=list)
    app_name: str | None = None  # the application_name of its PostgreSQL connections
    admin: Engine | None = None  # reads pg_stat_activity for cpu_probe

    def cpu_probe(self) -> cpu.Counters:
        """Cumulative CPU seconds of gunicorn (master, workers, all below) and,
        on PostgreSQL, of each backend serving its connections (bench/cpu.py)."""
        out = {cpu.SERVER: cpu.tree_cpu(self.proc.pid)}
        if self.admin is not None:
            with self.admin.connect() as conn:
                pids = conn.execute(_PG_BACKENDS, {"name": self.app_name}).scalars().all()
            out.update(cpu.pids_cpu(cpu.DATABASE, pids))
        return out

    @property
    def vkey(self) -> str:
        """The log's verifier key, read from its key file (out of band)."""
        return read_signer(self.key_file).verifier.to_key()

    def flask(self, *args: str, timeout: float = 600) -> str:
        """Run ``flask --app app ARGS`` against this server's database."""
        res = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=self.root,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{res.stderr[-2000:]}")
        return res.stdout

    def worker_pids(self) -> list[int]:
        return sorted(pid for pid, ppid in _processes() if ppid == self.proc.pid)

    def peak_memory_kib(self) -> dict[str, int]:
        """VmHWM (peak resident set) of the master and of each live worker."""
        out = {"master": _vm_hwm(self.proc.pid)}
        for i, pid in enumerate(self.worker_pids()):
            out[f"worker {i + 1}"] = _vm_hwm(pid)
        return out


_PG_BACKENDS = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")


def _processes() -> Iterator[tuple[int, int]]:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        yield int(entry), int(stat.rpartition(")")[2].split()[1])


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(db: Database, tmp: Path, workers: int, threads: int, root: Path = ROOT) -> Iterator[Server]:
    """Start ``gunicorn -c gunicorn.conf.py wsgi:app`` on 127.0.0.1; stop it after. ``root``:
    the checkout whose code it serves (another commit's worktree, to compare in one run)."""
    port = free_port()
    key_file = tmp / "log.key"
    url, app_name, admin = db.url, None, None
    if db.kind == "postgresql":
        app_name = f"ledger-bench-{port}"
        url += f"&application_name={app_name}"  # db.url already has a query (options)
        admin = create_engine(db.admin_url or db.url, isolation_level="AUTOCOMMIT", pool_size=1)
    env = {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_KEY_FILE": str(key_file),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_BIND": f"127.0.0.1:{port}",
        "LEDGER_WORKERS": str(workers),
        "LEDGER_THREADS": str(threads),
        # The benchmark measures the server, not the per-platform rate limit.
        "LEDGER_RATE_LIMIT_RECORDS_PER_SECOND": "0",
    }
    log_file = tmp / f"gunicorn-{db.kind}.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=root,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        f"http://127.0.0.1:{port}", port, env, proc, key_file, log_file, root=root, app_name=app_name, admin=admin
    )
    try:
        _wait_ready(server, workers, deadline=time.monotonic() + 120)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if admin is not None:
            admin.dispose()


def _wait_ready(server: Server, workers: int, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(server.url + "/checkpoint", timeout=2) as r:
                if r.status == 200 and len(server.worker_pids()) >= workers:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start:\n{server.log_file.read_text()[-3000:]}")
        time.sleep(0.2)
