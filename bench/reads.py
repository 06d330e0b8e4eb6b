"""Reading the log: proofs, tiles, the checkpoint and the feed under load,
bulk export, and the auditor's client (mirror, full verification).

Every read benchmark checks what it got: proofs are verified against the
signed checkpoint they come with (``ledger.tlog.verify``), tiles have the size
their path promises, feed pages are not empty, and exports hold one line
per entry, so an endpoint that failed fast cannot pass for a fast one.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import multiprocessing as mp
import os
import random
import time
import urllib.request
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import create_engine, select

from bench import child_signals, cpu, loadgen
from bench.profile import sampling
from keys.note import Verifier
from ledger.db import hashes
from ledger.tlog.tile import TILE_HEIGHT, TILE_WIDTH, Tile
from ledger.tlog.verify import verify_checkpoint, verify_inclusion

#: The cheapest Flask endpoint the app serves: the same WSGI stack, request
#: handling and security headers as every read, no database. (A static
#: file would also stat the file and compute its ETag.)
TRIVIAL = "trivial endpoint"
TRIVIAL_PATH = "/healthz"
#: The filtered feed: the filters issue 14 names as the most used (platform,
#: account class, rule, action, subject, text search, date range), in turn,
#: each matching a quarter or more of the bench's records (bench/corpus.py);
#: the decision filters also find the appeals and amendments of the decisions
#: they match, which one bulk record in eight is.
FEED_PATHS = [
    "/api/v1/records?" + q
    for q in (
        "platform=bench-social",
        "account_class=legislator",
        "rule_id=legal/local-law",
        "action=geo_block",
        "subject_key=Lq8Zt2mXv5Rk1Wc9Yp4Hn7Bd3Gs6Fa0Ju-Ne_Ko2Tr",
        "q=candidata",
        "decided_from=2026-04-01&decided_to=2026-05-15",
    )
]
#: The most requests one client process can plausibly send per second;
#: bounds how many requests are prepared for a timed run.
MAX_RATE = 40_000


class BadRead(Exception):
    """A read answer that does not check out."""


def sample_leaf_hashes(db_url: str, size: int, rng: random.Random, count: int = 2000) -> list[bytes]:
    wanted = sorted(rng.sample(range(size), min(count, size)))
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            stmt = select(hashes.c.hash).where(hashes.c.level == 0, hashes.c.idx.in_(wanted))
            return [bytes(r.hash) for r in conn.execute(stmt)]
    finally:
        engine.dispose()


def tile_paths(size: int, level: int, rng: random.Random, count: int = 2000) -> list[str]:
    """Random full tiles of ``level`` in a tree of ``size``, or its one partial tile."""
    hashes_at_level = size >> (TILE_HEIGHT * level)
    full = hashes_at_level // TILE_WIDTH
    if full:
        return ["/" + Tile(level, rng.randrange(full)).path() for _ in range(count)]
    return ["/" + Tile(level, 0, hashes_at_level % TILE_WIDTH).path()]


def read_paths(size: int, leaf_hashes: list[bytes], rng: random.Random) -> dict[str, list[str]]:
    return {
        TRIVIAL: [TRIVIAL_PATH],
        "checkpoint": ["/checkpoint"],
        "inclusion proof by index": [f"/api/v1/proofs/inclusion?leaf_index={rng.randrange(size)}" for _ in range(2000)],
        "inclusion proof by hash": [f"/api/v1/proofs/inclusion?leaf_hash={h.hex()}" for h in leaf_hashes],
        "tile, level 0": tile_paths(size, 0, rng),
        "tile, level 1": tile_paths(size, 1, rng),
        "filtered feed page": FEED_PATHS,
    }


def measure_reads(
    port: int,
    paths: dict[str, list[str]],
    clients: int,
    seconds: float,
    runs: int,
    verifier: Verifier,
    progress: Callable[[str, int, loadgen.Result], None],
    probe: cpu.Probe | None = None,
) -> dict[str, list[loadgen.Result]]:
    """Run every endpoint ``runs`` times, interleaved, after a short warm-up;
    ``probe`` counts the server's CPU (``Server.cpu_probe``)."""
    out: dict[str, list[loadgen.Result]] = {name: [] for name in paths}
    for run in range(-1, runs):
        for name, ps in paths.items():
            secs = min(0.2, seconds) if run < 0 else seconds
            reqs = [loadgen.Request("GET", p) for p in ps]
            n = int(secs * MAX_RATE)
            reqs = (reqs * (n // len(reqs) + 1))[:n]
            res = loadgen.run(loadgen.Load(port, reqs, clients, secs, keep_bodies=1, expect=(200,), probe=probe))
            check_read(name, res, verifier)
            if run >= 0:
                out[name].append(res)
                progress(name, run, res)
    return out


def check_read(name: str, res: loadgen.Result, verifier: Verifier) -> None:
    if res.errors or not res.bodies:
        raise BadRead(f"{name}: {res.errors} errors, e.g. {res.error_sample}")
    for _, body in res.bodies:
        if name.startswith("inclusion proof"):
            ans = json.loads(body)
            cp = verify_checkpoint(ans["checkpoint"]["signed_note"].encode(), verifier)
            path = [base64.b64decode(h, validate=True) for h in ans["inclusion_path"]]
            verify_inclusion(base64.b64decode(ans["leaf_hash"], validate=True), ans["leaf_index"], path, cp)
        elif name == "checkpoint":
            verify_checkpoint(body, verifier)
        elif name.startswith("tile") and len(body) % 32:
            raise BadRead(f"{name}: a tile of {len(body)} bytes")
        elif name == "filtered feed page" and not json.loads(body)["records"]:
            raise BadRead("the filtered feed page is empty")


def measure_export(
    port: int, start: int, end: int, probe: cpu.Probe | None = None, layout: str = "stream"
) -> loadgen.Result:
    """Stream entries [start, end) as gzip NDJSON in ``layout``; check one line per entry."""
    path = f"/api/v1/export?start={start}&end={end}&format=ndjson&layout={layout}"
    req = loadgen.Request("GET", path, weight=end - start)
    res = loadgen.run(loadgen.Load(port, [req], 1, 600, processes=1, keep_bodies=1, expect=(200,), probe=probe))
    if res.errors or not res.bodies:
        raise BadRead(f"export: {res.error_sample}")
    lines = gzip.decompress(res.bodies[0][1]).count(b"\n")
    if lines != end - start + 1:  # a header line, then one line per entry
        raise BadRead(f"export of [{start}, {end}) has {lines} lines")
    return res


def find_statistics_path(base_url: str) -> str | None:
    """The evenness statistics endpoint, if the OpenAPI document lists one
    that takes no path parameters (issue 5 adds it)."""
    try:
        with urllib.request.urlopen(base_url + "/api/v1/openapi.json", timeout=30) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):
        return None
    for path in doc.get("paths", {}):
        if ("evenness" in path or "statistics" in path) and "{" not in path:
            return str(path)
    return None


def measure_statistics(port: int, path: str, repeats: int = 50) -> tuple[float, loadgen.Result]:
    """Seconds for the first (cold) answer, then the cached answers' results."""
    cold = loadgen.run(loadgen.Load(port, [loadgen.Request("GET", path)], 1, 600, processes=1, expect=(200,)))
    if cold.errors:
        raise BadRead(f"statistics: {cold.error_sample}")
    reqs = [loadgen.Request("GET", path)] * repeats
    warm = loadgen.run(loadgen.Load(port, reqs, 1, 60, processes=1, expect=(200,)))
    return cold.latencies[0], warm


def time_client(
    command: str, argv: list[str], log: Path, timeout: float, profile: Path | None = None
) -> tuple[float | None, str]:
    """Run the client's ``command`` in a child process; return (seconds, "") or (None, why not).

    The clock covers the command alone, not the interpreter's start or
    imports. With ``profile``, py-spy samples the child meanwhile.
    """
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    # Not a daemon: the operator's audit forks its workers, which a daemonic
    # process may not; the child is killed below however this returns.
    proc = ctx.Process(target=_client_child, args=(command, argv, log, send))
    proc.start()
    send.close()
    try:
        with sampling([proc.pid or 0], profile) if profile else contextlib.nullcontext():
            finished = recv.poll(timeout)
        if not finished:
            return None, f"did not finish within {timeout:.0f} s"
        status, value = recv.recv()
    except EOFError:
        return None, f"the child process died; see {log}"
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return (float(value), "") if status == "ok" else (None, str(value))


def _client_child(command: str, argv: list[str], log: Path, send: Connection) -> None:
    child_signals()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if command == "operator-audit":
        send.send(_operator_audit(*argv))
        return
    try:
        import click

        if command == "mirror":
            from client.mirror import mirror_cmd as cmd
        else:
            from client.audit import verify as cmd
    except Exception as e:
        send.send(("unavailable", f"not yet available ({type(e).__name__}: {e})"))
        return
    t0 = time.perf_counter()
    try:
        code = cmd.main(args=argv, prog_name=f"mdl {command}", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except (click.ClickException, SystemExit, Exception) as e:
        send.send(("failed", f"failed ({type(e).__name__}: {e}); see {log}"))
        return
    elapsed = time.perf_counter() - t0
    if code not in (None, 0):
        send.send(("failed", f"exited with status {code}; see {log}"))
    else:
        send.send(("ok", elapsed))


def _operator_audit(db_url: str, key_file: str) -> tuple[str, object]:
    """What ``flask --app app ledger audit`` does, timed without the CLI's start."""
    from bench.server import ORIGIN
    from ledger.audit import audit
    from ledger.log import LogProvider

    provider = LogProvider(db_url, key_file, ORIGIN)
    try:
        t0 = time.perf_counter()
        log = provider.log
        with log.read() as s:
            report = audit(s, log.verifier)
        elapsed = time.perf_counter() - t0
    finally:
        provider.close()
    return ("ok", elapsed) if report.ok else ("failed", f"audit found problems: {report.problems[0]}")
