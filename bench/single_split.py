"""Where a single record's server CPU goes, 32 clients, SQLite (issue 12).

    .venv/bin/python -m bench.single_split [--records 1500] [--rounds 3]

Three figures, each in CPU µs a record:

* under gunicorn (``gunicorn.conf.py``, real HTTP from ``bench.loadgen``'s
  32 clients): the master and each worker by /proc, the worker that leads
  the intake (holds ``<rendezvous>.lock``) apart from the follower; the
  default 2 workers x 16 threads and, taking turns with it, 1 worker x 32
  threads (no follower, so no hand-off over the intake's socket);
* in one process (the WSGI callable, 32 threads, as ``bench.writes --wsgi``):
  the process, and by stage, each stage's own thread CPU summed over its
  calls (``time.thread_time`` around the functions ``api.submissions.accept``
  calls; the committer thread's CPU from /proc);
* a follower's hand-off to the leader, done by hand: the pickling and
  unpickling of one record's ``VerifiedRecord`` list and of its ``Receipt``.

The sum of the parts in one process against gunicorn's workers is what
gunicorn's HTTP handling, its threads and the intake's socket cost.
"""

from __future__ import annotations

import argparse
import os
import pickle
import secrets
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.state import log_of
from bench import ingest, loadgen
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus
from bench.server import database, gunicorn
from bench.writes import Bench, application, proc_cpu


def _leader(pids: list[int]) -> int | None:
    """The worker holding the intake's flock (/proc/locks; every worker may
    have the lock file open)."""
    holders = {int(line.split()[4]) for line in Path("/proc/locks").read_text().splitlines() if " FLOCK " in line}
    return next((p for p in pids if p in holders), None)


def _sys_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def under_gunicorn(workers: int, threads: int, n: int, clients: int) -> dict[str, float]:
    corpus = Corpus(secrets.token_bytes(32))
    key = corpus.public_key_b64
    with (
        tempfile.TemporaryDirectory() as d,
        database("sqlite", Path(d), None) as db,
        gunicorn(db, Path(d), workers, threads) as srv,
    ):
        srv.flask("ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", key)
        ingest.submit(srv.port, [corpus.sign(i) for i in range(100)], 1, clients, 60)  # warm-up
        items = [corpus.sign(i) for i in range(100, 100 + n)]
        pids = srv.worker_pids()
        lead = _leader(pids)
        procs = {"master": srv.proc.pid, **{("leader" if p == lead else f"follower {p}"): p for p in pids}}
        before = {k: proc_cpu(p) for k, p in procs.items()}
        sys0 = sum(_sys_cpu(p) for p in procs.values())
        res = ingest.submit(srv.port, items, 1, clients, 120)
        after = {k: proc_cpu(p) for k, p in procs.items()}
        sys1 = sum(_sys_cpu(p) for p in procs.values())
        # The floor: gunicorn's own request handling, GET /healthz from the same clients.
        t0 = sum(proc_cpu(p) for p in procs.values())
        healthz = [loadgen.Request("GET", "/healthz", None, 1)] * n
        trivial = loadgen.run(loadgen.Load(srv.port, healthz, clients, 120))
        t1 = sum(proc_cpu(p) for p in procs.values())
    if res.statuses.get(201, 0) != n:
        raise AssertionError(f"not every record answered 201: {res.statuses} {res.error_sample}")
    out = {k: (after[k] - before[k]) / n * 1e6 for k in procs}
    out = {("follower" if k.startswith("follower") else k): v for k, v in out.items()}
    out["server"] = sum(out.values())
    out["of it system"] = (sys1 - sys0) / n * 1e6
    out["GET /healthz, a request"] = (t1 - t0) / trivial.done * 1e6
    out["per_s"] = n / res.elapsed
    out["p99_ms"] = res.percentile(99) * 1000
    return out


class Stages:
    """Thread CPU by stage, summed over calls (nested stages are counted in
    their own line and in the caller's)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                dt = time.thread_time() - t
                with self.lock:
                    self.cpu[name] += dt

        return timed


def in_process(n: int, threads: int) -> tuple[dict[str, float], tuple[Any, Any]]:
    import api.submissions as sub

    corpus = Corpus(secrets.token_bytes(32))
    stages = Stages()
    captured: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp, application("sqlite", Path(tmp), None, "split") as (app, _):
        res = app.test_cli_runner().invoke(
            args=["ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", corpus.public_key_b64]
        )
        assert res.exit_code == 0, res.output
        bench = Bench(app, corpus, None, None, wsgi=True)
        bench.singles(20)
        log = log_of(app)
        names = ("accept", "read_body", "parse_json", "_validate", "verify_items", "_records_json")
        originals = {name: getattr(sub, name) for name in names}
        intake_append, inclusions = log.intake.append, log.inclusions

        def append(recs: Any) -> Any:
            receipt = intake_append(recs)
            if not captured:
                captured.append((recs, receipt))
            return receipt

        try:
            for name, fn in originals.items():
                setattr(sub, name, stages.wrap(name, fn))
            # Instance attributes over the methods, deleted after.
            setattr(log.intake, "append", stages.wrap("intake.append (hand-off, wait, proofs)", append))  # noqa: B010
            setattr(log, "inclusions", stages.wrap("Log.inclusions", inclusions))  # noqa: B010
            committer = log.committer._thread
            assert committer is not None
            assert committer.native_id is not None
            tid = committer.native_id
            c0 = _proc_cpu_tid(tid)
            fig = bench.singles_threads(n, threads)
            c1 = _proc_cpu_tid(tid)
        finally:
            for name, fn in originals.items():
                setattr(sub, name, fn)
            del log.intake.append, log.inclusions
    out = {k: v / n * 1e6 for k, v in stages.cpu.items()}
    out["committer thread"] = (c1 - c0) / n * 1e6
    out["process"] = fig.cpu_s / n * 1e6
    return out, captured[0]


def _proc_cpu_tid(tid: int) -> float:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pickling(recs: Any, receipt: Any, n: int = 2000) -> dict[str, float]:
    out = {}
    for name, value in (("records", recs), ("receipt", ("ok", receipt))):
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        t = time.process_time()
        for _ in range(n):
            pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        out[f"pickle+unpickle {name} ({len(data)} B)"] = (time.process_time() - t) / n * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=1500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gunicorn-only", action="store_true", help="only the two gunicorn layouts, in turn")
    args = p.parse_args()
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for r in range(args.rounds):
        order = [(2, 16), (1, 32)] if r % 2 == 0 else [(1, 32), (2, 16)]
        for w, t in order:
            fig = under_gunicorn(w, t, args.records, 32)
            runs[f"gunicorn {w}x{t}"].append(fig)
            print(f"round {r} gunicorn {w}x{t}: " + ", ".join(f"{k} {v:,.0f}" for k, v in fig.items()), flush=True)
        if args.gunicorn_only:
            continue
        fig, (recs, receipt) = in_process(args.records, 32)
        runs["in process, 32 threads"].append(fig)
        print(f"round {r} in process: " + ", ".join(f"{k} {v:,.0f}" for k, v in fig.items()), flush=True)
    print("\nmedians (range), CPU µs a record unless named")
    for name, figs in runs.items():
        print(name)
        for k in figs[0]:
            vals = [f[k] for f in figs if k in f]
            print(f"  {k:45} {statistics.median(vals):8,.0f}  ({min(vals):,.0f}–{max(vals):,.0f})")
    if args.gunicorn_only:
        return
    for k, v in pickling(recs, receipt).items():
        print(f"{k:47} {v:8,.1f} µs")


if __name__ == "__main__":
    main()
