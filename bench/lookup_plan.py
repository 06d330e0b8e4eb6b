"""The submissions' lookup of logged IDs (ledger/submit.py): its plan and CPU by log size.

    .venv/bin/python -m bench.lookup_plan [--backends sqlite,postgresql] [--sizes 10000,30000,100000]
        [--groups 1,100,1000,2000] [--rounds 5]

One log per backend, grown by the bulk append (bench/ingest.py) to each size
in turn. At each size, after ``ANALYZE`` (PostgreSQL, as autovacuum would
after such a growth), for each group size, of new IDs (the next bulk IDs, as
the next batch brings) and of logged ones (a random sample, as a resubmission
or follow-ups name), each form of the lookup runs in turn, round by round:

- PostgreSQL ``in, seqscan off``: the statement before session 11,
  ``platform = ? AND record_id IN (...)``, in a transaction with
  ``enable_seqscan`` off, as the append transaction then ran it; ``in``: the
  same without the setting (what any other transaction got); ``this``: the
  lookup as this checkout's ``ledger.submit.lookup_statement`` makes it.
- SQLite ``this`` (``IN (...)``, kept) and ``json_each``: the IDs as one JSON
  parameter, ``record_id IN (SELECT value FROM json_each(?))``.

Each is reported with its plan (PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``
after the timed rounds: the nodes, shared buffers, execution ms; SQLite:
``EXPLAIN QUERY PLAN``) and its CPU a statement, median (range) of the
rounds: on PostgreSQL the backend's (``/proc/<pid>/schedstat``, the
statement's whole server side: parse, plan, execution, sending) and this
process's (psycopg); on SQLite this process's, where SQLite runs. The
connection never prepares (``prepare_threshold=None``): every run is planned
for its IDs, as the server's first runs of a statement on a connection are
(psycopg prepares on the 5th; ``IN (...)`` of a new length is a new
statement).

A measurement, not a test: nothing here asserts a time; each run's rows are
checked (every logged ID found, no new one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from bench import ingest
from bench.corpus import PLATFORM, Corpus
from bench.server import database
from bench.turns import backends
from ledger.db import driver_sql, in_list, make_engine
from ledger.submit import LOOKUP_SQL, lookup_statement

#: A form of the lookup: (connection, platform, ids) -> rows.
Form = Callable[[Connection, str, list[str]], list[tuple[Any, ...]]]


def _this(sqlite: bool) -> Form:
    return lambda conn, platform, ids: driver_sql(conn, *lookup_statement(sqlite, platform, ids))[0]


def _in_list(conn: Connection, platform: str, ids: list[str]) -> list[tuple[Any, ...]]:
    return driver_sql(conn, LOOKUP_SQL + in_list(len(ids)), [platform, *ids])[0]


_JSON_EACH = LOOKUP_SQL + "(SELECT value FROM json_each(?))"


def _json_each(conn: Connection, platform: str, ids: list[str]) -> list[tuple[Any, ...]]:
    return driver_sql(conn, _JSON_EACH, [platform, json.dumps(ids)])[0]


def forms(kind: str) -> dict[str, Form]:
    if kind == "sqlite":
        return {"this (IN list)": _this(True), "json_each": _json_each}
    return {NO_SEQSCAN: _in_list, "in": _in_list, "this": _this(False)}


#: The form run on a connection of its own with sequential scans off (the
#: setting made once, so that its cost is not counted: before session 11 it
#: rode in a round trip the append transaction made anyway).
NO_SEQSCAN = "in, seqscan off"


def _statement(kind: str, name: str, platform: str, ids: list[str]) -> tuple[str, list[Any]]:
    if name.startswith("this"):
        return lookup_statement(kind == "sqlite", platform, ids)
    if name == "json_each":
        return _JSON_EACH, [platform, json.dumps(ids)]
    return LOOKUP_SQL + in_list(len(ids)), [platform, *ids]


def _nodes(plan: dict[str, Any], out: list[str]) -> list[str]:
    where = plan.get("Index Name") or plan.get("Relation Name") or plan.get("Function Name")
    out.append(plan["Node Type"] + (f" ({where})" if where else ""))
    for child in plan.get("Plans", []):
        _nodes(child, out)
    return out


def _plan(conn: Connection, kind: str, name: str, platform: str, ids: list[str]) -> str:
    sql, params = _statement(kind, name, platform, ids)
    if kind == "sqlite":
        rows, _ = driver_sql(conn, "EXPLAIN QUERY PLAN " + sql, params)
        return " / ".join(str(r[-1]) for r in rows)
    rows, _ = driver_sql(conn, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
    conn.rollback()
    doc = rows[0][0][0]
    top = doc["Plan"]
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    return f"{' > '.join(_nodes(top, []))}; {buffers} buffers, {doc['Execution Time']:.2f} ms executing"


def _schedstat_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def measure(
    kind: str, conns: dict[str, tuple[Connection, int | None]], platform: str, ids: list[str], expect: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Backend and process CPU µs a statement of each form, one list per form (a value a round)."""
    reps = max(3, 400 // len(ids))
    server: dict[str, list[float]] = {name: [] for name in forms(kind)}
    client: dict[str, list[float]] = {name: [] for name in forms(kind)}
    for _ in range(rounds):
        for name, form in forms(kind).items():
            conn, backend = conns[name]
            b0 = _schedstat_ns(backend) if backend else 0
            c0 = time.process_time()
            for _ in range(reps):
                rows = form(conn, platform, ids)
                conn.rollback()  # each run a transaction, as under the sequencer's
            client[name].append((time.process_time() - c0) / reps * 1e6)
            if backend:
                server[name].append((_schedstat_ns(backend) - b0) / reps / 1e3)
            if len(rows) != expect:
                raise RuntimeError(f"{name}: {len(rows)} rows, not {expect}")
    return server, client


def _cell(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.0f} ({min(xs):,.0f}–{max(xs):,.0f})" if xs else "—"


def run_backend(kind: str, pg_url: str | None, args: argparse.Namespace) -> str:
    sizes = [int(s) for s in args.sizes.split(",")]
    groups = [int(g) for g in args.groups.split(",")]
    corpus = Corpus(os.urandom(32))
    rng = random.Random(11)
    lines = [f"## {kind}", ""]
    plans: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp), pg_url) as db:
        key_file = Path(tmp) / "log.key"
        first = ingest.new_log(db.url, key_file, corpus)
        extra: dict[str, Any] = {} if kind == "sqlite" else {"connect_args": {"prepare_threshold": None}}
        engine = make_engine(db.url, **extra)
        try:
            head = ["size", "group", "IDs"]
            names = list(forms(kind))
            cols = [f"{n}: {part}" for n in names for part in (["backend", "client"] if kind != "sqlite" else ["CPU"])]
            lines.append("| " + " | ".join(head + cols) + " |")
            lines.append("|---" * (len(head) + len(cols)) + "|")
            for size in sizes:
                number = max(0, db_size(engine) - first)
                t0 = time.perf_counter()
                reached, _ = ingest.populate(db.url, key_file, corpus, size, math.inf, lambda *_: None, number)
                db.analyze()
                print(f"{kind}: filled to {reached:,} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                with ExitStack() as stack:
                    conns: dict[str, tuple[Connection, int | None]] = {}
                    for name in names:
                        conn = stack.enter_context(engine.connect())
                        backend = None
                        if kind != "sqlite":
                            backend = driver_sql(conn, "SELECT pg_backend_pid()")[0][0][0]
                            if name == NO_SEQSCAN:
                                driver_sql(conn, "SET enable_seqscan = off")
                            conn.commit()
                        conns[name] = conn, backend
                    conn = conns[names[-1]][0]
                    logged = [r[0] for r in driver_sql(conn, "SELECT record_id FROM record_index")[0]]
                    conn.rollback()
                    held = reached - first
                    for g in groups:
                        cases = {
                            "new": [f"bk-{n:010d}" for n in range(held, held + g)],
                            "logged": sorted(rng.sample(logged, g)),
                        }
                        for label, ids in cases.items():
                            expect = g if label == "logged" else 0
                            server, client = measure(kind, conns, PLATFORM, ids, expect, args.rounds)
                            cells = []
                            for n in names:
                                cells += (
                                    [_cell(server[n]), _cell(client[n])] if kind != "sqlite" else [_cell(client[n])]
                                )
                            lines.append(f"| {reached:,} | {g:,} | {label} | " + " | ".join(cells) + " |")
                            print(lines[-1], file=sys.stderr, flush=True)
                            for n in names:
                                plan = _plan(conns[n][0], kind, n, PLATFORM, ids)
                                plans.append(f"- {reached:,}, {g:,} {label}, {n}: {plan}")
        finally:
            engine.dispose()
    unit = "µs a statement, median (range) of rounds" + ("; backend: its schedstat CPU" if kind != "sqlite" else "")
    return "\n".join([*lines, "", unit, "", "Plans:", "", *plans, ""])


def db_size(engine: Any) -> int:
    with engine.connect() as conn:
        rows, _ = driver_sql(conn, "SELECT size FROM log_head WHERE id = 1")
        conn.rollback()
    return int(rows[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=os.environ.get("BENCH_BACKENDS", "sqlite,postgresql"))
    parser.add_argument("--sizes", default="10000,30000,100000", help="log sizes, rising (default 10k, 30k, 100k)")
    parser.add_argument("--groups", default="1,100,1000,2000", help="IDs a lookup (default 1, 100, 1000, 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of turns at each size and group (default 5)")
    args = parser.parse_args()
    load = os.getloadavg()
    out = [f"# lookup_plan: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", ""]
    for kind, pg_url in backends(args.backends):
        out.append(run_backend(kind, pg_url, args))
    print("\n".join(out))


if __name__ == "__main__":
    main()
