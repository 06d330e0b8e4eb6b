"""Batch ingestion under gunicorn: server CPU per record, by process and thread.

    .venv/bin/python -m bench.batch_gap [--backends sqlite,postgresql] [--rounds 3] [--batches 12]
        [--variants main,nowatch,1worker,inproc] [--against NAME=TREE ...] [--profile]

Session 7 compared a batch record in one process (``python -m
bench.writes``, ~300 µs) with ``make bench``'s ~680 µs of server CPU under
gunicorn (2 workers x 16 threads, batches of 1,000 from 4 clients), figures
of two runs; this one measures both side by side. It runs the
same server and load as ``make bench``'s batch step (bench/server.py,
bench/ingest.py) and splits the server's CPU: the leader worker (the one
that holds the intake lock and runs the committer, ledger/intake.py), the
follower worker, gunicorn's master, and on PostgreSQL the backends; and
within each worker, the CPU of each thread (``/proc/<pid>/task``).

``--variants a,b`` runs each named variant in turn, in rounds taking
turns, in the same run (:data:`VARIANTS`: as shipped, the derived-row
watcher off, one worker, and ``inproc``, the app in this process without
gunicorn), so parts and changes are measured while the neighbours stay the
same. ``--against NAME=TREE`` adds a variant served as shipped from another
checkout (a detached worktree of an older commit, its own database), so
commits are compared in one run. The watcher checks every 10 s, so a round may or may not hold one of
its checks: compare medians of several rounds. With ``--profile`` py-spy samples
both workers (the thread holding the GIL) during one extra round per variant
(``bench/results/<stamp>-batch_gap-<backend>-<variant>-<worker>.profile.txt``).

A measurement, not a test: nothing here asserts a time. Every answer is
checked as the suite checks it (status 201, proofs against the signed
checkpoint).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

from sqlalchemy import create_engine, text

from bench import child_signals, cpu, ingest, sigterm_interrupts, writes
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus, Signed, batch_body, sign_chunk
from bench.profile import py_spy, sampling
from bench.server import Database, Server, database, gunicorn
from keys.note import Verifier

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 1000
CLIENTS = 4


@dataclass(frozen=True)
class Variant:
    """A server to measure: its environment beyond bench/server.py's, its workers and threads."""

    env: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    threads: int = 16
    root: Path | None = None  # another checkout's code (``--against``); None: this one


VARIANTS: dict[str, Variant] = {
    "main": Variant(),
    # Measurements of parts, not candidates: the derived-row watcher off
    # (ledger/derived_watch.py), and one worker of 32 threads (no hand-off).
    "nowatch": Variant({"LEDGER_DERIVED_CHECK_SECONDS": "0"}),
    "1worker": Variant(workers=1, threads=32),
    # No gunicorn: the app's WSGI callable in this process, 4 threads posting
    # the same batches (bench/writes.py's set-up: the watcher off).
    "inproc": Variant(),
}

#: Python thread names (py-spy dump) -> the part of the server they are.
_PARTS = (
    ("ThreadPoolExecutor", "request threads"),
    ("ledger-committer", "committer"),
    ("intake-peer", "intake peer (leader side of the hand-off)"),
    ("derived-watch", "derived-row watcher"),
)


@dataclass
class Round:
    records: int
    wall: float
    server: float
    database: float
    commits: int = 0  # checkpoints signed during the round: the committer's groups
    by_process: dict[str, float] = field(default_factory=dict)
    by_thread: dict[str, float] = field(default_factory=dict)

    def us(self, seconds: float) -> float:
        return seconds / self.records * 1e6


def _task_cpu(pid: int) -> dict[int, float]:
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        rest = text.rpartition(")")[2].split()
        out[int(tid)] = (int(rest[11]) + int(rest[12])) / cpu.TICK
    return out


def thread_parts(dump: str) -> dict[int, str]:
    """tid -> part of the server, from the thread names in ``py-spy dump``'s output
    (``Thread 1234 (idle): "ledger-committer"``)."""
    parts: dict[int, str] = {}
    for m in re.finditer(r'^Thread (\d+) \([^)]*\): "([^"]*)"', dump, re.M):
        name = m.group(2)
        parts[int(m.group(1))] = next((part for prefix, part in _PARTS if name.startswith(prefix)), "other")
    return parts


