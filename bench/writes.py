"""CPU per accepted record on the write path, beside one Ed25519 verification.

    .venv/bin/python -m bench.writes [--backends sqlite,postgresql] [--batches 5] [--singles 500] [--profile]

Wall-clock throughput on a shared 2-core machine says as much about the
neighbours as about the server; CPU seconds do not. This step runs the real
application in one process (``create_app``, the Flask test client, the real
``POST /api/v1/records`` view, the server's one committer and sequencer, a
fresh database) and measures the CPU time of that process (every thread:
request, committer) per accepted record:

* batches of 1,000 records, one request after another (also each batch
  alone: its minimum and median are the figures least moved by neighbours);
* single records, one request after another (each its own transaction and
  checkpoint: the cost of a record that shares its group commit with none);
* single records from 16 threads (records share group commits, as under load).

Requests go through Flask's test client, whose own work (building each
environ, reading the answer) counts in the process's CPU; with ``--wsgi``
they call the app's WSGI callable with an environ like gunicorn's instead,
so the figures are the app's alone (the 1-client step then also reports the
request thread's own CPU, ``time.thread_time``, beside the committer's).

The process is set up as a gunicorn worker is (``wsgi.py``): the app, then
``freeze_start_up_objects``.

On PostgreSQL the CPU of the database backends serving the run's
connections (found by their ``application_name`` in ``pg_stat_activity``,
read from ``/proc/<pid>/stat``) is reported beside the process's own.
Beside each figure, in the same run: the CPU of one Ed25519 verification
(PyNaCl) of a record-sized message, the one cost a record must pay, and its
share of the record's cost. With ``--profile``, py-spy samples this process
during each step (``bench/results/<stamp>-writes-<backend>-<step>.profile.txt``).

A measurement, not a test: nothing here asserts a time. Every answer is
checked: status 201 and one placed record per record sent.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nacl.signing
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app import create_app, freeze_start_up_objects
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus, Signed, batch_body
from bench.profile import sampling
from bench.server import database
from keys.records import RECORD_CONTEXT

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ORIGIN = "bench.example/writes"
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Figure:
    step: str
    records: int
    wall_s: float
    cpu_s: float  # this process, every thread, user + system
    sys_s: float  # of which in the kernel (on SQLite mostly the WAL's writes and fsyncs)
    db_cpu_s: float | None  # PostgreSQL backends of this run; None on SQLite
    each_us: tuple[float, ...] = ()  # CPU µs/record of each request alone (batches)
    thread_s: float | None = None  # the requesting thread's own CPU (1 client, --wsgi)

    @property
    def us_per_record(self) -> float:
        return self.cpu_s / self.records * 1e6

    @property
    def db_us_per_record(self) -> float | None:
        return None if self.db_cpu_s is None else self.db_cpu_s / self.records * 1e6


def ed25519_us(corpus: Corpus, n: int = 2000, rounds: int = 3) -> float:
    """CPU µs of one PyNaCl verification of a corpus record (best of ``rounds``)."""
    signed = [corpus.sign(i, "ed") for i in range(n)]
    key = nacl.signing.SigningKey(corpus.seed).verify_key
    pairs = [(RECORD_CONTEXT + s.canonical, base64.b64decode(s.signature["value"])) for s in signed]
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for message, signature in pairs:
            key.verify(message, signature)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


class PostgresBackends:
    """CPU seconds of the PostgreSQL backends whose application_name is ours."""

    def __init__(self, admin_url: str, name: str) -> None:
        self._engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._name = name

    def cpu(self) -> dict[int, float]:
        with self._engine.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"), {"n": self._name}
            ).scalars()
            return {pid: proc_cpu(pid) for pid in pids}

    def close(self) -> None:
        self._engine.dispose()


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _environ(body: bytes) -> dict[str, object]:
    """A WSGI environ as gunicorn's gthread worker gives for the records' POST."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/records",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "RAW_URI": "/api/v1/records",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
    }


class Bench:
    def __init__(
        self,
        app: Flask,
        corpus: Corpus,
        backends: PostgresBackends | None,
        profile_dir: Path | None,
        wsgi: bool = False,
    ) -> None:
        self.app = app
        self.client = app.test_client()
        self.corpus = corpus
        self.backends = backends
        self.profile_dir = profile_dir
        self.wsgi = wsgi
        self.next = 0

    def send(self, body: bytes, client: FlaskClient | None = None) -> tuple[int, bytes]:
        """POST ``body`` to the records (through ``client``, default the
        bench's own); the answer's status and body."""
        if not self.wsgi:
            resp = (client or self.client).post("/api/v1/records", data=body, content_type="application/json")
            return resp.status_code, resp.get_data()
        status: list[str] = []

        def start_response(line: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            status.append(line)

        data = b"".join(self.app(_environ(body), start_response))  # type: ignore[arg-type]
        return int(status[0][:3]), data

    def take(self, n: int) -> list[Signed]:
        items = [self.corpus.sign(i) for i in range(self.next, self.next + n)]
        self.next += n
        return items

    def post(self, body: bytes, expected: int) -> None:
        status, data = self.send(body)
        if status != 201 or len(json.loads(data)["records"]) != expected:
            raise AssertionError(f"submission failed: {status} {data[:500]!r}")

    def measure(self, step: str, records: int, run: Callable[[], None]) -> Figure:
        profiling: AbstractContextManager[None] = nullcontext()
        if self.profile_dir is not None:
            profiling = sampling([os.getpid()], self.profile_dir / f"{step.replace(' ', '-')}.profile.txt")
        db_before = self.backends.cpu() if self.backends else {}
        with profiling:
            wall, before, thread = time.perf_counter(), os.times(), time.thread_time()
            run()
            after, wall, thread = os.times(), time.perf_counter() - wall, time.thread_time() - thread
        db = None
        if self.backends is not None:
            db_after = self.backends.cpu()
            db = sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items())
        user, system = after.user - before.user, after.system - before.system
        return Figure(step, records, wall, user + system, system, db, thread_s=thread if self.wsgi else None)

    def batches(self, count: int, size: int = 1000) -> Figure:
        bodies = [batch_body(self.take(size)) for _ in range(count)]

        each: list[float] = []

        def run() -> None:
            for body in bodies:
                start = time.process_time()
                self.post(body, size)
                each.append((time.process_time() - start) / size * 1e6)

        return dataclasses.replace(self.measure(f"batches of {size}", count * size, run), each_us=tuple(each))

    def singles(self, count: int) -> Figure:
        bodies = [s.item() for s in self.take(count)]

        def run() -> None:
            for body in bodies:
                self.post(body, 1)

        return self.measure("single records, 1 client", count, run)

    def singles_threads(self, count: int, threads: int = 16) -> Figure:
        bodies = [s.item() for s in self.take(count)]
        chunks = [bodies[i::threads] for i in range(threads)]

        def run() -> None:
            def one(chunk: list[bytes]) -> None:
                client = self.app.test_client()
                for b in chunk:
                    status, data = self.send(b, client)
                    if status != 201:
                        raise AssertionError(f"submission failed: {status} {data[:300]!r}")

            workers = [threading.Thread(target=one, args=(c,)) for c in chunks]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        # The measuring thread only waits here: its CPU is not the requests'.
        return dataclasses.replace(self.measure(f"single records, {threads} threads", count, run), thread_s=None)


