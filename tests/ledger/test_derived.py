"""Derived rows cannot drift from the entries unnoticed (issue 11).

For every table derived from the log, one row edited behind the log's back
(triggers out of the way, as an operator with database access could) makes
``ledger audit`` fail naming the table, the row and the column, and makes
``publish-stats`` refuse; the tables themselves refuse UPDATE and DELETE.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from keys.records import PlatformKey
from ledger import audit as audit_module
from ledger import derived
from ledger.audit import audit
from ledger.db import is_sqlite
from ledger.derived_watch import DerivedWatch, Finding, default_state_path
from ledger.errors import DerivedDataError, InvalidInput, StorageError
from ledger.evenness_store import Filters, evenness_at, publish
from ledger.log import Log, LogProvider
from ledger.records.codes import CODES
from tests.checklog import check_log
from tests.conftest import ORIGIN
from tests.recordkit import amendment, appeal, coverage, decision, sign
from tests.server import gunicorn
from tests.tamper import tamper

KEY = PlatformKey(b"\x31" * 32)
KEY2 = PlatformKey(b"\x32" * 32)
KEY3 = PlatformKey(b"\x33" * 32)


@pytest.fixture
def ledger(app: Flask, client: FlaskClient) -> Log:
    """Two platforms, a rotated and a revoked key, decisions, an appeal, an
    amendment and a published digest: a row in every derived table."""
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    log.registry.add_platform("other-video", "Other Video", KEY2.public_key)
    log.registry.add_key("other-video", KEY3.public_key)
    recs = [decision(f"d-{i}", name="decision-legislator-removal") for i in range(6)]
    recs += [decision(f"u-{i}", name="decision-ordinary-user") for i in range(6)]
    recs += [appeal("apl-1", "d-1"), amendment("amd-1", "d-2")]
    r = client.post("/api/v1/records", json={"records": [sign(rec, KEY) for rec in recs]})
    assert r.status_code == 201, r.json
    other = decision("o-1", platform="other-video")
    assert client.post("/api/v1/records", json=sign(other, KEY2)).status_code == 201
    key_id = KEY2.key_id
    log.registry.revoke_key(key_id, 1_700_000_000_000, "rotated out")
    publish(log)
    return log


def _first(log: Log, sql: str) -> Any:
    with log.read() as s:
        return s.execute(text(sql)).scalar_one()


def _hex(engine: Any, data: bytes) -> str:
    return f"'\\x{data.hex()}'::bytea" if not is_sqlite(engine) else f"X'{data.hex()}'"


def _code(column: str, value: str) -> str:
    """The stored code of a closed vocabulary's value (ledger/records/codes.py), for raw SQL."""
    return str(CODES[column][value])


_FIRST_DECISION = "SELECT min(leaf_index) FROM record_index WHERE type = " + _code("type", "decision")
#: The values of the entry columns (record_hash, key_id) of a row no entry derives.
_GHOST = "<hex:" + "00" * 32 + ">, (SELECT min(key_id) FROM platform_keys)"


