"""Writing to the log: submissions through the API, and bulk appends.

Submissions go through the load generator to the real server; a sample of
the answers is then verified as a platform's client would (the checkpoint's
signature, each entry rebuilt from the record and ``logged_at``, its leaf
hash and inclusion proof), so a fast server that answered nonsense would
fail the benchmark instead of winning it.

:func:`populate` grows the log to a million entries for the read
benchmarks without HTTP: in the bench process, through the sequencer's own
``sequence`` with a plan that writes what the committer writes for a new
record (the entry and its ``record_index`` row), 10,000
entries per transaction. Only the per-request work (parsing, schema and
signature checks, HTTP) is skipped; the entries are signed records all the
same, so every audit of the result passes.

Everything about a bulk record that does not depend on the log (its
signature, its entry, the entry's stored form and its rows) is made in a
helper process (:func:`bench.corpus.entry_chunk`), for the leaf index the
chunk will have; the appending process only checks that index, hashes the
leaves, signs the checkpoint and writes. The appender was the limit: it
spent ~40 of its ~200 us an entry compressing the entry, which is pure.
"""

from __future__ import annotations

import base64
import json
import multiprocessing as mp
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from multiprocessing.pool import AsyncResult
from pathlib import Path
from unittest import mock

from sqlalchemy import Connection, event

from bench import child_signals, cpu, loadgen
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus, EntryChunk, Signed, batch_body, entry_chunk
from bench.server import ORIGIN
from client.signing import record_entry
from keys.note import Verifier
from ledger import storage
from ledger.db import is_sqlite
from ledger.log import Log, LogProvider
from ledger.query import insert_index
from ledger.sequencer import MAX_BATCH, Plan
from ledger.tlog.merkle import record_hash
from ledger.tlog.verify import verify_checkpoint, verify_entry

RECORDS_PATH = "/api/v1/records"


class WrongAnswer(Exception):
    """The server answered something that does not verify."""


def new_log(url: str, key_file: Path, corpus: Corpus) -> int:
    """Initialise the log at ``url`` (its key in ``key_file``, made if
    absent) and register the bench's platform with ``corpus``'s key, as
    every bench log begins; return the log's size, the first bulk record's
    leaf index."""
    provider = LogProvider(url, str(key_file), ORIGIN)
    try:
        log, _ = provider.initialise()
        log.registry.add_platform(PLATFORM, PLATFORM_NAME, corpus.key.public_key)
        return log.latest_size()
    finally:
        provider.close()


def batch_requests(items: Sequence[Signed], size: int) -> list[loadgen.Request]:
    return [
        loadgen.Request("POST", RECORDS_PATH, batch_body(list(items[i : i + size])), len(items[i : i + size]))
        for i in range(0, len(items), size)
    ]


def single_requests(items: Sequence[Signed]) -> list[loadgen.Request]:
    return [loadgen.Request("POST", RECORDS_PATH, s.item(), 1) for s in items]


def submit(
    port: int,
    items: Sequence[Signed],
    batch: int,
    clients: int,
    seconds: float,
    keep: int = 2,
    probe: cpu.Probe | None = None,
) -> loadgen.Result:
    """Submit ``items`` in requests of ``batch`` records from ``clients`` clients;
    ``probe`` counts the server's CPU (``Server.cpu_probe``)."""
    reqs = single_requests(items) if batch == 1 else batch_requests(items, batch)
    return loadgen.run(loadgen.Load(port, reqs, clients, seconds, keep_bodies=keep, expect=(201,), probe=probe))


def check_answers(result: loadgen.Result, items: Sequence[Signed], batch: int, verifier: Verifier) -> int:
    """Verify the kept answers; return how many records' proofs checked out."""
    checked = 0
    for number, body in result.bodies:
        sent = items[number * batch : (number + 1) * batch]
        ans = json.loads(body)
        cp = verify_checkpoint(ans["checkpoint"]["signed_note"].encode(), verifier)
        if len(ans["records"]) != len(sent):
            raise WrongAnswer(f"{len(ans['records'])} records answered for {len(sent)} sent")
        for r, s in zip(ans["records"], sent, strict=True):
            entry = record_entry(r["logged_at"], s.canonical, s.signature)
            proof = [base64.b64decode(h, validate=True) for h in r["inclusion_path"]]
            if r["record_id"] != s.record_id or record_hash(entry) != base64.b64decode(r["leaf_hash"]):
                raise WrongAnswer(f"the answer for {s.record_id} names another entry")
            if r["tree_size"] != cp.size:
                raise WrongAnswer("a record's proof is not against the answer's checkpoint")
            verify_entry(entry, r["leaf_index"], proof, cp)
            checked += 1
    return checked