@contextmanager
def application(kind: str, tmp: Path, pg_url: str | None, app_name: str) -> Iterator[tuple[Flask, str | None]]:
    with database(kind, tmp, pg_url) as db:
        url = db.url
        if kind == "postgresql":
            url += f"&application_name={app_name}"
        key_file = tmp / "keys" / "log.key"
        app = create_app(
            {
                "DATABASE_URL": url,
                "KEY_FILE": str(key_file),
                "ORIGIN": ORIGIN,
                "RATE_LIMIT_RECORDS_PER_SECOND": 0,
                "DERIVED_CHECK_SECONDS": 0,
            }
        )
        provider = app.extensions["ledger"]
        try:
            with app.app_context():
                provider.initialise()
            freeze_start_up_objects()  # as wsgi.py does in each gunicorn worker
            yield app, db.admin_url if kind == "postgresql" else None
        finally:
            provider.close()


def run_backend(kind: str, pg_url: str | None, args: argparse.Namespace, stamp: str) -> list[Figure]:
    corpus = Corpus(secrets.token_bytes(32))
    corpus.check()
    app_name = f"bench-writes-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp, application(kind, Path(tmp), pg_url, app_name) as (app, admin):
        runner = app.test_cli_runner()
        result = runner.invoke(
            args=["ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", corpus.public_key_b64]
        )
        if result.exit_code != 0:
            raise RuntimeError(f"platform add failed: {result.output}")
        backends = PostgresBackends(admin, app_name) if admin else None
        profile_dir = None
        if args.profile:
            profile_dir = RESULTS / f"{stamp}-writes-{kind}"
            profile_dir.mkdir(parents=True, exist_ok=True)
        bench = Bench(app, corpus, backends, profile_dir, args.wsgi)
        try:
            bench.batches(1)  # warm-up: connections, caches, the committer thread
            bench.singles(20)
            figures = [bench.batches(args.batches), bench.singles(args.singles), bench.singles_threads(args.singles)]
        finally:
            if backends is not None:
                backends.close()
    return figures


def render(kind: str, figures: list[Figure], ed_us: float) -> str:
    lines = [
        f"{kind}: Ed25519 verification {ed_us:.1f} µs CPU (PyNaCl, one core, same run)",
        f"  {'step':30} {'records':>8} {'rec/s wall':>11} {'CPU µs/rec':>11} {'of it sys':>10}"
        f" {'Ed25519 share':>14} {'+ DB µs/rec':>12}",
    ]
    for f in figures:
        db = f.db_us_per_record
        lines.append(
            f"  {f.step:30} {f.records:8,} {f.records / f.wall_s:11,.0f} {f.us_per_record:11,.0f}"
            f" {f.sys_s / f.records * 1e6:10,.0f}"
            f" {ed_us / f.us_per_record:13.0%} {'' if db is None else f'{db:12,.0f}'}"
        )
        if f.thread_s is not None:
            lines.append(f"    of it the requesting thread: {f.thread_s / f.records * 1e6:,.0f} µs/record")
        if f.each_us:
            lines.append(
                f"    each batch alone: CPU µs/record min {min(f.each_us):,.0f}, "
                f"median {statistics.median(f.each_us):,.0f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=os.environ.get("BENCH_BACKENDS", "sqlite,postgresql"))
    parser.add_argument("--batches", type=int, default=5, help="batches of 1,000 to time (default 5)")
    parser.add_argument("--singles", type=int, default=500, help="single records to time per step (default 500)")
    parser.add_argument("--profile", action="store_true", help="sample each step with py-spy")
    parser.add_argument("--wsgi", action="store_true", help="call the WSGI app directly, not Flask's test client")
    args = parser.parse_args()
    pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    print(f"run {stamp}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for kind in args.backends.split(","):
        if kind == "postgresql" and not pg_url:
            print("postgresql: skipped (set BENCH_POSTGRES_URL)")
            continue
        figures = run_backend(kind, pg_url, args, stamp)
        print(render(kind, figures, ed25519_us(Corpus(bytes(32)))), flush=True)


if __name__ == "__main__":
    main()