#: (table, column the audit names, SQL editing one row; {d} is a decision's leaf index)
EDITS = [
    ("platforms", "display_name", "UPDATE platforms SET display_name = 'Evil Social' WHERE slug = 'example-social'"),
    ("platform_keys", "valid_from_ms", "UPDATE platform_keys SET valid_from_ms = 0 WHERE platform = 'other-video'"),
    ("key_revocations", "revoked_from_ms", "UPDATE key_revocations SET revoked_from_ms = revoked_from_ms + 86400000"),
    # The columns of the ``records`` table folded in (migration 0015_fold_records).
    ("record_index", "record_id", "UPDATE record_index SET record_id = 'd-99' WHERE leaf_index = {d}"),
    ("record_index", "logged_at_ms", "UPDATE record_index SET logged_at_ms = logged_at_ms - 1 WHERE leaf_index = {d}"),
    ("record_index", "record_hash", "UPDATE record_index SET record_hash = <zeros> WHERE leaf_index = {d}"),
    (
        "record_index",
        "key_id",
        "UPDATE record_index SET key_id = (SELECT min(key_id) FROM platform_keys WHERE platform = 'other-video') "
        "WHERE leaf_index = {d}",
    ),
    ("record_index", "platform", "UPDATE record_index SET platform = 'other-video' WHERE leaf_index = {d}"),
    (
        "record_index",
        "ref_record_id",
        "UPDATE record_index SET ref_record_id = 'd-99' WHERE leaf_index = "
        "(SELECT min(leaf_index) FROM record_index WHERE ref_record_id IS NOT NULL)",
    ),
    (
        "record_index",
        "account_class",
        "UPDATE record_index SET account_class = "
        + _code("account_class", "ordinary_user")
        + " WHERE leaf_index = {d}",
    ),
    ("record_index", "exemption_applied", "UPDATE record_index SET exemption_applied = NOT exemption_applied"),
    ("record_index", "search_text", "UPDATE record_index SET search_text = 'nothing to see' WHERE leaf_index = {d}"),
    (
        "record_index",
        "target_class",
        "UPDATE record_index SET target_class = " + _code("target_class", "group") + " WHERE leaf_index = {d}",
    ),
    (
        "record_index",
        "reporter_class",
        "UPDATE record_index SET reporter_class = "
        + _code("reporter_class", "target_self")
        + " WHERE leaf_index = {d}",
    ),
    ("record_index", "qid", "UPDATE record_index SET qid = 'Q42' WHERE leaf_index = {d}"),
    ("published_statistics", "document_sha256", "UPDATE published_statistics SET document_sha256 = '" + "0" * 64 + "'"),
]


@pytest.mark.parametrize("table,column,sql", EDITS, ids=[f"{t}.{c}" for t, c, _ in EDITS])
def test_an_edited_row_fails_the_audit_and_blocks_publication(
    ledger: Log, runner: FlaskCliRunner, table: str, column: str, sql: str
) -> None:
    check_log(ledger)
    d = _first(ledger, _FIRST_DECISION)
    tamper(ledger.engine, sql.format(d=d).replace("<zeros>", _hex(ledger.engine, bytes(32))))
    with ledger.read() as s:
        report = audit(s, ledger.verifier)
    assert not report.ok
    first = report.mismatches[0]
    assert (first.table, first.column) == (table, column), report.problems
    assert first.expected != first.found
    assert f"{table} row (" in report.problems[0]
    assert f"column {column}: expected " in report.problems[0]
    out = runner.invoke(args=["ledger", "audit", "--quiet"])
    assert out.exit_code == 1
    assert f"PROBLEM: derived row differs from its entry: {table} row" in out.output
    size = ledger.latest_size()
    with pytest.raises(DerivedDataError, match=f"refusing to publish statistics: .*{table} row"):
        publish(ledger)
    refused = runner.invoke(args=["ledger", "publish-stats"])
    assert refused.exit_code == 1
    assert "refusing to publish statistics" in refused.output
    assert ledger.latest_size() == size  # nothing was signed


def test_the_served_statistics_of_a_tampered_index_are_never_signed(ledger: Log, client: FlaskClient) -> None:
    before = client.get("/api/v1/stats/evenness").json["document"]
    # Rewrite every legislator's decision as an ordinary user's: the served
    # document changes (that is what an undetected edit would publish).
    tamper(
        ledger.engine,
        "UPDATE record_index SET account_class = " + _code("account_class", "ordinary_user") + ", political = false",
    )
    fresh = Log(ledger.engine, ledger.signer)  # a new process: nothing cached
    with fresh.read() as s:
        served = evenness_at(s, fresh.latest(s), Filters())
    assert served.document["checkpoint"] == before["checkpoint"]
    assert served.document != before
    with pytest.raises(DerivedDataError):
        publish(fresh)