def _thread_parts(pid: int) -> dict[int, str]:
    exe = py_spy()
    if exe is None:
        return {}
    dump = subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False).stdout
    return thread_parts(dump)


def flock_holder(locks: str, inode: int) -> int | None:
    """The pid holding a ``flock`` on the file of ``inode``, from ``/proc/locks``
    (``1: FLOCK  ADVISORY  WRITE 1234 00:2b:5678 0 EOF``)."""
    for line in locks.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and int(parts[5].rsplit(":", 1)[1]) == inode:
            return int(parts[4])
    return None


def _leader_pid(srv: Server) -> int | None:
    """The worker holding the intake's flock (ledger/intake.py): the leader."""
    try:
        inode = Path(f"{srv.key_file}.intake.lock").stat().st_ino
    except OSError:
        return None
    return flock_holder(Path("/proc/locks").read_text(), inode)


def _checkpoints(db: Database) -> int:
    """Checkpoints stored so far (one a group commit), read over a connection
    of its own, not the server's (whose backends are counted as its CPU)."""
    eng = create_engine(db.url)
    try:
        with eng.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM checkpoints")).scalar_one())
    finally:
        eng.dispose()


def _round(
    srv: Server, db: Database, items: list[Signed], verifier: Verifier, profile: Path | None, clients: int
) -> Round:
    commits = _checkpoints(db)
    workers = srv.worker_pids()
    leader = _leader_pid(srv)
    names = {pid: ("leader" if pid == leader else "follower") for pid in workers}
    before_tasks = {pid: _task_cpu(pid) for pid in workers}
    before_master = cpu.parse_stat(Path(f"/proc/{srv.proc.pid}/stat").read_text())[1]
    with ExitStack() as stack:
        if profile is not None:
            for pid in workers:
                out = profile.with_name(f"{profile.name}-{names[pid]}.profile.txt")
                stack.enter_context(sampling([pid], out, gil=True))
        res = ingest.submit(srv.port, items, BATCH, clients, 600, probe=srv.cpu_probe)
    if res.errors or res.weight != len(items):
        raise RuntimeError(f"{res.errors} errors, {res.weight} of {len(items)} records, e.g. {res.error_sample}")
    ingest.check_answers(res, items, BATCH, verifier)
    after_tasks = {pid: _task_cpu(pid) for pid in workers}
    after_master = cpu.parse_stat(Path(f"/proc/{srv.proc.pid}/stat").read_text())[1]
    rnd = Round(
        len(items),
        res.cpu_wall,
        res.cpu.get(cpu.SERVER, 0.0),
        sum(v for k, v in res.cpu.items() if k.startswith(cpu.DATABASE)),
        _checkpoints(db) - commits,
    )
    rnd.by_process["master"] = after_master - before_master
    for pid in workers:
        b, a = before_tasks[pid], after_tasks[pid]
        used = {tid: a[tid] - b.get(tid, 0.0) for tid in a}
        rnd.by_process[names[pid]] = sum(used.values())
        parts = _thread_parts(pid)
        for tid, v in used.items():
            key = f"{names[pid]}: {parts.get(tid, 'other')}"
            rnd.by_thread[key] = rnd.by_thread.get(key, 0.0) + v
    return rnd


@contextmanager
def _server(kind: str, tmp: Path, pg_url: str | None, v: Variant) -> Iterator[tuple[Database, Server]]:
    with (
        mock.patch.dict(os.environ, v.env),
        database(kind, tmp, pg_url) as db,
        gunicorn(db, tmp, v.workers, v.threads, **({"root": v.root} if v.root else {})) as srv,
    ):
        yield db, srv


def _sign(corpus: Corpus, n: int) -> list[Signed]:
    chunks = [(corpus.seed, i, min(n, i + 500), "bn") for i in range(0, n, 500)]
    with mp.get_context("fork").Pool(os.cpu_count() or 1, initializer=child_signals) as pool:
        parts = pool.map_async(sign_chunk, chunks).get(timeout=600)
    return [s for part in parts for s in part]


