"""CPU of the server's derived-row check (ledger/derived_watch.py) per check, on a bulk-filled log.

    .venv/bin/python -m bench.derived_watch_cpu [--backends sqlite,postgresql] [--size 200000]
        [--rounds 3] [--checks 10] [--against TREE]

A fresh database is filled as the suite's 1M stage fills it
(:func:`bench.ingest.populate`); then, each round, in a child process
(``--measure``) with the default settings (a check every 10 s, the whole
log every 3,600 s) and the state file the previous round left:

* ``start``: the first check of a new process, as after a restart;
* ``steady``: the median and the largest of ``--checks`` further checks,
  no entry signed meanwhile (a sweep's slice, or nothing new).

From them, the CPU an hour of checking costs: ``start`` once and ``steady``
359 times (the old code checks the whole log at start and every hour, and
its start check is that full check), or ``steady`` 360 times (a sweep).
CPU is this process's (``time.process_time``): SQLite's work included,
PostgreSQL's backend not. ``--against TREE`` runs each round also with
another checkout's code (e.g. the commit before a change, with this file
copied in), the two taking turns. A measurement, not a test: every check
must find every row whole, nothing else is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench import turns
from bench.corpus import Corpus
from bench.server import ORIGIN
from ledger.log import LogProvider

SEED = bytes(range(32))
INTERVAL, FULL_INTERVAL = 10.0, 3600.0


def measure(url: str, key_file: str, state: str, checks: int) -> dict[str, float]:
    """CPU seconds of a new process's first check and of the checks after it, with this tree's code."""
    from ledger.derived_watch import DerivedWatch

    provider = LogProvider(url, key_file, ORIGIN)
    try:
        log = provider.log
        watch = DerivedWatch(lambda: log, Path(state), INTERVAL, FULL_INTERVAL)
        spent = []
        for _ in range(1 + checks):
            t0 = time.process_time()
            finding = watch.check()
            spent.append(time.process_time() - t0)
            if not finding.ok:
                raise RuntimeError(f"the check found a problem: {finding.problem}")
    finally:
        provider.close()
    if not checks:
        return {"start": spent[0]}
    return {"start": spent[0], "steady": statistics.median(spent[1:]), "steady max": max(spent[1:])}


def _child(tree: Path, url: str, key_file: str, state: Path, checks: int) -> dict[str, float]:
    argv = ["-m", "bench.derived_watch_cpu", "--measure", url, key_file, str(state), "--checks", str(checks)]
    result: dict[str, float] = turns.child_json(tree, argv)
    return result


def run(kind: str, args: argparse.Namespace, pg_url: str | None) -> None:
    trees = turns.trees(args.against)
    with turns.filled_log(kind, pg_url, Corpus(SEED), args.size) as (db, key_file):
        tmp = key_file.parent
        got: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for name, tree in trees.items():
            # The state a running server leaves: each tree's own, from a first start (untimed).
            _child(tree, db.url, str(key_file), tmp / f"state-{name}.json", 0)
        for _ in range(args.rounds):
            for name, tree in trees.items():
                state = tmp / f"state-{name}.json"
                for figure, s in _child(tree, db.url, str(key_file), state, args.checks).items():
                    got[name].setdefault(figure, []).append(s)
        for name, figures in got.items():
            for figure, runs in figures.items():
                shown = " ".join(f"{s * 1e3:.0f}" for s in runs)
                print(f"{kind} {name:8} {figure:12} {min(runs) * 1e3:8.0f}-{max(runs) * 1e3:.0f} ms  ({shown})")
            old_style = [a + 359 * b for a, b in zip(figures["start"], figures["steady"], strict=True)]
            sweep = [360 * b for b in figures["steady"]]
            print(
                f"{kind} {name:8} an hour: start + 359 steady {min(old_style):.1f}-{max(old_style):.1f} s, "
                f"360 steady {min(sweep):.1f}-{max(sweep):.1f} s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", type=int, default=10)
    parser.add_argument("--against", help="another checkout whose code to measure in turn (before a change)")
    parser.add_argument("--measure", nargs=3, metavar=("URL", "KEY_FILE", "STATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        url, key_file, state = args.measure
        print(json.dumps(measure(url, key_file, state, args.checks)))
        return
    for kind, pg_url in turns.backends(args.backends):
        run(kind, args, pg_url)


if __name__ == "__main__":
    main()