def test_missing_and_extra_rows_are_named(ledger: Log) -> None:
    d = _first(ledger, _FIRST_DECISION)
    tamper(ledger.engine, f"DELETE FROM record_index WHERE leaf_index = {d}")
    with ledger.read() as s:
        found = derived.check_all(s, ledger.latest(s).size)
    assert [(m.table, m.key, m.column, m.found) for m in found] == [("record_index", (d,), None, "none")]
    tamper(
        ledger.engine,
        "INSERT INTO record_index (leaf_index, platform, type, record_id, logged_at_ms, record_hash, key_id) "
        "VALUES (100000, 'example-social', "
        + _code("type", "decision")
        + ", 'ghost', 0, "
        + _GHOST.replace("<hex:" + "00" * 32 + ">", _hex(ledger.engine, bytes(32)))
        + ")",
    )
    with ledger.read() as s:
        found = derived.check_all(s, ledger.latest(s).size)
    assert ("record_index", "a row for entry 100000") in [(m.table, m.found) for m in found]


def test_a_tampered_full_text_index_is_found(ledger: Log) -> None:
    if not is_sqlite(ledger.engine):
        pytest.skip("PostgreSQL searches the column itself (a GIN index), not a separate table")
    d = _first(ledger, _FIRST_DECISION)
    with ledger.engine.begin() as conn:  # FTS5 tables take no triggers
        conn.execute(text(f"INSERT INTO record_search(rowid, search_text) VALUES ({d}, 'planted words')"))
    with ledger.read() as s:
        report = audit(s, ledger.verifier)
    assert [m.table for m in report.mismatches] == ["record_search"]
    assert "FTS5 integrity-check failing" in report.problems[0]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE record_index SET action = " + _code("action", "none"),
        "DELETE FROM record_index",
        "UPDATE platforms SET display_name = 'x'",
        "DELETE FROM key_revocations",
    ],
)
def test_derived_tables_refuse_changes(ledger: Log, sql: str) -> None:
    with pytest.raises(DBAPIError, match="ledger: "), ledger.engine.begin() as conn:
        conn.execute(text(sql))
    check_log(ledger)


def test_truncating_the_index_is_refused_on_postgresql(ledger: Log) -> None:
    if is_sqlite(ledger.engine):
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(DBAPIError, match="ledger: "), ledger.engine.begin() as conn:
        conn.execute(text("TRUNCATE record_index"))


def test_the_servers_check_reports_a_mismatch_on_healthz(app: Flask, ledger: Log, client: FlaskClient) -> None:
    watch = app.extensions["derived_watch"]
    assert watch.finding() is None
    assert client.get("/healthz").text == "ok"
    assert watch.check().ok
    assert client.get("/healthz").status_code == 200
    # New entries are checked incrementally; an edit among them is found.
    assert client.post("/api/v1/records", json=sign(decision("late-1"), KEY)).status_code == 201
    late = _first(ledger, "SELECT leaf_index FROM record_index WHERE record_id = 'late-1'")
    tamper(ledger.engine, f"UPDATE record_index SET action = {_code('action', 'none')} WHERE leaf_index = {late}")
    finding = watch.check()
    assert not finding.ok
    assert f"record_index row (leaf_index={late}), column action" in (finding.problem or "")
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert "derived rows differ from the log entries: record_index row" in r.json["detail"]
    # Still reported by the next check, which finds nothing new.
    assert not watch.check().ok


# The rolling sweep, driven check by check: a watch that sweeps the log in
# SWEEP_CHECKS slices (interval 1 s, full interval SWEEP_CHECKS s, no minimum).
SWEEP_CHECKS = 4


def _sweeping(ledger: Log, state: Path) -> DerivedWatch:
    return DerivedWatch(lambda: ledger, state, 1.0, float(SWEEP_CHECKS), min_slice=1)


def _sweep_to_the_end(watch: DerivedWatch) -> list[Finding]:
    """Check until the current sweep completes; the findings, in order."""
    findings = [watch.check()]
    while findings[-1].swept_to != 0:
        findings.append(watch.check())
        assert len(findings) <= SWEEP_CHECKS
    return findings


