"""CPU per read request in one process, beside the trivial endpoint's.

    .venv/bin/python -m bench.reads_cpu [--backends sqlite,postgresql] [--sizes 10000,300000]
        [--requests 1000] [--rounds 3] [--profile ENDPOINT] [--tile-cache TILES] [--against TREE]

The real application (``create_app`` called as gunicorn calls it, with WSGI environs
built beforehand, a fresh
database filled through the sequencer with opaque entries, 10,000 per
transaction) and, for each log size, the CPU time of this process
(``time.process_time``) per request of ``/healthz``, ``/checkpoint``,
inclusion proofs by index and by leaf hash, consistency proofs from an
earlier checkpoint (one is signed every 10,000 entries) to the latest, and
level-0 tiles, over the same random leaves, sizes and tiles, after a warm-up pass over them (as a serving
worker's caches are warm). Rounds alternate the endpoints; each figure is
the median of the rounds, and each endpoint's share is ``/healthz``'s CPU
per request over the endpoint's in the same run: the share of the trivial
endpoint's request rate one core would reach.

On PostgreSQL the database backend's CPU is not in these figures (the
full bench, ``bench.run``, counts it); this measures what the server's
Python spends. ``--profile ENDPOINT`` prints cProfile's top functions of one
extra pass over that endpoint. A measurement, not a test: every answer is
checked for status 200 only.

``--tile-cache TILES`` sets how many full tiles the log keeps
(``LEDGER_TILE_CACHE_TILES``); ``0`` keeps none, so every tile and proof
request is a miss, as most are for a worker serving random reads of a log
with more level-0 tiles than it keeps (or not yet warm).

``--against TREE`` measures this checkout's code and another's (e.g. a
worktree of main, with this file copied in) on the one filled log, each
round in a fresh child process per tree (its own warm-up pass first), the
trees taking turns and their order alternating; each figure is the median
of the rounds, every round shown.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from app import create_app, freeze_start_up_objects
from bench import turns
from bench.server import database
from keys.keyfile import write_signer
from keys.note import Signer
from ledger.log import Log
from ledger.tlog.merkle import record_hash
from ledger.tlog.tile import TILE_WIDTH, Tile

ORIGIN = "bench.example/reads"
ENDPOINTS = ("healthz", "checkpoint", "proof_index", "proof_hash", "consistency", "tile0")
#: Entries a transaction of the fill appends, each signing a checkpoint.
FILL_BATCH = 10_000


def _entry(i: int) -> bytes:
    return f"bench entry {i:09d} ".encode() * 8


def _fill(log: Log, size: int) -> list[bytes]:
    """Append ``size`` distinct entries; return their leaf hashes."""
    leaves: list[bytes] = []
    n = log.latest_size()
    while n < size:
        batch = [_entry(i) for i in range(n, min(size, n + FILL_BATCH))]
        log.sequencer.append(batch)
        leaves.extend(record_hash(d) for d in batch)
        n += len(batch)
    return leaves


def _paths(endpoint: str, size: int, leaves: list[bytes], rng: random.Random, count: int) -> list[str]:
    if endpoint == "healthz":
        return ["/healthz"] * count
    if endpoint == "checkpoint":
        return ["/checkpoint"] * count
    if endpoint == "proof_index":
        return [f"/api/v1/proofs/inclusion?leaf_index={rng.randrange(size)}" for _ in range(count)]
    if endpoint == "proof_hash":
        return [f"/api/v1/proofs/inclusion?leaf_hash={leaves[rng.randrange(size)].hex()}" for _ in range(count)]
    if endpoint == "consistency":
        signed = range(FILL_BATCH, size, FILL_BATCH)  # the earlier checkpoints of the fill
        return [f"/api/v1/proofs/consistency?first={rng.choice(signed)}" for _ in range(count)]
    full = size // TILE_WIDTH
    return ["/" + Tile(0, rng.randrange(full), TILE_WIDTH).path() for _ in range(count)]


def _environ(path: str) -> dict[str, Any]:
    """A GET's WSGI environ as gunicorn hands it over, built before the clock starts."""
    return EnvironBuilder(path=path.split("?")[0], query_string=path.partition("?")[2]).get_environ()


def _cpu_per_request(app: Flask, paths: list[str]) -> float:
    environs = [_environ(p) for p in paths]
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc: Any = None) -> Any:
        statuses.append(status)

    start = time.process_time()
    for env in environs:
        body = app(dict(env), start_response)
        b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
    cpu = (time.process_time() - start) / len(paths)
    bad = [(p, s) for p, s in zip(paths, statuses, strict=True) if not s.startswith("200")]
    if bad:
        raise RuntimeError(f"not 200: {bad[:3]}")
    return cpu


