"""CPU per entry of the operator audit and of deriving an entry's rows, on a bulk-filled log.

    .venv/bin/python -m bench.audit_cpu [--backends sqlite,postgresql] [--size 100001]
        [--rounds 3] [--jobs 0,2] [--against TREE] [--profile]

Issue 14 wants the operator audit (``ledger.audit.audit``, what ``flask
--app app ledger audit`` runs) at 200,000 entries/s; on the bench's shared
2 cores that is a question of CPU per entry, which this measures: a fresh
database filled as the suite's 1M stage fills it (:func:`bench.ingest.populate`,
one record in eight an appeal or amendment), then, each round,

* ``derive``: :func:`ledger.derived.derive_range` over the entries, already
  read and inflated, in batches of the audit's size (pure, this process);
* ``audit --jobs N`` for each ``--jobs``: the whole audit, the CPU of this
  process and of its worker processes (user + system, reaped children
  included; not PostgreSQL's backends), which is what session 7 reported.

Each measurement runs in a child process (``python -m bench.audit_cpu
--measure``); ``--against TREE`` runs each also with another checkout's
code (e.g. the commit before a change, with this file copied in), the two
taking turns every round, so before and after come from one run on one
database. Figures are medians of the rounds, in µs per entry.
``--profile`` prints cProfile's top functions of ``derive_range`` over
the log (this checkout's code). A measurement, not a test: every audit
must report no problem, nothing else is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import time
from pathlib import Path

from bench import turns
from bench.corpus import Corpus
from bench.server import ORIGIN
from ledger.log import LogProvider

SEED = bytes(range(32))


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children, user + system."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _entries(url: str, key_file: str) -> list[bytes]:
    from ledger import storage

    provider = LogProvider(url, key_file, ORIGIN)
    try:
        log = provider.log
        with log.read() as s:
            size = storage.read_head(s).size  # type: ignore[union-attr]
            return storage.read_entries(s, 0, size)
    finally:
        provider.close()


def measure(url: str, key_file: str, jobs: list[int]) -> dict[str, float]:
    """µs per entry of ``derive`` and of ``audit --jobs N`` for each N, with this tree's code."""
    from ledger.audit import BATCH, audit
    from ledger.derived import derive_range

    out: dict[str, float] = {}
    entries = _entries(url, key_file)
    t0 = time.process_time()
    for start in range(0, len(entries), BATCH):
        derive_range(start, entries[start : start + BATCH])
    out["derive"] = (time.process_time() - t0) / len(entries) * 1e6
    del entries
    for n in jobs:
        provider = LogProvider(url, key_file, ORIGIN)
        try:
            log = provider.log
            c0 = _cpu()
            with log.read() as s:
                report = audit(s, log.verifier, jobs=n)
            spent = _cpu() - c0
        finally:
            provider.close()
        if not report.ok:
            raise RuntimeError(f"audit found problems: {report.problems[0]}")
        out[f"audit --jobs {n}"] = spent / report.entries * 1e6
    return out


def profile(url: str, key_file: str) -> None:
    from ledger.audit import BATCH
    from ledger.derived import derive_range

    entries = _entries(url, key_file)
    prof = cProfile.Profile()
    prof.enable()
    for start in range(0, len(entries), BATCH):
        derive_range(start, entries[start : start + BATCH])
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def _child(tree: Path, url: str, key_file: str, jobs: str) -> dict[str, float]:
    result: dict[str, float] = turns.child_json(
        tree, ["-m", "bench.audit_cpu", "--measure", url, key_file, "--jobs", jobs]
    )
    return result


def run(kind: str, args: argparse.Namespace, pg_url: str | None) -> None:
    trees = turns.trees(args.against)
    with turns.filled_log(kind, pg_url, Corpus(SEED), args.size) as (db, key_file):
        got: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                for figure, us in _child(tree, db.url, str(key_file), args.jobs).items():
                    got[name].setdefault(figure, []).append(us)
        for name, figures in got.items():
            for figure, runs in figures.items():
                shown = " ".join(f"{us:.1f}" for us in runs)
                print(f"{kind} {name:8} {figure:16} {statistics.median(runs):7.1f} µs/entry  ({shown})", flush=True)
        if args.profile:
            profile(db.url, str(key_file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--size", type=int, default=100_001)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default="0,2", help="the audit's --jobs values to measure (default 0,2)")
    parser.add_argument("--against", help="another checkout whose code to measure in turn (before a change)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--measure", nargs=2, metavar=("URL", "KEY_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        url, key_file = args.measure
        print(json.dumps(measure(url, key_file, [int(n) for n in args.jobs.split(",") if n])))
        return
    for kind, pg_url in turns.backends(args.backends):
        run(kind, args, pg_url)


if __name__ == "__main__":
    main()
