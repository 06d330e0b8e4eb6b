"""CPU per page of the filtered feed in one process, for each common filter.

    .venv/bin/python -m bench.feed_cpu [--backends sqlite,postgresql] [--sizes 10000,200000]
        [--requests 100] [--rounds 3] [--web | --both] [--row-cache 0,5000]
        [--against TREE] [--profile FILTER] [--explain]

Issue 14 wants the filtered feed's p95 under 50 ms at 1M records under 16
clients; on the bench's 2 cores that is a question of CPU per page, which
this measures without a load generator competing for the cores: the real
application (``create_app`` called as gunicorn calls it, WSGI environs
built before the clock), a fresh database bulk-filled as the suite's 1M
stage fills it (a new one for each size; :func:`bench.ingest.populate`:
signed records, one in
eight an appeal or amendment of an earlier decision, so the decision
filters find follow-ups and ``superseded`` is true of some rows), then
for each log size and each of the bench's filters (:data:`bench.reads.FEED_PATHS`)
the CPU of this process (``time.process_time``) per first page of 50
records, and on PostgreSQL the CPU of the backends serving the app's
connections (found by ``application_name``), both per page. Each figure
is the median of the rounds; the first pass over every path is a warm-up.
``--web`` measures the HTML feed (``/records``, which also counts its
matches and shows each card's follow-ups) instead of the JSON one;
``--both`` measures both on each filled database (a fill of 200,000 takes
minutes, the measurement seconds); ``--row-cache 0,5000`` measures each
page with each of those ``FEED_ROW_CACHE`` settings in turn (rows drawn
afresh, rows kept), on the same database. ``--against TREE`` runs each
round's measurements in child processes, once with this checkout's code
and once with another checkout's (e.g. the commit before a change, with
this file copied in), taking turns, so before and after come from one run
on one database (``this`` and ``against`` in the output, each the median
of the rounds, every round shown).

``--profile FILTER`` prints cProfile's top functions of one extra pass
over that filter; ``--explain`` prints each statement's plan
(EXPLAIN QUERY PLAN / EXPLAIN) for each filter at each size. A measurement,
not a test: every answer is checked for status 200 and a non-empty page only.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from werkzeug.test import EnvironBuilder

from app import create_app, freeze_start_up_objects
from bench import turns
from bench.corpus import Corpus
from bench.reads import FEED_PATHS
from bench.server import ORIGIN
from bench.writes import PostgresBackends

SEED = bytes(range(32))
#: A short name for each filter of :data:`bench.reads.FEED_PATHS`, in order.
FILTERS = ("platform", "account_class", "rule", "action", "subject", "text", "date_range")


def _environ(path: str) -> dict[str, Any]:
    return EnvironBuilder(path=path.split("?")[0], query_string=path.partition("?")[2]).get_environ()


def _run(app: Flask, environs: list[dict[str, Any]], web: bool, check: bool = False) -> None:
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc: Any = None) -> Any:
        statuses.append(status)

    for env in environs:
        body = app(dict(env), start_response)
        data = b"".join(body)
        getattr(body, "close", lambda: None)()
        if not statuses[-1].startswith("200"):
            raise RuntimeError(f"{env['PATH_INFO']}?{env['QUERY_STRING']}: {statuses[-1]}")
        if check and not web and not json.loads(data)["records"]:
            raise RuntimeError(f"{env['QUERY_STRING']}: an empty page")


class Meter:
    """CPU seconds of this process and of the app's PostgreSQL backends."""

    def __init__(self, backends: PostgresBackends | None) -> None:
        self.backends = backends

    def per_page(self, app: Flask, environs: list[dict[str, Any]], web: bool) -> tuple[float, float | None]:
        db0 = self.backends.cpu() if self.backends else {}
        t0 = time.process_time()
        _run(app, environs, web)
        own = (time.process_time() - t0) / len(environs)
        if self.backends is None:
            return own, None
        db1 = self.backends.cpu()
        return own, sum(v - db0.get(pid, 0.0) for pid, v in db1.items()) / len(environs)