def test_the_sweep_finds_an_old_mismatch_and_clears_it_only_after_a_whole_clean_sweep(
    ledger: Log, tmp_path: Path
) -> None:
    watch = _sweeping(ledger, tmp_path / "state.json")
    size = ledger.latest_size()
    # Without a state file, every entry is checked once, as new; the sweep begins after.
    first = watch.check()
    assert (first.ok, first.checked_size, first.swept_to) == (True, size, 0)
    assert watch.slice_size(size) == -(-size // SWEEP_CHECKS) < size
    target = _first(ledger, f"SELECT min(leaf_index) FROM record_index WHERE leaf_index >= {size // 2}")
    action = _first(ledger, f"SELECT action FROM record_index WHERE leaf_index = {target}")
    tamper(ledger.engine, f"UPDATE record_index SET action = {_code('action', 'none')} WHERE leaf_index = {target}")
    row = f"record_index row (leaf_index={target}), column action"

    # Found within one sweep, by the slice holding the entry; the slices before it are clean.
    found = _sweep_to_the_end(watch)
    assert len(found) == SWEEP_CHECKS
    cursor = [0] + [f.swept_to or size for f in found]
    hit = next(i for i in range(SWEEP_CHECKS) if cursor[i] <= target < cursor[i + 1])
    assert [f.ok for f in found[:hit]] == [True] * hit
    assert row in (found[hit].problem or "")
    # The clean slices after it, and the end of the sweep that found it, keep it reported.
    assert hit < SWEEP_CHECKS - 1
    assert [f.problem for f in found[hit:]] == [found[hit].problem] * (SWEEP_CHECKS - hit)
    assert found[-1].sweep_clean is False
    assert found[-1].swept_at_ms is not None

    # The next sweep finds it again; the row is repaired right after, but
    # that sweep found it, so its end clears nothing.
    again = [watch.check() for _ in range(hit + 1)]
    assert row in (again[-1].problem or "")
    tamper(ledger.engine, f"UPDATE record_index SET action = {action} WHERE leaf_index = {target}")
    again += _sweep_to_the_end(watch)
    assert not any(f.ok for f in again)
    # A whole sweep begun after the mismatch was last found clears it, at its end only.
    clean = _sweep_to_the_end(watch)
    assert [f.ok for f in clean] == [False] * (SWEEP_CHECKS - 1) + [True]
    assert clean[-1].sweep_clean is True
    assert clean[-1].checked_size == size


def test_a_restarted_sweep_resumes_at_its_cursor(ledger: Log, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    watch = _sweeping(ledger, state)
    size = ledger.latest_size()
    watch.check()  # every entry, as new
    step = watch.slice_size(size)
    first = watch.check()
    assert (first.swept_to, first.sweep_size) == (step, size)
    # An old row edited behind the cursor: a new process resumes the sweep
    # where the last stopped, rather than at entry 0, so it does not see it yet...
    tamper(ledger.engine, "UPDATE platforms SET display_name = 'Evil' WHERE leaf_index = 0")
    restarted = _sweeping(ledger, state)
    assert restarted.finding() == first
    resumed = restarted.check()
    assert resumed.ok
    assert resumed.swept_to == 2 * step
    # ...and finds it when its next sweep begins at entry 0.
    rest = _sweep_to_the_end(restarted)
    assert all(f.ok for f in rest)
    wrapped = restarted.check()
    assert wrapped.swept_to == step
    assert "platforms row (slug='example-social'), column display_name" in (wrapped.problem or "")


def test_a_state_file_of_the_earlier_format_loads(
    app: Flask, ledger: Log, client: FlaskClient, key_file: Path, tmp_path: Path
) -> None:
    state = default_state_path(key_file)
    assert state == Path(f"{key_file}.derived-check.json")
    size = ledger.latest_size()
    problem = "platforms row (slug='example-social'), column display_name: expected 'Example Social', found 'Evil'"
    state.write_text(json.dumps({"checked_size": size - 2, "checked_at_ms": 1, "problem": problem}))
    assert app.extensions["derived_watch"].finding() == Finding(size - 2, 1, problem)
    assert client.get("/healthz").status_code == 503
    # The sweep begins at entry 0; the entries signed since are checked as
    # new; the mismatch stays reported until the sweep is whole.
    findings = _sweep_to_the_end(_sweeping(ledger, state))
    assert findings[0].checked_size == size
    assert findings[0].sweep_size == size - 2
    assert [f.problem for f in findings] == [problem] * (len(findings) - 1) + [None]
    assert client.get("/healthz").text == "ok"


def test_the_servers_check_runs_under_gunicorn(db_url: str, tmp_path: Path) -> None:
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_DERIVED_CHECK_SECONDS": "0.2",
        "LEDGER_DERIVED_FULL_CHECK_SECONDS": "0.2",
    }
    with gunicorn(env) as url:
        provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
        try:
            log = provider.log
            log.registry.add_platform("example-social", "Example Social", KEY.public_key)
            with httpx.Client(base_url=url, timeout=30) as http:
                items = [sign(decision(f"g-{i}"), KEY) for i in range(20)]
                assert http.post("/api/v1/records", json={"records": items}).status_code == 201
                assert _healthz_within(http, 200, 10).text == "ok"
                # An old row edited now is found by the next sweep, which
                # covers the whole log every check here (full interval 0.2 s).
                tamper(log.engine, "UPDATE platforms SET display_name = 'Evil' WHERE leaf_index = 0")
                r = _healthz_within(http, 503, 30)
                assert "platforms row (slug='example-social'), column display_name" in r.text
        finally:
            provider.close()


def _healthz_within(http: httpx.Client, status: int, seconds: float) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        r = http.get("/healthz")
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            return r
        time.sleep(0.1)


def test_the_pure_index_row_has_the_tables_columns() -> None:
    """The record's own columns (``index_row``) and its entry's
    (``record_rows`` adds them) are the table's, each once."""
    from ledger.db import record_index
    from ledger.records.index_rows import ENTRY_COLUMNS, INDEX_COLUMNS

    assert sorted(record_index.c.keys()) == sorted(INDEX_COLUMNS + ENTRY_COLUMNS)
    assert [c.name for c in record_index.c if c.name in INDEX_COLUMNS] == list(INDEX_COLUMNS)


def _raw(engine: Any, entry: bytes) -> str:
    """An entry stored as-is (format byte 0x00), as an SQL literal."""
    return _hex(engine, b"\x00" + entry)


#: Every kind of problem the audit reports, each made by one edit: {size} is
#: the tree size, {d} a decision's leaf index, <hex:...> bytes and <entry:...>
#: an entry stored as-is.
FAILURES = [
    ("entry does not decode", "UPDATE entries SET data = <hex:ff00> WHERE idx = {d}"),
    ("entry differs", "UPDATE entries SET data = <entry:{}> WHERE idx = {d}"),
    (
        "entry cannot derive its rows",
        'UPDATE entries SET data = <entry:{"logged_at":"soon","record":{},"signature":{}}> WHERE idx = {d}',
    ),
    ("leaf hash", "UPDATE hashes SET hash = <hex:" + "ab" * 32 + "> WHERE level = 0 AND idx = 3"),
    (
        "checkpoint root",
        "UPDATE checkpoints SET root = <hex:"
        + "ab" * 32
        + "> WHERE size = (SELECT min(size) FROM checkpoints WHERE size > 2)",
    ),
    ("checkpoint note", "UPDATE checkpoints SET note = <hex:00> WHERE size = {size}"),
    ("head root", "UPDATE log_head SET root = <hex:" + "ab" * 32 + ">"),
    ("entry beyond the head", "INSERT INTO entries (idx, data) VALUES ({size}, <hex:0061>)"),
    ("row column", "UPDATE record_index SET action = " + _code("action", "none") + " WHERE leaf_index = {d}"),
    ("every row's column", "UPDATE record_index SET action = " + _code("action", "none")),
    ("missing row", "DELETE FROM record_index WHERE leaf_index = {d}"),
    (
        "row beyond the head",
        "INSERT INTO record_index (leaf_index, platform, type, record_id, logged_at_ms, record_hash, key_id) "
        "VALUES ({size}, 'example-social', " + _code("type", "decision") + ", 'ghost', 0, " + _GHOST + ")",
    ),
    ("full-text index", "INSERT INTO record_search(rowid, search_text) VALUES ({d}, 'planted words')"),
]


@pytest.mark.parametrize("sql", [sql for _, sql in FAILURES], ids=[name for name, _ in FAILURES])
def test_the_audit_reports_the_same_with_a_worker_process(
    ledger: Log, monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    """The rows derived in one or two worker processes, batches compared as
    they come back: the report is the sequential one, problem for problem, including
    where it stops (max_problems) in the middle of the log."""
    monkeypatch.setattr("ledger.audit.BATCH", 4)  # the log's 21 entries in six batches
    if "record_search" in sql and not is_sqlite(ledger.engine):
        pytest.skip("PostgreSQL searches the column itself (a GIN index), not a separate table")
    d = _first(ledger, _FIRST_DECISION) + 4
    size = ledger.latest_size()

    def literal(m: re.Match[str]) -> str:
        kind, value = m.group(1), m.group(2)
        return _hex(ledger.engine, bytes.fromhex(value)) if kind == "hex" else _raw(ledger.engine, value.encode())

    edit = re.sub(r"<(hex|entry):(.*?)>", literal, sql.replace("{d}", str(d)).replace("{size}", str(size)))
    if "record_search" in sql:
        with ledger.engine.begin() as conn:  # FTS5 tables take no triggers
            conn.execute(text(edit))
    else:
        tamper(ledger.engine, edit)
    reports = {}
    for jobs in (0, 1, 2):
        for max_problems in (3, 20):
            with ledger.read() as s:
                reports[jobs, max_problems] = audit(s, ledger.verifier, max_problems=max_problems, jobs=jobs)
    for (jobs, max_problems), parallel in reports.items():
        sequential = reports[0, max_problems]
        assert not sequential.ok
        assert parallel.found == sequential.found, jobs
        assert [str(m) for m in parallel.mismatches] == [str(m) for m in sequential.mismatches]
        assert (parallel.entries, parallel.checkpoints) == (sequential.entries, sequential.checkpoints)


def test_an_audit_stopped_early_reports_before_a_missing_entry_it_read_ahead(
    ledger: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are read ahead for the workers; a batch that cannot be read
    fails the audit only if the audit gets that far, as in one process."""
    monkeypatch.setattr("ledger.audit.BATCH", 4)
    bad = _hex(ledger.engine, b"\xab" * 32)
    tamper(ledger.engine, f"UPDATE hashes SET hash = {bad} WHERE level = 0 AND idx < 4")
    tamper(ledger.engine, "DELETE FROM entries WHERE idx = 9")
    for jobs in (0, 1, 2):
        with ledger.read() as s:
            report = audit(s, ledger.verifier, max_problems=3, jobs=jobs)
        assert [p.split(" differs")[0] for p in report.problems] == [f"level 0 hash {i}" for i in range(4)]
        assert report.entries == 4
        with ledger.read() as s, pytest.raises(StorageError, match=r"missing entries in \[8, 12\)"):
            audit(s, ledger.verifier, max_problems=20, jobs=jobs)


def test_placed_values_are_the_rows_of_the_record_at_its_place() -> None:
    """The submissions build a record's rows before its place is known and
    the sequencer places them (ledger/submit.py): the same tuples, codes
    included, as the rows derived at that place."""
    from demo.generate import generate
    from ledger.db import encode_rows

    recs = [item.record for item in generate("placed-values", 200).items] + [coverage("cov-1")]
    assert {r["type"] for r in recs} == {"decision", "appeal", "amendment", "coverage"}
    for n, rec in enumerate(recs):
        record_hash, key_id = bytes([n]) * 32, f"key-{n}"
        leaf_index, logged_at_ms = 1_000_003 + n * 7919, 1_790_000_000_123 + n
        expected = {
            name: encode_rows(derived._BY_NAME[name], rows)
            for name, rows in derived.record_rows(leaf_index, logged_at_ms, rec, record_hash, key_id).items()
        }
        placed = derived.place_values({}, derived.record_values(rec, record_hash, key_id), leaf_index, logged_at_ms)
        assert placed == expected


#: Edits of entry {d}, each with what the audit must say about it.
MIDDLE_OF_A_BATCH = [
    ("UPDATE hashes SET hash = <hex:" + "ab" * 32 + "> WHERE level = 0 AND idx = {d}", "level 0 hash {d} differs"),
    ("UPDATE entries SET data = (SELECT data FROM entries WHERE idx = {d} + 1) WHERE idx = {d}", "level 0 hash {d} "),
    (
        "UPDATE record_index SET action = " + _code("action", "none") + " WHERE leaf_index = {d}",
        "record_index row (leaf_index={d}), column action",
    ),
]


@pytest.mark.parametrize(("sql", "expected"), MIDDLE_OF_A_BATCH, ids=["leaf hash", "entry", "row column"])
def test_a_tamper_in_the_middle_of_a_workers_batch_is_reported_with_its_index(
    ledger: Log, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sql: str, expected: str
) -> None:
    """An edit inside the second batch, which a worker process audits over
    its own connection, is named by its entry's index, as in one process."""
    d = _first(ledger, "SELECT leaf_index FROM record_index WHERE record_id = 'u-0'")
    batch = 2 * d // 3  # the second batch, [batch, 2 * batch), holds d in its middle
    assert batch < d < 2 * batch - 1
    monkeypatch.setattr("ledger.audit.BATCH", batch)
    edit = re.sub(r"<hex:(.*?)>", lambda m: _hex(ledger.engine, bytes.fromhex(m.group(1))), sql)
    tamper(ledger.engine, edit.format(d=d))
    # Where each batch was audited: the workers are forked, so they run this
    # wrapper too and write their own pid.
    where = tmp_path / "audited-by"
    audit_range = audit_module.audit_range

    def recorded(session: Any, start: int, end: int, derived_rows: bool = True) -> audit_module.RangeAudit:
        with where.open("a") as f:
            f.write(f"{start} {os.getpid()}\n")
        return audit_range(session, start, end, derived_rows)

    monkeypatch.setattr(audit_module, "audit_range", recorded)
    reports = {}
    for jobs in (0, 2):
        where.unlink(missing_ok=True)
        with ledger.read() as s:
            reports[jobs] = audit(s, ledger.verifier, jobs=jobs)
    assert any(expected.format(d=d) in p for p in reports[2].problems), reports[2].problems
    assert reports[2].found == reports[0].found
    audited_by = dict(map(int, line.split()) for line in where.read_text().splitlines())
    assert audited_by[batch] != os.getpid()


@pytest.mark.parametrize(
    "data",
    [
        b'{"n": 123456789012345678901234567890}',  # beyond 64 bits
        b'{"n": -9223372036854775809, "m": 18446744073709551616, "k": 9223372036854775807}',  # at 64 bits
        b'{"x": NaN, "y": -Infinity}',
        b'{"s": "\\ud800"}',  # a lone surrogate
        '{"s": "utf-16"}'.encode("utf-16"),
        b'{"a": 1, "a": 2, "f": 0.1, "e": 1e400}',
    ],
    ids=["big int", "64-bit edges", "nan", "lone surrogate", "utf-16", "duplicate key and floats"],
)
def test_the_audits_parse_reads_every_entry_as_the_standard_parser_does(data: bytes) -> None:
    assert repr(derived._parse(data)) == repr(json.loads(data))


def _bare_entry(record_id: str, **fields: str) -> bytes:
    record = {"platform": "example-social", "record_id": record_id, "type": "decision", **fields}
    entry = {"logged_at": "2026-12-07T10:00:00Z", "record": record, "signature": {"key_id": "k"}}
    return json.dumps(entry, separators=(",", ":")).encode()


def test_deriving_a_batch_names_the_first_entry_with_a_value_without_a_code() -> None:
    """Rows convert to their stored codes a table at a time; a value without
    a code is still blamed on the first entry holding one."""
    entries = [_bare_entry("a"), _bare_entry("b", action="obliterate"), _bare_entry("c", category="nonsense")]
    assert derived.derive_range(40, entries[:1])["record_index"][0][0] == 40
    with pytest.raises(InvalidInput, match=r"^entry 41 cannot be read .*'obliterate'"):
        derived.derive_range(40, entries)
