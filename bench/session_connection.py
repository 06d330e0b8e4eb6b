"""CPU µs of one ``Session.connection()`` lookup in an open transaction,
against taking the Core ``Connection`` once (``ledger.db.session_connection``
on it) and ``Session.get_bind()``: what a feed page would save by taking its
connection once for its statements (docs/performance.md, session 11).

    .venv/bin/python -m bench.session_connection [--calls 20000] [--rounds 3]

On SQLite in memory and, if ``BENCH_POSTGRES_URL`` (else
``LEDGER_TEST_POSTGRES_URL``) is set, on PostgreSQL; each round times each
lookup ``--calls`` times with ``time.process_time``, taking turns.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from ledger.db import session_connection


def _per_call(calls: int, fn: Callable[[], Any]) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    urls = ["sqlite://"]
    pg = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
    if pg:
        urls.append(pg)
    for url in urls:
        engine = create_engine(url)
        with Session(engine) as s, s.begin():
            connection = session_connection(s)
            for _ in range(args.rounds):
                looked_up = _per_call(args.calls, s.connection)
                kept = _per_call(args.calls, functools.partial(session_connection, connection))
                bind = _per_call(args.calls, s.get_bind)
                print(
                    f"{engine.dialect.name:10} Session.connection() {looked_up:.2f} µs, "
                    f"kept Connection {kept:.2f} µs, Session.get_bind() {bind:.2f} µs"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