class InProcess:
    """The ``inproc`` variant: bench/writes.py's application and WSGI calls,
    :data:`CLIENTS` threads posting the round's batches at once."""

    def __init__(self, stack: ExitStack, kind: str, pg_url: str | None, pub: str) -> None:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"batch-gap-{kind}-inproc-")))
        name = f"batch-gap-{secrets.token_hex(4)}"
        app, admin = stack.enter_context(writes.application(kind, tmp, pg_url, name))
        result = app.test_cli_runner().invoke(
            args=["ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", pub]
        )
        if result.exit_code != 0:
            raise RuntimeError(f"platform add failed: {result.output}")
        self.backends = writes.PostgresBackends(admin, name) if admin else None
        if self.backends is not None:
            stack.callback(self.backends.close)
        self.bench = writes.Bench(app, Corpus(secrets.token_bytes(32)), self.backends, None, wsgi=True)

    def round(self, items: list[Signed]) -> Round:
        bodies = [batch_body(list(items[i : i + BATCH])) for i in range(0, len(items), BATCH)]

        def post(chunk: list[bytes]) -> None:
            for body in chunk:
                status, data = self.bench.send(body)
                if status != 201:
                    raise RuntimeError(f"submission failed: {status} {data[:300]!r}")

        threads = [threading.Thread(target=post, args=(bodies[i::CLIENTS],)) for i in range(CLIENTS)]
        db_before = self.backends.cpu() if self.backends else {}
        wall, used = time.monotonic(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        used, wall = time.process_time() - used, time.monotonic() - wall
        db = 0.0
        if self.backends is not None:
            db = sum(v - db_before.get(pid, 0.0) for pid, v in self.backends.cpu().items())
        return Round(len(items), wall, used, db, by_process={"this process": used})


def against_variants(specs: list[str]) -> dict[str, Variant]:
    """``--against NAME=TREE`` options as variants: the server as shipped, served
    from the checkout TREE (its ``wsgi.py`` and ``gunicorn.conf.py``)."""
    out: dict[str, Variant] = {}
    for spec in specs:
        name, sep, tree = spec.partition("=")
        if not sep or not name or not tree:
            raise ValueError(f"--against wants NAME=TREE, not {spec!r}")
        if name in VARIANTS or name in out:
            raise ValueError(f"--against: the name {name!r} is taken")
        if not (Path(tree) / "wsgi.py").is_file():
            raise ValueError(f"--against: {tree!r} is not a checkout of the ledger (no wsgi.py)")
        out[name] = Variant(root=Path(tree).resolve())
    return out


def run_backend(kind: str, pg_url: str | None, args: argparse.Namespace, stamp: str, items: list[Signed]) -> str:
    variants = args.variants.split(",")
    per_round = args.batches * BATCH
    warm = args.warm
    lines = [f"## {kind}", ""]
    rounds: dict[str, list[Round]] = {v: [] for v in variants}
    with ExitStack() as stack:
        servers: dict[str, tuple[Database, Server]] = {}
        offsets: dict[str, int] = {v: warm for v in variants}
        inproc = None
        for v in variants:
            if v == "inproc":
                inproc = InProcess(stack, kind, pg_url, args.pub)
                inproc.round(items[:warm])
                continue
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"batch-gap-{kind}-{v}-")))
            db, srv = stack.enter_context(_server(kind, tmp, pg_url, args.all_variants[v]))
            srv.flask("ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", args.pub)
            servers[v] = db, srv
            ingest.submit(srv.port, items[:warm], BATCH, args.clients, 600)
            if args.analyze:
                db.analyze()  # as the suite does after its fill, before the batch step
        total = args.rounds + (1 if args.profile else 0)
        for r in range(total):
            profiled = args.profile and r == total - 1
            for v in variants:
                part = items[offsets[v] : offsets[v] + per_round]
                offsets[v] += per_round
                if inproc is not None and v == "inproc":
                    if profiled:
                        continue
                    rnd = inproc.round(part)
                else:
                    db, srv = servers[v]
                    prof = RESULTS / f"{stamp}-batch_gap-{kind}-{v}" if profiled else None
                    rnd = _round(srv, db, part, Verifier.from_key(srv.vkey), prof, args.clients)
                if not profiled:
                    rounds[v].append(rnd)
                print(
                    f"{kind} {v} round {r + 1}{' (profiled)' if profiled else ''}: "
                    f"server {rnd.us(rnd.server):.0f} µs/record, db {rnd.us(rnd.database):.0f}, "
                    f"{rnd.records / rnd.wall:,.0f} records/s, {rnd.commits} commits; "
                    + ", ".join(f"{k} {rnd.us(s):.0f}" for k, s in rnd.by_process.items()),
                    file=sys.stderr,
                    flush=True,
                )
    lines.append("| CPU µs per record (median of rounds) | " + " | ".join(variants) + " |")
    lines.append("|---|" + "---|" * len(variants))

    def row(label: str, get: object) -> None:
        vals = []
        for v in variants:
            xs = [get(r) for r in rounds[v]]  # type: ignore[operator]
            vals.append(f"{statistics.median(xs):.0f} ({min(xs):.0f}–{max(xs):.0f})")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")

    row("server (gunicorn, all processes)", lambda r: r.us(r.server))
    if kind == "postgresql":
        row("PostgreSQL backends", lambda r: r.us(r.database))
    keys = sorted({k for v in variants for r in rounds[v] for k in r.by_process})
    for k in keys:
        row(k, lambda r, k=k: r.us(r.by_process.get(k, 0.0)))
    for k in sorted({k for v in variants for r in rounds[v] for k in r.by_thread}):
        row(k, lambda r, k=k: r.us(r.by_thread.get(k, 0.0)))
    row("records/s (wall, shared cores)", lambda r: r.records / r.wall)
    row("records a commit (the committer's groups)", lambda r: r.records / r.commits if r.commits else 0)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=os.environ.get("BENCH_BACKENDS", "sqlite,postgresql"))
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per variant (default 3)")
    parser.add_argument("--batches", type=int, default=12, help="batches of 1,000 per round (default 12)")
    parser.add_argument("--variants", default="main", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--profile", action="store_true", help="one extra round per variant sampled by py-spy")
    parser.add_argument(
        "--warm",
        type=int,
        default=4 * BATCH,
        help="records each server takes before the timed rounds (default 4,000; make bench's batch step "
        "follows a fill to 10,000)",
    )
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"clients posting at once (default {CLIENTS})")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="PostgreSQL: ANALYZE each server's tables after the warm-up, as make bench's suite does after its fill",
    )
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="NAME=TREE",
        help="a variant NAME: the server as shipped, run from another checkout TREE (e.g. a detached "
        "worktree of an older commit), taking turns with the others; repeatable",
    )
    args = parser.parse_args()
    try:
        args.all_variants = {**VARIANTS, **against_variants(args.against)}
    except ValueError as e:
        parser.error(str(e))
    for name in args.all_variants:
        if name not in VARIANTS and name not in args.variants.split(","):
            args.variants += f",{name}"
    for v in args.variants.split(","):
        if v not in args.all_variants:
            parser.error(f"unknown variant {v!r}")
    pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    corpus = Corpus(secrets.token_bytes(32))
    args.pub = corpus.public_key_b64
    per_variant = args.warm + (args.rounds + (1 if args.profile else 0)) * args.batches * BATCH
    with sigterm_interrupts():
        print(f"signing {per_variant:,} records", file=sys.stderr, flush=True)
        items = _sign(corpus, per_variant)
        load = os.getloadavg()
        out = [f"# batch_gap {stamp}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", ""]
        for kind in args.backends.split(","):
            if kind == "postgresql" and not pg_url:
                out.append("## postgresql\n\nskipped: no BENCH_POSTGRES_URL\n")
                continue
            # Each variant has its own database, so each gets the same records.
            out.append(run_backend(kind, pg_url, args, stamp, items))
        print("\n".join(out))


if __name__ == "__main__":
    main()