def paths(web: bool) -> dict[str, str]:
    """Each filter's first page: the JSON feed's, or the web page's (``--web``)."""
    return {
        name: p.replace("/api/v1/records", "/records") if web else p
        for name, p in zip(FILTERS, FEED_PATHS, strict=True)
    }


def measure(app: Flask, meter: Meter, requests: int, rounds: int, web: bool) -> dict[str, tuple[float, float | None]]:
    """Median CPU seconds per page (this process, the database's backends) of each filter."""
    environs = {name: [_environ(p)] * requests for name, p in paths(web).items()}
    for env in environs.values():  # warm-up: connections, caches, compiled statements
        _run(app, env[:5], web, check=True)
    runs: dict[str, list[tuple[float, float | None]]] = {name: [] for name in environs}
    for _ in range(rounds):
        for name, env in environs.items():
            runs[name].append(meter.per_page(app, env, web))
    out: dict[str, tuple[float, float | None]] = {}
    for name, got in runs.items():
        dbs = [d for _, d in got if d is not None]
        out[name] = (statistics.median(o for o, _ in got), statistics.median(dbs) if dbs else None)
    return out


def profile(app: Flask, path: str, requests: int, web: bool) -> None:
    prof = cProfile.Profile(time.process_time)  # CPU, not wall: the cores are shared
    prof.runcall(_run, app, [_environ(path)] * requests, web)
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``engine`` runs meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def before(_conn: Connection, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def explain(app: Flask, kind: str, web: bool) -> None:
    """Print the plan of every statement each filter's page runs."""
    engine = app.extensions["ledger"].log.engine
    for name, path in paths(web).items():
        with statements(engine) as seen:
            _run(app, [_environ(path)], web)
        print(f"--- {name}: {path}")
        with engine.connect() as conn:
            for sql, params in seen:
                if "record_index" not in sql:
                    continue
                word = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
                plan = conn.exec_driver_sql(word + sql, params).all()
                print("  " + " ".join(sql.split())[:160])
                for row in plan:
                    print("    " + (str(row[-1]) if kind == "sqlite" else str(row[0])))


def _app(url: str, key_file: str, kept: str | None) -> Flask:
    rows = {} if kept is None else {"FEED_ROW_CACHE": int(kept)}
    config = {"DATABASE_URL": url, "KEY_FILE": key_file, "ORIGIN": ORIGIN}
    app = create_app(config | rows | {"DERIVED_CHECK_SECONDS": 0, "EXPORT_CACHE_DIR": ""})
    with app.app_context():
        app.extensions["ledger"].initialise()
    freeze_start_up_objects()
    return app


def measure_all(
    url: str, key_file: str, admin_url: str | None, app_name: str, args: argparse.Namespace
) -> dict[str, dict[str, tuple[float, float | None]]]:
    """Each filter's CPU seconds per page (this process, the backends) with
    this tree's code, by "<page> <rows kept>": ``--rounds`` rounds each."""
    out: dict[str, dict[str, tuple[float, float | None]]] = {}
    for kept in args.row_cache.split(",") if args.row_cache else [None]:
        app = _app(url, key_file, kept)
        backends = PostgresBackends(admin_url, app_name) if admin_url else None
        try:
            for web in (False, True) if args.both else (args.web,):
                page = ("web " if web else "json") + ("" if kept is None else f" rows kept {kept:>5}")
                out[page] = measure(app, Meter(backends), args.requests, args.rounds, web)
        finally:
            if backends is not None:
                backends.close()
            app.extensions["ledger"].close()
    return out


def _child(tree: Path, url: str, key_file: str, admin_url: str | None, app_name: str, args: argparse.Namespace) -> Any:
    """:func:`measure_all` run by ``tree``'s code in a child process, one round."""
    cmd = ["-m", "bench.feed_cpu", "--measure", url, key_file, admin_url or "", app_name]
    cmd += ["--requests", str(args.requests), "--rounds", "1"]
    cmd += ["--both"] if args.both else ["--web"] if args.web else []
    cmd += ["--row-cache", args.row_cache] if args.row_cache else []
    return turns.child_json(tree, cmd)


def _against(kind: str, size: int, url: str, key_file: str, admin_url: str | None, args: argparse.Namespace) -> None:
    """Each page with this tree's code and with ``--against``'s, taking turns
    every round in child processes on the one database; medians of the rounds."""
    trees = turns.trees(args.against)
    got: dict[tuple[str, str, str], list[tuple[float, float | None]]] = {}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            app_name = f"bench-feed-{secrets.token_hex(4)}"
            child_url = url + (f"&application_name={app_name}" if kind == "postgresql" else "")
            for page, filters in _child(tree, child_url, key_file, admin_url, app_name, args).items():
                for f, (own, dbs) in filters.items():
                    got.setdefault((page, f, name), []).append((own, dbs))
    for page, f, name in sorted(got, key=lambda k: (k[0], FILTERS.index(k[1]), k[2] != "this")):
        runs = got[page, f, name]
        own = statistics.median(o for o, _ in runs)
        dbs = [d for _, d in runs if d is not None]
        extra = f"  + backend {statistics.median(dbs) * 1e3:6.2f} ms" if dbs else ""
        shown = " ".join(f"{o * 1e3:.2f}" for o, _ in runs)
        print(f"{kind} {page} {size:>9,} {f:14} {name:8} {own * 1e3:6.2f} ms CPU/page{extra}  ({shown})", flush=True)


def run(kind: str, size: int, args: argparse.Namespace, pg_url: str | None) -> None:
    """Measure each filter's page on a new database of ``kind`` filled to ``size`` entries."""
    app_name = f"bench-feed-{secrets.token_hex(4)}"
    with turns.filled_log(kind, pg_url, Corpus(SEED), size) as (db, key_file):
        if args.against:
            _against(kind, size, db.url, str(key_file), db.admin_url, args)
            if args.profile:  # this checkout's code, in this process
                app = _app(db.url, str(key_file), None)
                try:
                    for web in (False, True) if args.both else (args.web,):
                        print(f"--- profile: {kind} {'web' if web else 'json'} {args.profile} at {size:,}")
                        _run(app, [_environ(paths(web)[args.profile])] * 5, web)  # warm-up
                        profile(app, paths(web)[args.profile], args.requests, web)
                finally:
                    app.extensions["ledger"].close()
            return
        url = db.url + (f"&application_name={app_name}" if kind == "postgresql" else "")
        for kept in args.row_cache.split(",") if args.row_cache else [None]:
            app = _app(url, str(key_file), kept)
            backends = PostgresBackends(db.admin_url, app_name) if db.admin_url else None
            label = "" if kept is None else f" rows kept {kept:>5}"
            try:
                for web in (False, True) if args.both else (args.web,):
                    if args.explain:
                        explain(app, kind, web)
                    got = measure(app, Meter(backends), args.requests, args.rounds, web)
                    page = "web " if web else "json"
                    for name, (own, dbs) in got.items():
                        extra = "" if dbs is None else f"  + backend {dbs * 1e3:6.2f} ms"
                        print(
                            f"{kind} {page}{label} {size:>9,} {name:14} {own * 1e3:6.2f} ms CPU/page{extra}",
                            flush=True,
                        )
                    if args.profile:
                        profile(app, paths(web)[args.profile], args.requests, web)
            finally:
                if backends is not None:
                    backends.close()
                app.extensions["ledger"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    pages = parser.add_mutually_exclusive_group()
    pages.add_argument("--web", action="store_true")
    pages.add_argument("--both", action="store_true")
    parser.add_argument("--profile", choices=FILTERS)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--row-cache", help="FEED_ROW_CACHE values to measure in turn on each database, e.g. 0,5000")
    parser.add_argument("--against", help="another checkout whose code to measure in turn (before a change)")
    child = ("URL", "KEY_FILE", "ADMIN_URL", "APP_NAME")
    parser.add_argument("--measure", nargs=4, metavar=child, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        url, key_file, admin_url, app_name = args.measure
        print(json.dumps(measure_all(url, key_file, admin_url or None, app_name, args)))
        return
    for kind, pg_url in turns.backends(args.backends):
        for size in (int(n) for n in args.sizes.split(",")):
            run(kind, size, args, pg_url)


if __name__ == "__main__":
    main()
