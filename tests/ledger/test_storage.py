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
from ledger.submit import LOOKUP_SQL, lookup_statement
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


def _filled_record_index(log: Log, rows: int) -> str:
    """``rows`` rows of one platform in ``record_index`` (IDs ``r-0000000000``
    on), as a log of that many records holds them, and the statistics
    autovacuum would gather; the platform's slug. (The rows have no entries
    behind them: only the planner reads them.)"""
    log.registry.add_platform("p", "P", sha256(b"p").digest())
    with log.engine.begin() as conn:
        key_id = conn.exec_driver_sql("SELECT key_id FROM platform_keys").scalar_one()
        conn.exec_driver_sql(
            "INSERT INTO record_index (leaf_index, logged_at_ms, type, record_hash, key_id, platform, record_id,"
            " search_text) SELECT 100 + g, g, 1, sha256(g::text::bytea), %s, 'p', 'r-' || lpad(g::text, 10, '0'),"
            " repeat('a decision about an account ', 8) FROM generate_series(0, %s) g",
            (key_id, rows - 1),
        )
        conn.exec_driver_sql("ANALYZE record_index")
    return "p"


def _generic_plan(conn: Any, sql: str, params: list[Any]) -> str:
    """EXPLAIN of ``sql``'s generic plan (PostgreSQL 15 has no EXPLAIN
    (GENERIC_PLAN)): prepared, then executed as a literal (EXECUTE takes no
    bound parameters; the IDs here need no quoting)."""
    numbered = sql
    for i in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${i}", 1)
    conn.exec_driver_sql(f"PREPARE lookup AS {numbered}")
    literals = ", ".join(f"'{{{','.join(p)}}}'" if isinstance(p, list) else f"'{p}'" for p in params)
    conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    try:
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE lookup({literals})"))
    finally:
        conn.exec_driver_sql("RESET plan_cache_mode")
        conn.exec_driver_sql("DEALLOCATE lookup")


def test_the_writers_lookup_of_logged_ids_probes_the_unique_index(log: Log) -> None:
    """The submissions' lookup of up to 2,000 IDs (ledger/submit.py) reads
    record_index through its unique (platform, record_id) index, one probe an
    ID, whatever the statistics say: ``IN (...)`` of the IDs was planned from
    them, and on logs of some 10k-100k records as a scan of the whole, wide
    table (up to 4.5 times the probes' CPU, under the sequencer's lock). Checked after
    ANALYZE of a filled table, for new and logged IDs, in the plan made for
    the IDs and in the generic plan of a prepared statement (psycopg prepares
    a statement on its 5th run on a connection), under no planner setting.
    Up to LOOKUP_LIST_MAX IDs the statement is ``IN (...)`` still, whose
    plan is the planner's choice: checked here for a log of this size."""
    if is_sqlite(log.engine):
        pytest.skip("PostgreSQL's planner")
    rows = 10_000
    platform = _filled_record_index(log, rows)
    logged = [f"r-{i:010d}" for i in range(0, rows, 5)]
    new = [f"r-{i:010d}" for i in range(rows, rows + 2000)]
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW enable_seqscan").scalar_one() == "on"
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "auto"
        # Why: the statement as it was, a list of 2,000 IDs, is planned as a scan.
        before = "\n".join(r[0] for r in driver_sql(conn, "EXPLAIN " + LOOKUP_SQL + in_list(2000), ["p", *new])[0])
        assert "Seq Scan on record_index" in before, before
        for n in (1, 2, 32, 33, 100, 1000, 2000):
            for ids, expected in ((new[:n], []), (logged[:n], logged[:n])):
                sql, params = lookup_statement(False, platform, ids)
                custom = "\n".join(r[0] for r in driver_sql(conn, "EXPLAIN " + sql, params)[0])
                generic = _generic_plan(conn, sql, params)
                for plan in (custom, generic):
                    assert "Index Scan using record_index_platform_record_id on record_index" in plan, plan
                    assert "Seq Scan on record_index" not in plan, plan
                    assert "Bitmap" not in plan, plan
                    assert "Hash" not in plan, plan
                found, _ = driver_sql(conn, sql, params)
                assert sorted(r[0] for r in found) == expected
        conn.rollback()


@pytest.mark.parametrize("n", [1, 3, 33, 2000, 2001])
def test_the_lookup_of_logged_ids_finds_exactly_them(log: Log, n: int) -> None:
    """``ledger.submit._lookup`` on either database, IDs the schema allows
    (``[A-Za-z0-9._:-]``, so also "NULL", which an array's text form must
    quote) and more than one statement's 2,000."""
    from ledger.submit import _lookup

    platform = "example-social"
    log.registry.add_platform(platform, "Example Social", sha256(b"k").digest())
    logged = ["NULL", "null", "a.b:c_d-e", *(f"r-{i}" for i in range(0, 2002, 2))]
    with log.engine.begin() as conn:
        key_id = conn.exec_driver_sql("SELECT key_id FROM platform_keys").scalar_one()
        for i, record_id in enumerate(logged):
            conn.execute(
                text(
                    "INSERT INTO record_index (leaf_index, logged_at_ms, type, record_hash, key_id, platform,"
                    " record_id) VALUES (:i, :i, 1, :h, :k, :p, :r)"
                ),
                {"i": 100 + i, "h": sha256(record_id.encode()).digest(), "k": key_id, "p": platform, "r": record_id},
            )
    asked = ["NULL", "null", "x", "a.b:c_d-e", *(f"r-{i}" for i in range(2002))][:n]
    wanted = {(platform, r) for r in asked} | {("other-platform", "NULL")}
    with log.engine.connect() as conn:
        found = _lookup(conn, wanted)
    assert set(found) == {(platform, r) for r in asked if r in logged}
    for (_, record_id), known in found.items():
        assert known.record_hash == sha256(record_id.encode()).digest()
        assert known.type == "decision"
