"""What the ``--against`` benches share (``audit_cpu``, ``derived_watch_cpu``,
``feed_cpu``, ``lone_commit``): the backends asked for, a log filled once,
and this checkout's code and another's (an older commit's worktree) each
run in a child process from its own tree, taking turns on that one log, so
that a before and after are measured in one run on the same machine.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import ingest
from bench.corpus import Corpus
from bench.server import Database, database

#: This checkout: the tree whose code the bench's own process runs.
HERE = Path(__file__).resolve().parent.parent


def trees(against: str | None) -> dict[str, Path]:
    """This checkout as "this", and ``--against``'s as "against" if given."""
    return {"this": HERE} | ({"against": Path(against).resolve()} if against else {})


def child_json(tree: Path, argv: list[str]) -> Any:
    """Run ``python argv`` with ``tree``'s code (its directory first on the
    path) and return the JSON on the last line it prints."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, *argv], cwd=tree, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def postgres_url() -> str | None:
    """The PostgreSQL database the benches use: ``BENCH_POSTGRES_URL``, else
    ``LEDGER_TEST_POSTGRES_URL``."""
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")


def backends(names: str) -> Iterator[tuple[str, str | None]]:
    """Each backend of the comma-separated ``names`` with :func:`postgres_url`;
    PostgreSQL is skipped, saying so, when it is unset."""
    pg_url = postgres_url()
    for kind in names.split(","):
        if kind == "postgresql" and not pg_url:
            print("postgresql: skipped (set BENCH_POSTGRES_URL)")
            continue
        yield kind, pg_url


def fill(db: Database, key_file: Path, corpus: Corpus, size: int) -> None:
    """Grow the log to ``size`` entries by the 1M stage's bulk append, then
    ANALYZE as autovacuum would soon after a bulk load (PostgreSQL only)."""
    started = time.perf_counter()
    # ingest.populate gives its own PostgreSQL appends a longer statement timeout.
    reached, _ = ingest.populate(db.url, key_file, corpus, size, math.inf, lambda *_: None)
    if reached < size:
        raise RuntimeError(f"filled to {reached} of {size}")
    db.analyze()
    print(f"{db.kind}: filled to {size:,} in {time.perf_counter() - started:.0f} s", flush=True)


@contextmanager
def filled_log(kind: str, pg_url: str | None, corpus: Corpus, size: int) -> Iterator[tuple[Database, Path]]:
    """A new database of ``kind`` holding a log of ``size`` entries of
    ``corpus``'s records, and the log's key file; both gone afterwards."""
    corpus.check()
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp), pg_url) as db:
        key_file = Path(tmp) / "log.key"
        ingest.new_log(db.url, key_file, corpus)
        fill(db, key_file, corpus, size)
        yield db, key_file
