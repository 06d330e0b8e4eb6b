"""CPU of single records, this checkout's code against another's, taking turns.

    .venv/bin/python -m bench.lone_commit --against TREE [--backends sqlite,postgresql]
        [--rounds 4] [--singles 300] [--threads 16,32]

For a change to the committer's per-group cost (a lone record pays a whole
group commit). Each round runs, for each tree in turn (the order swapped
every round), a child process with that tree's code: a fresh database and
app set up as ``bench.writes`` sets them up, a warm-up, then single records
through the WSGI callable (as ``bench.writes --wsgi``) from 1 client and
from each count of ``--threads`` threads. Per record it reports the CPU of
the whole process (``time.process_time``: every thread), of the committer
thread alone (its ``pthread`` CPU clock: the sequencer's transaction and
the planner), and on PostgreSQL of the run's backends, and the records a
group commit held; then ``Sequencer.append`` of one entry called in the
process (the least CPU of 7 runs of 100: the sequencer's fixed cost without
the request). Printed per tree: the median and the range of the rounds.
A measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _committer_cpu() -> float:
    """CPU seconds of this process's committer thread so far (0 before it starts)."""
    for t in threading.enumerate():
        if t.name == "ledger-committer" and t.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return 0.0


def child(kind: str, pg_url: str | None, singles: int, threads: list[int]) -> dict[str, Any]:
    """One round with the code of the current ``sys.path``: figures per step."""
    from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus
    from bench.writes import Bench, PostgresBackends, application
    from ledger.sequencer import Sequencer

    corpus = Corpus(secrets.token_bytes(32))
    corpus.check()
    app_name = f"bench-lone-{secrets.token_hex(4)}"
    groups = [0]
    original = Sequencer.sequence

    def counted(self: Sequencer, planner: Callable[..., Any]) -> Any:
        groups[0] += 1
        return original(self, planner)

    Sequencer.sequence = counted  # type: ignore[method-assign]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, application(kind, Path(tmp), pg_url, app_name) as (app, admin):
        runner = app.test_cli_runner()
        result = runner.invoke(
            args=["ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", corpus.public_key_b64]
        )
        if result.exit_code != 0:
            raise RuntimeError(f"platform add failed: {result.output}")
        backends = PostgresBackends(admin, app_name) if admin else None
        bench = Bench(app, corpus, backends, None, wsgi=True)
        try:
            bench.singles(30)  # warm-up: connections, caches, the committer thread
            bench.singles_threads(64, 16)
            steps: list[tuple[str, Callable[[], object]]] = [("1 client", lambda: bench.singles(singles))]
            for n in threads:
                steps.append((f"{n} threads", lambda n=n: bench.singles_threads(singles, n)))  # type: ignore[misc]
            for name, run in steps:
                db_before = backends.cpu() if backends else {}
                g0, c0, p0 = groups[0], _committer_cpu(), time.process_time()
                run()
                p1, c1, g1 = time.process_time(), _committer_cpu(), groups[0]
                db = None
                if backends is not None:
                    db_after = backends.cpu()
                    db = sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items()) / singles * 1e6
                out[name] = {
                    "process_us": (p1 - p0) / singles * 1e6,
                    "committer_us": (c1 - c0) / singles * 1e6,
                    "db_us": db,
                    "per_group": singles / max(1, g1 - g0),
                }
            # The sequencer alone: a one-entry append, the least of 7 runs of 100.
            sequencer = app.extensions["ledger"].log.sequencer
            best = float("inf")
            for r in range(7):
                start = time.process_time()
                for i in range(100):
                    sequencer.append([b"lone append %d %d" % (r, i)])
                best = min(best, time.process_time() - start)
            out["append"] = {"process_us": best / 100 * 1e6, "committer_us": 0.0, "db_us": None, "per_group": 1.0}
        finally:
            if backends is not None:
                backends.close()
    return out


def _run_child(tree: Path, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from bench import turns

    code = (
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')"
    )
    argv = ["-c", code, "lone_commit", "--child", "--backends", kind]
    figures: dict[str, Any] = turns.child_json(tree, [*argv, "--singles", str(args.singles), "--threads", args.threads])
    return figures


def _range(values: list[float]) -> str:
    return f"{statistics.median(values):7,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", help="another checkout whose code to measure in turn (before a change)")
    parser.add_argument("--backends", default=os.environ.get("BENCH_BACKENDS", "sqlite,postgresql"))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--singles", type=int, default=300, help="single records per step (default 300)")
    parser.add_argument("--threads", default="16,32", help="thread counts of the concurrent steps")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",") if n]
    if args.child:  # run from the other tree, whose bench package may hold no turns
        pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
        print(json.dumps(child(args.backends, pg_url, args.singles, threads)))
        return
    from bench import turns

    trees = turns.trees(args.against)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; trees: {trees}", flush=True)
    for kind, _ in turns.backends(args.backends):
        got: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in range(args.rounds):
            order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
            for name, tree in order:
                for step, fig in _run_child(tree, kind, args).items():
                    got.setdefault((step, name), []).append(fig)
        print(f"{kind}: CPU µs a single record, median (range) of {args.rounds} rounds of {args.singles}")
        for (step, name), figs in sorted(got.items(), key=lambda kv: (kv[0][0] != "1 client", kv[0])):
            db = [f["db_us"] for f in figs if f["db_us"] is not None]
            print(
                f"  {step:10} {name:8} process {_range([f['process_us'] for f in figs])}"
                f"  committer {_range([f['committer_us'] for f in figs])}"
                + (f"  + DB {_range(db)}" if db else "")
                + f"  records/group {statistics.median(f['per_group'] for f in figs):.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
