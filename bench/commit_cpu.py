"""CPU per single record with the group commit run by the request thread
against the committer thread it replaced, in one process, taking turns.

    .venv/bin/python -m bench.commit_cpu [--backends sqlite,postgresql] [--rounds 6] [--records 150]

``bench.writes --wsgi`` measures the app as it is; on a machine shared with
other work its single-record figures move by more than the hand-off to a
committer thread costs. This runs the same app (``bench.writes.application``,
the WSGI callable, a gunicorn-like environ) and swaps the log's committer
every round between :class:`ThreadCommitter` (the committer as it was before
session 9: one thread per process appends what request threads queued, each
request waiting on its job's event) and the current
:class:`ledger.submit.Committer` (the request thread that finds no commit
running commits the queue), so both meet the same neighbours. Each round
posts ``--records`` single records from 1 client, then from 16 threads, and
takes the process's CPU (every thread, user + system) per record, on
PostgreSQL the run's backends' beside it, and the records per group commit
(the sequencer's transactions). Reported: the median and minimum of the
rounds (records a group and wall-clock µs a record: the medians; the wall
clock says how much the neighbours took, not the app). A measurement, not a test: every answer must be a 201.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus
from bench.writes import Bench, PostgresBackends, application
from ledger.errors import StorageError
from ledger.submit import Committer, Outcome, VerifiedRecord, _Job


class ThreadCommitter(Committer):
    """The committer before session 9, kept as the reference (also for
    tests/ledger/test_committer.py): one thread per process appends what
    the request threads queued; each request thread waits for its job."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, recs: list[VerifiedRecord]) -> Outcome:
        self._ensure_thread()
        job = _Job(recs)
        self._jobs.put(job)
        if not job.wake.wait(self._timeout):
            raise StorageError("the log did not confirm the append in time; retry the same request")
        if job.error is not None:
            raise job.error
        if job.outcome is None:
            raise AssertionError("a finished job has neither outcome nor error")
        return job.outcome

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ledger-committer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            count = len(jobs[0].records)
            while count < self._max_group:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                count += len(job.records)
            self._commit(jobs)


def _cpu() -> float:
    # Not os.times(): its 10 ms ticks are 5% of a round.
    return time.process_time()


def run_backend(
    kind: str, pg_url: str | None, rounds: int, records: int
) -> dict[str, list[tuple[float, float, float, float]]]:
    corpus = Corpus(secrets.token_bytes(32))
    app_name = f"bench-commit-{secrets.token_hex(4)}"
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, application(kind, Path(tmp), pg_url, app_name) as (app, admin):
        result = app.test_cli_runner().invoke(
            args=["ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", corpus.public_key_b64]
        )
        if result.exit_code != 0:
            raise RuntimeError(f"platform add failed: {result.output}")
        backends = PostgresBackends(admin, app_name) if admin else None
        bench = Bench(app, corpus, backends, None, wsgi=True)
        log = app.extensions["ledger"].log
        groups = [0]
        sequence = log.sequencer.sequence

        def counted(planner: Any) -> Any:
            groups[0] += 1
            return sequence(planner)

        log.sequencer.sequence = counted
        kinds: dict[str, Callable[[], Committer]] = {
            "thread": lambda: ThreadCommitter(log.sequencer, registry=log.registry_cache),
            "inline": lambda: Committer(log.sequencer, registry=log.registry_cache),
        }
        try:
            for r in range(rounds):
                for name, make in kinds.items() if r % 2 == 0 else reversed(kinds.items()):
                    log.committer = make()
                    bench.singles(10)  # warm: the thread, if any, started
                    for step, measure in (("1 client", bench.singles), ("16 threads", bench.singles_threads)):
                        db0 = backends.cpu() if backends else {}
                        groups[0] = 0
                        start, wall = _cpu(), time.perf_counter()
                        measure(records)
                        cpu = (_cpu() - start) / records * 1e6
                        wall = (time.perf_counter() - wall) / records * 1e6
                        db = 0.0
                        if backends is not None:
                            db = sum(v - db0.get(p, 0.0) for p, v in backends.cpu().items()) / records * 1e6
                        results.setdefault(f"{step}, {name}", []).append((cpu, db, records / groups[0], wall))
        finally:
            if backends is not None:
                backends.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=os.environ.get("BENCH_BACKENDS", "sqlite,postgresql"))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--records", type=int, default=150, help="single records per step and round")
    args = parser.parse_args()
    pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for kind in args.backends.split(","):
        if kind == "postgresql" and not pg_url:
            print("postgresql: skipped (set BENCH_POSTGRES_URL)")
            continue
        results = run_backend(kind, pg_url, args.rounds, args.records)
        print(f"{kind}: CPU µs a single record, {args.rounds} rounds of {args.records} (median / min)")
        for step, values in results.items():
            cpu = [v[0] for v in values]
            db = [v[1] for v in values]
            extra = f"   + DB {statistics.median(db):,.0f} / {min(db):,.0f}" if kind == "postgresql" else ""
            per_group = statistics.median(v[2] for v in values)
            wall = statistics.median(v[3] for v in values)
            print(
                f"  {step:22} {statistics.median(cpu):7,.0f} / {min(cpu):7,.0f}{extra}"
                f"   {per_group:.1f} records a group, wall {wall:,.0f} µs a record",
                flush=True,
            )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
