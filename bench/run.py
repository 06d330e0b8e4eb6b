"""``make bench``: the benchmark suite, end to end.

    .venv/bin/python -m bench.run [--quick] [--backends sqlite,postgresql] [--update-docs] [--profile]

Prepares signed records, measures the machine's ceilings, then runs
bench/suite.py on each backend against the real gunicorn, and writes
``bench/results/<UTC timestamp>.json`` and ``.md``. Settings come from the
command line or, as the Makefile passes them, the environment:

BENCH_QUICK=1             about 1 minute per backend: one run each, reads at 10k only
BENCH_BACKENDS            default "sqlite,postgresql"
BENCH_POSTGRES_URL        e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test
                          (default: LEDGER_TEST_POSTGRES_URL); PostgreSQL is
                          skipped, and says so, when neither is set
BENCH_WORKERS, BENCH_THREADS   gunicorn's LEDGER_WORKERS (2) and LEDGER_THREADS (16)
BENCH_POPULATE_SECONDS    time bound on growing each log to 1M entries (180)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ceilings, child_signals, report, sigterm_interrupts
from bench.corpus import Corpus, Signed, sign_chunk
from bench.suite import Suite
from keys.records import RECORD_CONTEXT
from ledger.records.entries import entry_bytes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Config:
    quick: bool
    backends: tuple[str, ...]
    pg_url: str | None
    workers: int
    threads: int
    populate_seconds: float
    profile: bool
    update_docs: bool
    nproc: int = os.cpu_count() or 1
    small: int = 10_000
    batch_size: int = 1000
    batch_clients: int = 4
    single_clients: int = 32
    read_clients: int = 16

    @property
    def runs(self) -> int:
        return 1 if self.quick else 3

    @property
    def large(self) -> int:
        return 0 if self.quick else 1_000_000

    @property
    def batches_per_run(self) -> int:
        return 4 if self.quick else 20

    @property
    def singles_per_run(self) -> int:
        return (20 if self.quick else 64) * self.single_clients

    @property
    def ingest_seconds(self) -> float:
        """The time bound of one ingestion run."""
        return 8.0 if self.quick else 30.0

    @property
    def read_seconds(self) -> float:
        return 0.8 if self.quick else 1.5

    def records_needed(self) -> int:
        per_run = self.batches_per_run * self.batch_size + self.singles_per_run
        # The two-server runs (PostgreSQL) take as many as one batch run each.
        two_servers = self.runs * self.batches_per_run * self.batch_size
        return self.small + (self.runs + self.profile) * per_run + two_servers


def parse_args(argv: list[str] | None) -> Config:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true", default=env("BENCH_QUICK", "") not in ("", "0"))
    p.add_argument("--backends", default=env("BENCH_BACKENDS", "sqlite,postgresql"))
    p.add_argument("--postgres-url", default=env("BENCH_POSTGRES_URL") or env("LEDGER_TEST_POSTGRES_URL"))
    p.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "2")))
    p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "16")))
    p.add_argument("--populate-seconds", type=float, default=float(env("BENCH_POPULATE_SECONDS", "180")))
    p.add_argument("--profile", action="store_true", help="sample the workers with py-spy in one extra run per step")
    p.add_argument("--update-docs", action="store_true", help="put the tables into docs/performance.md (full mode)")
    a = p.parse_args(argv)
    backends = tuple(b.strip() for b in a.backends.split(",") if b.strip())
    if unknown := set(backends) - {"sqlite", "postgresql"}:
        p.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return Config(a.quick, backends, a.postgres_url, a.workers, a.threads, a.populate_seconds, a.profile, a.update_docs)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": int(mem.split()[1]) / 1024**2,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "git": git.stdout.strip(),
    }


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)


def sign_all(corpus: Corpus, n: int, processes: int) -> list[Signed]:
    chunks = [(corpus.seed, lo, min(n, lo + 5000), "bn") for lo in range(0, n, 5000)]
    with mp.get_context("fork").Pool(processes, initializer=child_signals) as pool:
        parts = pool.map_async(sign_chunk, chunks).get(timeout=600)
    return [s for part in parts for s in part]


def measure_ceilings(cfg: Config, item: Signed, say: Progress) -> dict[str, dict[str, Any]]:
    """The machine-wide ceilings, each the median of ``cfg.runs`` runs."""
    secs = 0.5 if cfg.quick else 1.5
    message = RECORD_CONTEXT + item.canonical
    entry = entry_bytes(0, "record", item.canonical, item.signature)
    runs = range(cfg.runs)
    out = {
        "ed25519": report.figure(
            "Ed25519 verifications, all cores",
            "verifications/s",
            [ceilings.ed25519_verifications_per_second(message, secs, cfg.nproc) for _ in runs],
        ),
        "sha256": report.figure(
            "SHA-256 of 65-byte node inputs, 1 core",
            "hashes/s",
            [ceilings.sha256_nodes_per_second(secs) for _ in runs],
        ),
        "sha256_leaf": report.figure(
            f"SHA-256 leaf and node hash per {len(entry):,}-byte entry, 1 core",
            "leaves/s",
            [ceilings.sha256_leaves_per_second(entry, secs) for _ in runs],
        ),
    }
    out["ed25519"]["processes"] = cfg.nproc
    say(
        f"ceilings: Ed25519 {out['ed25519']['value']:,.0f} verifications/s ({cfg.nproc} processes), "
        f"SHA-256 {out['sha256']['value']:,.0f} node hashes/s and {out['sha256_leaf']['value']:,.0f} leaves/s (1 core)"
    )
    return out


def run(cfg: Config, say: Progress, stamp: str) -> dict[str, Any]:
    results: dict[str, Any] = {
        "format": "ledger-bench/1",
        "timestamp": stamp,
        "quick": cfg.quick,
        "machine": machine(),
        "config": {**asdict(cfg), "pg_url": bool(cfg.pg_url), "runs": cfg.runs, "large": cfg.large},
        "backends": {},
    }
    mode = "quick" if cfg.quick else "full"
    say(f"{mode} benchmark on {cfg.nproc} cores; load average {results['machine']['load_average']}")
    corpus = Corpus(secrets.token_bytes(32))
    corpus.check()
    n = cfg.records_needed()
    items = sign_all(corpus, n, cfg.nproc)
    say(f"signed {n:,} records (checked against the client's signing path)")
    results["ceilings"] = measure_ceilings(cfg, items[0], say)
    suite = Suite(cfg, corpus, items, {k: v["value"] for k, v in results["ceilings"].items()})
    for kind in cfg.backends:
        if kind == "postgresql" and not cfg.pg_url:
            results["backends"][kind] = {"skipped": "not run: set BENCH_POSTGRES_URL"}
            say("postgresql: skipped (set BENCH_POSTGRES_URL or LEDGER_TEST_POSTGRES_URL)")
            continue
        results["backends"][kind] = suite.run(kind, say, RESULTS, stamp)
    results["targets"] = report.targets(results)
    return results


def write_results(results: dict[str, Any], directory: Path, name: str, say: Progress) -> None:
    """``<directory>/<name>.json`` (every figure) and ``.md`` (the tables, also printed)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = report.machine_markdown(results) + "\n\n" + report.markdown(results)
    (directory / f"{name}.md").write_text(table)
    print("\n" + table)
    say(f"wrote {directory / name}.json and .md")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    say = Progress()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        with sigterm_interrupts():  # clean up (servers, schemas) on kill too
            results = run(cfg, say, stamp)
    except KeyboardInterrupt:
        say("interrupted: servers stopped, temporary databases removed")
        return 130
    results["elapsed_s"] = time.monotonic() - say.t0
    write_results(results, RESULTS, stamp, say)
    if cfg.update_docs and cfg.quick:
        say("quick mode: docs/performance.md left as it is (run the full benchmark to update it)")
    elif cfg.update_docs:
        report.update_docs(results, DOCS)
        say("updated docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
