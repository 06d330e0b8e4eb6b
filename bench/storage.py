"""Bytes on disk per record, quickly: ``python -m bench.storage [--records N]``.

The full suite measures storage after everything its API steps wrote
(bench/suite.py). This measures the same bytes the same way
(:meth:`bench.server.Database.disk_bytes`: the SQLite file and its WAL
after a truncating checkpoint, PostgreSQL's ``pg_total_relation_size``),
less the empty log, for ``N`` records bulk-appended as the suite's 1M stage
appends them (:func:`bench.ingest.populate`: the entry and its
``record_index`` row), with no server. Bytes do not depend on a busy CPU, so a
run is deterministic up to the log's timestamps, and 20,000 records take
well under a minute on each database. By table and by index, so a change
to one of them can be judged on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import ingest
from bench.corpus import Corpus
from bench.server import ORIGIN, Database, database
from ledger import storage
from ledger.log import LogProvider
from ledger.records.entries import entry_bytes as ledger_entry_bytes

SEED = bytes(range(32))

_SQLITE_OBJECTS = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
_PG_OBJECTS = """
SELECT c.relname, pg_relation_size(c.oid) + COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relkind IN ('r', 'i')
"""


def object_bytes(db: Database) -> dict[str, int]:
    """Bytes per table and per index (a PostgreSQL table with its TOAST)."""
    eng = create_engine(db.url)
    try:
        with eng.connect() as conn:
            if db.kind == "sqlite":
                rows = conn.exec_driver_sql(_SQLITE_OBJECTS).all()
            else:
                rows = conn.execute(text(_PG_OBJECTS), {"schema": db.schema}).all()
    finally:
        eng.dispose()
    return {name: int(size) for name, size in rows}


def measure(kind: str, n: int, pg_url: str | None, corpus: Corpus) -> dict[str, Any]:
    """Append ``n`` records to a new log on ``kind``; return bytes per record, overall and by object."""
    with tempfile.TemporaryDirectory(prefix=f"ledger-storage-{kind}-") as d, database(kind, Path(d), pg_url) as db:
        key_file = Path(d) / "log.key"
        first = ingest.new_log(db.url, key_file, corpus)
        empty, empty_objects = db.disk_bytes(), object_bytes(db)
        size, _ = ingest.populate(db.url, key_file, corpus, first + n, math.inf, lambda *_: None)
        used = db.disk_bytes() - empty
        objects = {k: v - empty_objects.get(k, 0) for k, v in object_bytes(db).items()}
        provider = LogProvider(db.url, str(key_file), ORIGIN)
        try:
            with provider.log.read() as s:
                entry_total = sum(map(len, storage.read_entries(s, first, size)))
        finally:
            provider.close()
    # As bench/suite.py: an entry frames the canonical record with a
    # logged_at and a signature object of fixed lengths.
    sample = corpus.sign(0)
    frame = len(ledger_entry_bytes(0, "record", sample.canonical, sample.signature)) - len(sample.canonical)
    count = size - first
    canonical = entry_total - count * frame
    return {
        "backend": kind,
        "records": count,
        "bytes_per_record": used / count,
        "canonical_bytes_per_record": canonical / count,
        "entry_bytes_per_record": entry_total / count,
        "ratio_to_canonical": used / canonical,
        "budget_bytes_per_record": (1.5 * canonical + 100 * count) / count,
        "object_bytes_per_record": {
            k: round(v / count, 1) for k, v in sorted(objects.items(), key=lambda kv: -kv[1]) if v / count >= 0.5
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("LEDGER_TEST_POSTGRES_URL")
    corpus = Corpus(SEED)
    for kind in args.backends.split(","):
        if kind == "postgresql" and not pg_url:
            print("postgresql: skipped (set BENCH_POSTGRES_URL)")
            continue
        print(json.dumps(measure(kind, args.records, pg_url, corpus), indent=1))


if __name__ == "__main__":
    main()
