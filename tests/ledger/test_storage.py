"""The database enforces append-only; the audit finds edits made behind the
log's back; concurrent writers in several processes make one gapless log."""

from __future__ import annotations

import multiprocessing as mp
from hashlib import sha256
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from keys.note import Signer
from ledger import storage
from ledger.audit import audit
from ledger.db import driver_sql, in_list, is_sqlite, make_engine
from ledger.errors import StorageError
from ledger.log import Log
from ledger.submit import LOOKUP_SQL
from ledger.tlog import verify
from ledger.tlog.tile import tile_hash
from tests.checklog import check_log
from tests.conftest import ORIGIN, TEST_SEED
from tests.tamper import tamper

FORBIDDEN = [
    "UPDATE entries SET data = X'00' WHERE idx = 0",
    "DELETE FROM entries WHERE idx = 0",
    "UPDATE hashes SET hash = hash WHERE level = 0 AND idx = 0",
    "DELETE FROM hashes",
    "UPDATE checkpoints SET note = note",
    "DELETE FROM checkpoints WHERE size = 0",
    "DELETE FROM log_head",
    "UPDATE log_head SET size = 0, root = root",
    "UPDATE log_head SET size = size",
]


@pytest.mark.parametrize("sql", FORBIDDEN)
def test_triggers_reject_rewriting_history(log: Log, sql: str) -> None:
    log.sequencer.append([b"a", b"b"])
    if not is_sqlite(log.engine):
        sql = sql.replace("X'00'", "'\\x00'::bytea")
    with pytest.raises(DBAPIError, match="ledger: "), log.engine.begin() as conn:
        conn.execute(text(sql))
    check_log(log)


def test_truncate_is_rejected_on_postgresql(log: Log) -> None:
    if is_sqlite(log.engine):
        pytest.skip("SQLite has no TRUNCATE")
    for table in ("entries", "hashes", "checkpoints", "log_head"):
        with pytest.raises(DBAPIError, match="ledger: "), log.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))
    check_log(log)


@pytest.mark.parametrize(
    "sql,problem",
    [
        ("UPDATE entries SET data = {blob} WHERE idx = 300", "level 0 hash 300"),
        ("UPDATE hashes SET hash = {hash} WHERE level = 1 AND idx = 0", "level 1 hash 0"),
        ("UPDATE checkpoints SET root = {hash} WHERE size = 2", "checkpoint 2"),
        ("DELETE FROM checkpoints WHERE size = 3", ""),
    ],
)
def test_audit_finds_edits_behind_the_logs_back(log: Log, sql: str, problem: str) -> None:
    log.sequencer.append([b"a", b"b"])
    log.sequencer.append([b"c", b"d"])
    log.sequencer.append([str(i).encode() for i in range(400)])
    with log.read() as s:
        assert audit(s, log.verifier).ok
    pg = not is_sqlite(log.engine)
    blob = "'\\x6576696c'::bytea" if pg else "X'6576696c'"
    hsh = ("'\\x" + "ab" * 32 + "'::bytea") if pg else "X'" + "ab" * 32 + "'"
    tamper(log.engine, sql.format(blob=blob, hash=hsh))
    with log.read() as s:
        report = audit(s, log.verifier)
    if problem:
        assert not report.ok
        assert problem in report.problems[0], report.problems
    else:
        # A deleted checkpoint is not a mismatch of hashes: it is missing history.
        # Clients that saw it still hold it, and it stays consistent with the log.
        assert report.ok


def test_audit_command_reports_first_mismatch(runner: Any, app: Any) -> None:
    log = app.extensions["ledger"].log
    log.sequencer.append([b"x%d" % i for i in range(10)])
    ok = runner.invoke(args=["ledger", "audit"])
    assert ok.exit_code == 0, ok.output
    assert "audit ok: 10 entries" in ok.output
    pg = not is_sqlite(log.engine)
    tamper(log.engine, "UPDATE entries SET data = " + ("'\\x00'::bytea" if pg else "X'00'") + " WHERE idx = 4")
    bad = runner.invoke(args=["ledger", "audit"])
    assert bad.exit_code == 1
    assert "PROBLEM: level 0 hash 4 differs" in bad.output