def _measure(app: Flask, size: int, leaves: list[bytes], requests: int, rounds: int) -> dict[str, float]:
    rng = random.Random(size)
    paths = {e: _paths(e, size, leaves, rng, requests) for e in ENDPOINTS}
    for e in ENDPOINTS:  # warm-up: the caches a serving worker has
        _cpu_per_request(app, paths[e])
    runs: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    for _ in range(rounds):
        for e in ENDPOINTS:
            runs[e].append(_cpu_per_request(app, paths[e]))
    return {e: statistics.median(v) for e, v in runs.items()}


def _measure_child(url: str, key_file: str, size: int, requests: int, tile_cache: int) -> dict[str, float]:
    """One round of :func:`_measure` on a log another process filled, with this tree's code."""
    app: Flask = create_app(_config(url, key_file, tile_cache))
    freeze_start_up_objects()
    try:
        leaves = [record_hash(_entry(i)) for i in range(size)]
        return _measure(app, size, leaves, requests, 1)
    finally:
        app.extensions["ledger"].close()


def _config(url: str, key_file: str, tile_cache: int) -> dict[str, Any]:
    return {
        "DATABASE_URL": url,
        "KEY_FILE": key_file,
        "ORIGIN": ORIGIN,
        "TILE_CACHE_TILES": tile_cache,
        "DERIVED_CHECK_SECONDS": 0,
        "EXPORT_CACHE_DIR": "",
    }


def _against(backend: str, size: int, url: str, key_file: str, args: argparse.Namespace) -> None:
    """Each endpoint with this tree's code and with ``--against``'s, taking
    turns (order alternating) in child processes; medians of the rounds."""
    trees = list(turns.trees(args.against).items())
    got: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for name, tree in trees if r % 2 == 0 else trees[::-1]:
            cmd = ["-m", "bench.reads_cpu", "--measure", url, key_file, str(size)]
            cmd += ["--requests", str(args.requests), "--tile-cache", str(args.tile_cache)]
            for e, cpu in turns.child_json(tree, cmd).items():
                got.setdefault((name, e), []).append(cpu)
    for name, _ in trees:
        base = statistics.median(got[name, "healthz"])
        cells = []
        for e in ENDPOINTS:
            med = statistics.median(got[name, e])
            shown = "/".join(f"{c * 1e6:.0f}" for c in got[name, e])
            cells.append(f"{e} {med * 1e6:6.1f} us {base / med:4.0%} ({shown})")
        print(f"{backend} {size:>9,} {name:8} " + "  ".join(cells), flush=True)


def _profile(app: Flask, paths: list[str]) -> None:
    prof = cProfile.Profile()
    prof.runcall(_cpu_per_request, app, paths)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(45)


def run(backend: str, sizes: list[int], args: argparse.Namespace) -> None:
    requests, rounds, profile, tile_cache = args.requests, args.rounds, args.profile, args.tile_cache
    pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp), pg_url) as db:
        key_file = Path(tmp) / "log.key"
        write_signer(key_file, Signer.generate(ORIGIN))
        app: Flask = create_app(_config(db.url, str(key_file), tile_cache))
        with app.app_context():
            log, _ = app.extensions["ledger"].initialise()
        freeze_start_up_objects()
        leaves: list[bytes] = []
        try:
            for size in sizes:
                leaves += _fill(log, size)[: size - len(leaves)]
                if args.against:
                    _against(backend, size, db.url, str(key_file), args)
                    continue
                cpu = _measure(app, size, leaves, requests, rounds)
                base = cpu["healthz"]
                cells = "  ".join(f"{e} {cpu[e] * 1e6:7.1f} us {base / cpu[e]:4.0%}" for e in ENDPOINTS)
                print(f"{backend} {size:>9,} (tile cache {tile_cache}): {cells}", flush=True)
                if profile:
                    _profile(app, _paths(profile, size, leaves, random.Random(0), requests))
        finally:
            app.extensions["ledger"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,300000")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=ENDPOINTS)
    parser.add_argument("--tile-cache", type=int, default=4096, help="full tiles kept (0: every read a miss)")
    parser.add_argument("--against", help="another checkout whose code to measure in turn (before a change)")
    parser.add_argument("--measure", nargs=3, metavar=("URL", "KEY_FILE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        url, key_file, size = args.measure
        print(json.dumps(_measure_child(url, key_file, int(size), args.requests, args.tile_cache)))
        return
    for backend in args.backends.split(","):
        run(backend, [int(s) for s in args.sizes.split(",")], args)


if __name__ == "__main__":
    main()
