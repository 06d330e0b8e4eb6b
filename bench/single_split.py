"""Where a single record's server CPU goes, 32 clients, SQLite (issue 12).

    .venv/bin/python -m bench.single_split [--records 1500] [--rounds 3]

Three figures, each in CPU µs a record:

* under gunicorn (``gunicorn.conf.py``, real HTTP from ``bench.loadgen``'s
  32 clients): the master and each worker by /proc, the worker that leads
  the intake (holds ``<rendezvous>.lock``) apart from the follower; the
  default 2 workers × 16 threads and, taking turns with it, 1 worker × 32
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

from bench import ingest
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus
from bench.server import database, gunicorn
from bench.writes import Bench, _proc_cpu, application


def _leader(pids: list[int]) -> int | None:
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".lock"):
                    return pid
        except OSError:
            continue
    return None


def under_gunicorn(workers: int, threads: int, n: int, clients: int) -> dict[str, float]:
    corpus = Corpus(secrets.token_bytes(32))
    with tempfile.TemporaryDirectory() as d, database("sqlite", Path(d), None) as db:
        with gunicorn(db, Path(d), workers, threads) as srv:
            srv.flask("ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", corpus.public_key_b64)
            ingest.submit(srv.port, [corpus.sign(i) for i in range(100)], 1, clients, 60)  # warm-up
            items = [corpus.sign(i) for i in range(100, 100 + n)]
            pids = srv.worker_pids()
            lead = _leader(pids)
            procs = {"master": srv.proc.pid, **{("leader" if p == lead else f"follower {p}"): p for p in pids}}
            before = {k: _proc_cpu(p) for k, p in procs.items()}
            res = ingest.submit(srv.port, items, 1, clients, 120)
            after = {k: _proc_cpu(p) for k, p in procs.items()}
    if res.statuses.get(201, 0) != n:
        raise AssertionError(f"not every record answered 201: {res.statuses} {res.error_sample}")
    out = {k: (after[k] - before[k]) / n * 1e6 for k in procs}
    out = {("follower" if k.startswith("follower") else k): v for k, v in out.items()}
    out["server"] = sum(out.values())
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
        log = sub.log_of(app)
        originals = {
            "accept": sub.accept,
            "read_body": sub.read_body,
            "parse_json": sub.parse_json,
            "_validate": sub._validate,
            "verify_items": sub.verify_items,
            "_records_json": sub._records_json,
        }
        intake_append, inclusions = log.intake.append, log.inclusions

        def append(recs: Any) -> Any:
            receipt = intake_append(recs)
            if not captured:
                captured.append((recs, receipt))
            return receipt

        try:
            for name, fn in originals.items():
                setattr(sub, name, stages.wrap(name, fn))
            log.intake.append = stages.wrap("intake.append (hand-off, wait, proofs)", append)
            log.inclusions = stages.wrap("Log.inclusions", inclusions)
            committer = next(t for t in threading.enumerate() if t.name == "ledger-committer")
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
    args = p.parse_args()
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for r in range(args.rounds):
        order = [(2, 16), (1, 32)] if r % 2 == 0 else [(1, 32), (2, 16)]
        for w, t in order:
            fig = under_gunicorn(w, t, args.records, 32)
            runs[f"gunicorn {w}x{t}"].append(fig)
            print(f"round {r} gunicorn {w}x{t}: " + ", ".join(f"{k} {v:,.0f}" for k, v in fig.items()), flush=True)
        fig, (recs, receipt) = in_process(args.records, 32)
        runs["in process, 32 threads"].append(fig)
        print(f"round {r} in process: " + ", ".join(f"{k} {v:,.0f}" for k, v in fig.items()), flush=True)
    print("\nmedians (range), CPU µs a record unless named")
    for name, figs in runs.items():
        print(name)
        for k in figs[0]:
            vals = [f[k] for f in figs if k in f]
            print(f"  {k:45} {statistics.median(vals):8,.0f}  ({min(vals):,.0f}–{max(vals):,.0f})")
    for k, v in pickling(recs, receipt).items():
        print(f"{k:47} {v:8,.1f} µs")


if __name__ == "__main__":
    main()