def test_audit_command_shows_progress_on_stderr(runner: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a terminal (a log file, CI): a line per batch here (every ten
    seconds by default), on stderr only; --quiet prints nothing but problems."""
    monkeypatch.setattr("cli.PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr("ledger.audit.BATCH", 4)
    app.extensions["ledger"].log.sequencer.append([b"x%d" % i for i in range(10)])
    out = runner.invoke(args=["ledger", "audit"])
    assert out.exit_code == 0, out.output
    assert [line.split(" (")[0] for line in out.stderr.splitlines()] == [
        "audited 4 of 10 entries",
        "audited 8 of 10 entries",
        "audited 10 of 10 entries",
    ]
    assert out.stdout.startswith("audit ok: 10 entries")
    quiet = runner.invoke(args=["ledger", "audit", "--quiet"])
    assert quiet.exit_code == 0
    assert quiet.output == ""


def test_sequencer_refuses_to_sign_over_corrupt_hashes(log: Log) -> None:
    log.sequencer.append([b"a", b"b", b"c"])
    pg = not is_sqlite(log.engine)
    tamper(log.engine, "UPDATE hashes SET hash = " + ("'\\x" if pg else "X'") + "00" * 32 + ("'::bytea" if pg else "'"))
    fresh = Log(log.engine, log.signer)  # a new process: no cached frontier
    with pytest.raises(StorageError, match="refusing to sign"):
        fresh.sequencer.append([b"d"])
    with fresh.read() as s:
        assert fresh.latest(s).size == 3


def test_compare_and_swap_rejects_a_stale_head(log: Log) -> None:
    log.sequencer.append([b"a"])
    with log.read() as s:
        head = storage.read_head(s)
    assert head is not None
    log.sequencer.append([b"b"])
    with log.engine.begin() as conn:
        from sqlalchemy.orm import Session

        with Session(bind=conn) as s:
            assert not storage.advance_head(s, head, storage.Head(5, bytes(32)))


def _writer(args: tuple[str, int, int]) -> list[tuple[int, int]]:
    url, worker, batches = args
    log = Log(make_engine(url), Signer.from_seed(ORIGIN, TEST_SEED))
    out = []
    for b in range(batches):
        data = [f"w{worker}-b{b}-{i}".encode() for i in range(1 + (worker + b) % 4)]
        res = log.sequencer.append(data)
        out.append((res.first, res.checkpoint.size))
    log.engine.dispose()
    return out


def test_concurrent_processes_make_one_gapless_log(log: Log, db_url: str) -> None:
    workers, batches = 4, 25
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.map(_writer, [(db_url, w, batches) for w in range(workers)])
    spans = sorted(span for r in results for span in r)
    # Every batch got its own contiguous range, with no gap and no overlap.
    expected_first = 0
    for first, end in spans:
        assert first == expected_first
        expected_first = end
    with log.read() as s:
        assert log.latest(s).size == expected_first
        entries = storage.read_entries(s, 0, expected_first)
    assert len(set(entries)) == len(entries)
    ref = check_log(log)  # every checkpoint consistent with the next, every tile right
    assert len(ref.entries) == expected_first
    with log.read() as s:
        cps = list(storage.iter_checkpoints(s))
    assert [c.size for c in cps] == [0] + [end for _, end in spans]
    for c in cps:
        verify.verify_checkpoint(c.note, log.verifier)


def test_tile_tree_holds_every_inner_node_of_a_full_tile() -> None:
    """Each node kept by storage.tile_tree is the hash of the run of tile
    hashes it covers (as ledger.tlog.tile.tile_hash computes it)."""
    data = b"".join(sha256(i.to_bytes(2, "big")).digest() for i in range(256))
    tree = storage.tile_tree(data)
    assert len(tree) == 255 * 32
    for h in range(1, 9):
        for pos in range(256 >> h):
            at = 256 - (512 >> h) + pos
            run = data[(pos << h) * 32 : ((pos + 1) << h) * 32]
            assert tree[at * 32 : (at + 1) * 32] == tile_hash(run)
    with pytest.raises(AssertionError):
        storage.tile_tree(data[:-32])


def test_the_writers_lookup_of_logged_ids_takes_the_index(log: Log) -> None:
    """PostgreSQL planned the submissions' lookup of up to 2,000 IDs (ledger/submit.py)
    as a scan of the whole, wide record_index on logs of some 10k-100k records (25 ms a
    group at 30k against 0.9 through the index, under the sequencer's lock); the append
    transaction turns sequential scans off for itself only."""
    if is_sqlite(log.engine):
        pytest.skip("PostgreSQL's planner")
    from sqlalchemy.orm import Session

    ids = [f"r-{i}" for i in range(1000)]
    explain = "EXPLAIN " + LOOKUP_SQL + in_list(len(ids))
    with log.engine.begin() as conn, Session(bind=conn) as s:
        conn.exec_driver_sql("ANALYZE record_index")
        before = "\n".join(r[0] for r in driver_sql(s, explain, ["p", *ids])[0])
        assert storage.begin_append(s) is not None
        inside = "\n".join(r[0] for r in driver_sql(s, explain, ["p", *ids])[0])
    assert "Seq Scan on record_index" in before  # what the planner picks left to itself
    assert "Seq Scan" not in inside
    assert "record_index_platform_record_id" in inside
    with log.engine.connect() as conn:  # the setting ended with the append's transaction
        assert conn.exec_driver_sql("SHOW enable_seqscan").scalar_one() == "on"