def populate(
    db_url: str,
    key_file: Path,
    corpus: Corpus,
    target: int,
    deadline: float,
    progress: Callable[[int, float], None],
    number: int = 0,
) -> tuple[int, float]:
    """Append bulk records until the log holds ``target`` entries or the deadline passes.

    Returns the tree size reached and the entries appended per second.
    ``number`` is the bulk record number (:meth:`Corpus.sign_bulk`) of the
    first record appended: a log grown in several calls (bench/large.py
    resumes a fill) passes how many bulk records it already holds, so that
    no record ID repeats and follow-ups refer to decisions it holds.
    Records are signed in a helper process while this one appends: one,
    on two cores, as the helper (~150 us a record) and the appender with
    the database's own work (SQLite in this process, PostgreSQL's backend)
    take about a core each (docs/performance.md).
    """
    stack = ExitStack()
    pool = mp.get_context("fork").Pool(1, initializer=child_signals)  # before the log opens any connection
    provider = LogProvider(db_url, str(key_file), ORIGIN)
    try:
        stack.enter_context(mock.patch.object(storage, "_BEGIN_APPEND_PG", _BULK_BEGIN_APPEND_PG))
        log = provider.log
        if is_sqlite(log.engine):
            event.listen(log.engine, "connect", _large_cache)
            log.engine.dispose()  # connections opened before the listener
        size = first = log.latest_size()
        logged_at = time.time_ns() // 1_000_000
        chunks = [(n, min(n + MAX_BATCH, target - first)) for n in range(0, max(0, target - first), MAX_BATCH)]
        pending: deque[AsyncResult[EntryChunk]] = deque()
        t0 = time.perf_counter()
        for i in range(len(chunks)):
            while len(pending) < 3 and i + len(pending) < len(chunks):
                lo, hi = chunks[i + len(pending)]
                args = (corpus.seed, number + lo, number + hi, logged_at, first + lo)
                pending.append(pool.apply_async(entry_chunk, (args,)))
            if time.monotonic() >= deadline:
                break
            size = _append(log, pending.popleft().get(timeout=600))
            if (size - first) % 100_000 < MAX_BATCH or size >= target:
                progress(size, time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
    finally:
        stack.close()
        pool.terminate()
        pool.join()
        provider.close()
    return size, (size - first) / elapsed if elapsed else 0.0


#: The bulk append's PostgreSQL transaction: the head locked as the
#: sequencer locks it (ledger/storage.py), but a statement may take two
#: minutes, not the server's 5 s (ledger.db.PG_WRITER_SETTINGS, which ends a
#: frozen writer's COPY): a COPY of 10,000 feed-index rows, ten times the
#: largest request, outlasted 5 s at load 12-18 on 2 cores and failed the
#: fill. Only this process's appends; the server under test keeps its own.
_BULK_BEGIN_APPEND_PG = (
    "SELECT set_config('lock_timeout', '3s', true), set_config('statement_timeout', '120s', true); "
    "SELECT size, root FROM log_head WHERE id = 1 FOR UPDATE"
)


def _large_cache(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # SQLite's page cache is 2 MiB by default; from a few hundred thousand
    # entries the writer's index pages no longer fit and each chunk reads
    # them again: at 300k-350k entries 128 MiB took 9% off the appender's
    # CPU (1.35 -> 1.23 s for 10,000) and halved its system time. The
    # bench's own connection only: the server's connections keep SQLite's
    # default (see docs/performance.md).
    dbapi_conn.execute("PRAGMA cache_size=-131072")


def _append(log: Log, chunk: EntryChunk) -> int:
    def plan(_connection: Connection, size: int, _now: int) -> Plan:
        # The rows name their leaf indexes: the bench is the log's only
        # writer while it populates, so the log is where the chunk was made
        # for, or this aborts the transaction and nothing is written.
        if size != chunk.first:
            raise AssertionError(f"populate: the log is at {size}, the chunk was made for {chunk.first}")

        def write(s: Connection, _first: int) -> None:
            insert_index(s, chunk.index_rows)

        return Plan(chunk.entries, write, chunk.stored)

    return log.sequencer.sequence(plan).checkpoint.size
