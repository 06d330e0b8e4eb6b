"""``make bench-large``: reads and storage at 10M entries on SQLite.

    .venv/bin/python -m bench.large [--size N] [--dir PATH] [--fill-seconds S] [--fill-only] [--quick]

Grows a SQLite log in ``--dir`` to ``--size`` entries with the 1M stage's
bulk append (:func:`bench.ingest.populate`: entries and feed
index rows through ``Sequencer.sequence``, 10,000 per transaction), printing
a progress line every 100,000 entries, then starts the real gunicorn on it
and runs the suite's own steps at that size (:meth:`bench.suite.Suite.measure_grown`):
the reads (checkpoint, inclusion proofs by index and by hash, tiles of
levels 0 and 1 and the filtered feed, beside the trivial endpoint, 16
clients) and bytes on disk per record. Results go to
``bench/results/<UTC timestamp>-large.json`` and ``.md``, as ``bench.run``
writes them.

The fill is resumable: the directory keeps the database, the log's key and
``large.json`` (the corpus's seed, the size of the log before its first
bulk record, the empty log's bytes, and each fill session's entries, wall
and CPU seconds). Run it again, after an interruption or with a larger
size, and it continues from the size the database holds. Settings, as the
Makefile passes them, come from the environment:

BENCH_LARGE_SIZE          entries to grow the log to (10,000,000)
BENCH_LARGE_DIR           where the database lives (bench/results/large-db); ~2.1 KB per entry
BENCH_LARGE_FILL_SECONDS  time bound on this session's fill; the reads run at the size reached (no bound)
BENCH_WORKERS, BENCH_THREADS   gunicorn's LEDGER_WORKERS (2) and LEDGER_THREADS (16)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, ingest, report, sigterm_interrupts
from bench.corpus import Corpus
from bench.run import RESULTS, Config, Progress, machine, measure_ceilings, write_results
from bench.server import ORIGIN, Database, gunicorn
from bench.suite import Suite
from ledger.log import LogProvider

ROOT = Path(__file__).resolve().parent.parent
STATE = "large.json"
FORMAT = "ledger-bench-large/1"


@dataclass(frozen=True)
class LargeConfig:
    size: int
    directory: Path
    fill_seconds: float
    fill_only: bool
    quick: bool
    workers: int
    threads: int


def parse_args(argv: list[str] | None) -> LargeConfig:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__.split("\n\n")[1])
    p.add_argument(
        "--size",
        type=int,
        default=int(env("BENCH_LARGE_SIZE", "10000000")),
        help="grow the log to this many entries (BENCH_LARGE_SIZE; default %(default)s)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(env("BENCH_LARGE_DIR", str(RESULTS / "large-db"))),
        help="where the log, its key and its state file are kept; a second run resumes from what it holds"
        " (BENCH_LARGE_DIR; default %(default)s; ~2.1 GB a million entries)",
    )
    p.add_argument(
        "--fill-seconds",
        type=float,
        default=float(env("BENCH_LARGE_FILL_SECONDS", "inf")),
        help="stop growing after this many seconds and measure at the size reached (BENCH_LARGE_FILL_SECONDS)",
    )
    p.add_argument("--fill-only", action="store_true", help="grow the log, measure nothing")
    p.add_argument("--quick", action="store_true", help="one run of each read, shorter (the tests use it)")
    p.add_argument(
        "--workers", type=int, default=int(env("BENCH_WORKERS", "2")), help="gunicorn workers (BENCH_WORKERS)"
    )
    p.add_argument(
        "--threads", type=int, default=int(env("BENCH_THREADS", "16")), help="threads a worker (BENCH_THREADS)"
    )
    a = p.parse_args(argv)
    return LargeConfig(a.size, a.dir.resolve(), a.fill_seconds, a.fill_only, a.quick, a.workers, a.threads)


def sqlite_db(directory: Path) -> Database:
    path = directory / "ledger.sqlite3"
    return Database("sqlite", f"sqlite:///{path}", path=path)


def file_bytes(db: Database) -> int:
    """The database file and its WAL as they are (no checkpoint)."""
    assert db.path is not None
    wal = db.path.with_name(db.path.name + "-wal")
    return db.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(directory / STATE)


def open_log(directory: Path, say: Progress) -> tuple[Database, Corpus, dict[str, Any]]:
    """The directory's log, or a new one: initialised, the bench platform
    registered, and its state written before any bulk record."""
    db = sqlite_db(directory)
    state_file = directory / STATE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("format") != FORMAT:
            raise SystemExit(f"{state_file}: not a {FORMAT} state file")
        return db, Corpus(bytes.fromhex(state["seed"])), state
    if db.path is not None and db.path.exists():
        raise SystemExit(f"{db.path} exists without {STATE}: remove it or choose another --dir")
    directory.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    corpus = Corpus(seed)
    corpus.check()
    first = ingest.new_log(db.url, directory / "log.key", corpus)
    state = {
        "format": FORMAT,
        # The synthetic platform's key: the bulk records are signed with it.
        "seed": seed.hex(),
        "first": first,
        "empty_bytes": db.disk_bytes(),
        "sessions": [],
    }
    _write_state(directory, state)
    say(f"new log in {directory}: {first} entries before the bulk records")
    return db, corpus, state


def log_size(db: Database, directory: Path) -> int:
    provider = LogProvider(db.url, str(directory / "log.key"), ORIGIN)
    try:
        return provider.log.latest_size()
    finally:
        provider.close()


def fill(cfg: LargeConfig, db: Database, corpus: Corpus, state: dict[str, Any], say: Progress) -> int:
    """Grow the log to ``cfg.size`` from where it is; record the session in the state."""
    start = log_size(db, cfg.directory)
    if start >= cfg.size:
        say(f"the log holds {start:,} entries (asked for {cfg.size:,}): no fill")
        return start
    say(f"fill: from {start:,} to {cfg.size:,} entries" + (" (resumed)" if start > state["first"] else ""))
    session: dict[str, Any] = {"from": start, "to": start, "wall_s": 0.0, "cpu_s": 0.0}
    state["sessions"].append(session)
    cpu0, t0 = cpu.tree_cpu(os.getpid()), time.monotonic()
    last = [start, t0]

    def progress(size: int, _elapsed: float) -> None:
        now = time.monotonic()
        used = cpu.tree_cpu(os.getpid()) - cpu0
        session.update({"to": size, "wall_s": now - t0, "cpu_s": used})
        _write_state(cfg.directory, state)
        rate = (size - last[0]) / (now - last[1]) if now > last[1] else 0.0
        overall = (size - start) / (now - t0) if now > t0 else 0.0
        eta = (cfg.size - size) / overall if overall else math.inf
        say(
            f"fill: {size:,} / {cfg.size:,} entries ({size / cfg.size:.1%}); {rate:,.0f}/s now, "
            f"{overall:,.0f}/s this session; CPU {used / (size - start) * 1e6:,.0f} µs/entry "
            f"({used / (now - t0):.2f} cores); {file_bytes(db) / 1e9:,.2f} GB on disk; "
            f"{eta / 60:,.0f} min to go"
        )
        last[:] = [size, now]

    try:
        ingest.populate(
            db.url,
            cfg.directory / "log.key",
            corpus,
            cfg.size,
            time.monotonic() + cfg.fill_seconds,
            progress,
            number=start - state["first"],
        )
    finally:  # interrupted too: what was committed, and what it took
        size = log_size(db, cfg.directory)
        session.update({"to": size, "wall_s": time.monotonic() - t0, "cpu_s": cpu.tree_cpu(os.getpid()) - cpu0})
        _write_state(cfg.directory, state)
    return size


def fill_figure(state: dict[str, Any], size: int) -> dict[str, Any]:
    """The bulk append over every fill session of this log."""
    sessions = [s for s in state["sessions"] if s["to"] > s["from"]]
    entries = sum(s["to"] - s["from"] for s in sessions)
    wall = sum(s["wall_s"] for s in sessions)
    used = sum(s["cpu_s"] for s in sessions)
    note = (
        f"{entries:,} entries in {len(sessions)} session(s), {wall / 3600:.2f} h of wall time, "
        f"{used / entries * 1e6 if entries else 0:,.0f} µs of CPU an entry (appender and its helper); "
        "in the bench process through Sequencer.sequence: entries and feed index rows; no HTTP or verification"
    )
    label = f"bulk append to {size:,} entries, 10,000 per transaction"
    return report.figure(label, "entries/s", [entries / wall if wall else 0.0], note)


def measure(
    cfg: LargeConfig, db: Database, corpus: Corpus, state: dict[str, Any], say: Progress, stamp: str
) -> dict[str, Any]:
    run_cfg = Config(cfg.quick, ("sqlite",), None, cfg.workers, cfg.threads, cfg.fill_seconds, False, False)
    results: dict[str, Any] = {
        "format": "ledger-bench/1",
        "stage": "large",
        "timestamp": stamp,
        "quick": cfg.quick,
        "machine": machine(),
        "config": {
            "workers": cfg.workers,
            "threads": cfg.threads,
            "runs": run_cfg.runs,
            "read_clients": run_cfg.read_clients,
            "read_seconds": run_cfg.read_seconds,
            "large": cfg.size,
            "directory": str(cfg.directory),
        },
        "backends": {},
    }
    sample = corpus.sign(0)
    results["ceilings"] = measure_ceilings(run_cfg, sample, say)
    suite = Suite(run_cfg, corpus, [sample], {k: v["value"] for k, v in results["ceilings"].items()})
    with gunicorn(db, cfg.directory, cfg.workers, cfg.threads) as srv:
        say(f"server up ({cfg.workers} workers × {cfg.threads} threads) on the {file_bytes(db) / 1e9:,.2f} GB log")
        out = suite.measure_grown(db, srv, state["first"], state["empty_bytes"], say)
    size = out["storage"]["entries"] + state["first"]
    out["figures"] = {"bulk_append": fill_figure(state, size), **out["figures"]}
    if size < cfg.size:
        out["notes"].append(f"the log reached {size:,} entries, not {cfg.size:,}")
    results["backends"]["sqlite"] = out
    results["large"] = {"size": size, "file_bytes": file_bytes(db), "sessions": state["sessions"]}
    results["targets"] = report.targets(results)
    return results


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    say = Progress()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    say(f"bench-large: SQLite log of {cfg.size:,} entries in {cfg.directory}; load average {os.getloadavg()[0]:.2f}")
    try:
        with sigterm_interrupts():  # the fill's transaction rolls back; the server stops
            db, corpus, state = open_log(cfg.directory, say)
            size = fill(cfg, db, corpus, state, say)
            say(f"the log holds {size:,} entries, {file_bytes(db) / 1e9:,.2f} GB")
            if cfg.fill_only:
                return 0
            results = measure(cfg, db, corpus, state, say, stamp)
    except KeyboardInterrupt:
        say("interrupted: the fill keeps every committed transaction; run again to resume")
        return 130
    results["elapsed_s"] = time.monotonic() - say.t0
    write_results(results, RESULTS, f"{stamp}-large", say)
    return 0


if __name__ == "__main__":
    sys.exit(main())
