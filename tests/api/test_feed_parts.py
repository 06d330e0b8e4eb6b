"""The feed's query in parts (``Feed.branches``, issue 14) on SQLite and
PostgreSQL: a filter on a decision's fields selects the matching records
and the appeals and amendments of matching decisions, read part by part,
each through its index in the page's order and limited, then merged.

Every page, in both orders, in both paging directions, under both plans
of the follow-up part (few matching decisions: their follow-ups listed;
many: each follow-up's decision probed), and every count, is compared with
a plain Python reading of the index rows; and the statements the feed runs
are shown, by the databases' own EXPLAIN, to read an index in order rather
than collect and sort every match (what made a page of a million records
take ten seconds on SQLite).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from api import feed as api_feed
from keys.records import PlatformKey
from ledger import browse, db, query, submit
from ledger.db import is_sqlite, record_index
from ledger.log import Log
from ledger.query import Feed
from tests.recordkit import amendment, appeal, decision, sign
from web import cards

KEYS = {"example-social": PlatformKey(bytes([5]) * 32), "other-video": PlatformKey(bytes([6]) * 32)}
NAMES = [
    "decision-head-of-state-newsworthiness",
    "decision-illegal-court-order",
    "decision-legislator-removal",
    "decision-ordinary-user",
]
#: Actions without an end, which any decision of these examples may take instead of its own.
ACTIONS = ["remove_content", "label", "geo_block"]


def _fill(client: FlaskClient) -> None:
    """90 decisions on two platforms (the same record IDs on both), then 45
    appeals and amendments of random earlier decisions, interleaved with
    30 more decisions, so follow-ups are spread through the log."""
    log: Log = client.application.extensions["ledger"].log
    for slug, key in KEYS.items():
        log.registry.add_platform(slug, slug.replace("-", " ").title(), key.public_key)
    rng = random.Random(14)
    decided: list[tuple[str, str]] = []
    recs: list[dict[str, Any]] = []

    def new_decision(i: int) -> None:
        platform = rng.choice(list(KEYS))
        rec = decision(f"d-{i:03d}", platform=platform, name=rng.choice(NAMES))
        if rec["action"] in ACTIONS:
            rec["action"] = rng.choice(ACTIONS)
        recs.append(rec)
        decided.append((platform, rec["record_id"]))

    for i in range(90):
        new_decision(i)
    for i in range(75):
        if i % 5 in (1, 3):
            new_decision(90 + i)
            continue
        platform, ref = rng.choice(decided)
        make = appeal if i % 2 else amendment
        recs.append(make(f"f-{i:03d}", ref, platform=platform))
    for start in range(0, len(recs), 40):
        items = [sign(r, KEYS[r["platform"]]) for r in recs[start : start + 40]]
        r = client.post("/api/v1/records", json={"records": items})
        assert r.status_code == 201, r.json["errors"][:3]


Row = dict[str, Any]


def _reference(rows: list[Row], feed: Feed, tree_size: int) -> list[Row]:
    """The rows ``feed`` selects, read plainly from every index row, in its order (newest first)."""
    tree = [r for r in rows if r["leaf_index"] < tree_size]
    by_id = {(r["platform"], r["record_id"]): r for r in tree}

    def decision_matches(r: Row) -> bool:
        if any(r[k] != v for k, v in feed.equal.items() if k in query.DECISION_FIELDS):
            return False
        if any(r[k] is not v for k, v in feed.flags.items()):
            return False
        return feed.q is None or feed.q in (r["search_text"] or "")

    def superseded(r: Row) -> bool:
        target = r["record_id"] if r["type"] == "decision" else r["ref_record_id"]
        return r["type"] != "appeal" and any(
            o["type"] == "amendment"
            and (o["platform"], o["ref_record_id"]) == (r["platform"], target)
            and o["leaf_index"] > r["leaf_index"]
            for o in tree
        )

    def matches(r: Row) -> bool:
        if any(r[k] != v for k, v in feed.equal.items() if k not in query.DECISION_FIELDS):
            return False
        if feed.current_only and superseded(r):
            return False
        if decision_matches(r):
            return True
        if feed.direct or r["type"] not in query.FOLLOWUP_TYPES:
            return False
        of = by_id.get((r["platform"], r["ref_record_id"]))
        return of is not None and of["type"] == "decision" and decision_matches(of)

    def key(r: Row) -> tuple[int, int]:
        decided = -1 if r["decided_at_ms"] is None else r["decided_at_ms"]
        return (decided if feed.sort == "decided" else r["leaf_index"], r["leaf_index"])

    return sorted(filter(matches, tree), key=key, reverse=True)


CASES: list[Feed] = [
    Feed(equal={"account_class": "legislator"}),
    Feed(equal={"account_class": "head_of_state"}),
    Feed(equal={"action": "geo_block"}),
    Feed(equal={"platform": "other-video", "account_class": "legislator"}),
    Feed(equal={"type": "appeal", "account_class": "ordinary_user"}),
    Feed(equal={"type": "amendment", "action": "remove_content"}),
    Feed(equal={"type": "decision", "action": "label"}),
    Feed(flags={"political": True}),
    Feed(equal={"account_class": "legislator"}, current_only=True),
    Feed(equal={"account_class": "legislator"}, direct=True),
    Feed(q="presidentia"),
    # Text search with the other filters, its follow-ups, and terms the
    # full-text index cannot settle alone: every trigram of "already rule"
    # is in one example's text, the phrase in none (SQLite's index keeps no
    # positions, so it names candidates that the text itself then refuses).
    Feed(q="presidentia", equal={"account_class": "head_of_state"}),
    Feed(q="candidata", equal={"type": "appeal"}),
    Feed(q="legislatora", equal={"platform": "other-video", "type": "amendment"}),
    Feed(q="presidentia", current_only=True),
    Feed(q="candidata", direct=True),
    Feed(q="already rule"),
    Feed(q="zzzzz"),
    Feed(q="zzzzz", equal={"type": "appeal"}),
    Feed(equal={"platform": "example-social"}),
    Feed(),
]


@contextmanager
def _plan(monkeypatch: pytest.MonkeyPatch, few: bool) -> Iterator[None]:
    """Force the follow-up part's plan: list the follow-ups of the matching
    decisions (``few``) or probe each follow-up's decision."""
    with monkeypatch.context() as m:
        m.setattr(query, "FEW_DECISIONS", 10**9 if few else 1)
        yield


@pytest.mark.parametrize("few", [True, False], ids=["listed", "probed"])
def test_every_page_and_count_is_the_plain_reading(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, few: bool
) -> None:
    _fill(client)
    log: Log = client.application.extensions["ledger"].log
    with log.read() as s:
        rows = [dict(r._mapping) for r in s.execute(select(record_index).order_by(record_index.c.leaf_index))]
    full = rows[-1]["leaf_index"] + 1
    with _plan(monkeypatch, few), log.read() as s:
        for base in CASES:
            for sort in query.SORTS:
                for tree_size in (full, full - 17):
                    feed = Feed(**{**base.__dict__, "sort": sort, "limit": 7})
                    case = f"{base} sort={sort} tree_size={tree_size}"
                    ref = _reference(rows, feed, tree_size)
                    want = [r["leaf_index"] for r in ref]
                    assert _older_pages(s, feed, tree_size) == want, case
                    if ref:
                        oldest = ref[-1]
                        assert _newer_pages(s, feed, tree_size, oldest) == want, case
                    assert browse.count_feed(s, feed, tree_size) == len(want), case
                    assert browse.count_feed(s, feed, tree_size, cap=3) == min(len(want), 4), case
                    # The log's tallies answer a query on platform and type alone, exactly.
                    tallied = browse.tally_feed(s, feed, tree_size)
                    assert (
                        tallied == len(want)
                        if set(base.equal) <= {"platform", "type"} and base == Feed(equal=base.equal)
                        else tallied is None
                    ), case
                    assert query.feed_indexes(s, feed, tree_size, 5) == sorted(want)[:5], case
            # Every case reads some part, but one that no decision matches (no follow-up can).
            assert base.branches(s, full) or not _reference(rows, base, full), base


def _older_pages(s: Any, feed: Feed, tree_size: int) -> list[int]:
    """Every row of ``feed``, page by page from the newest, as the Older links read them."""
    out: list[int] = []
    before: tuple[int, int] | None = None
    while True:
        page = query.feed(s, feed, tree_size, *(before or (None, None)))
        assert len(page) <= feed.limit
        out += [r["leaf_index"] for r in page]
        if len(page) < feed.limit:
            return out
        last = page[-1]
        before = (last["leaf_index"], last["sort_key"])


def _newer_pages(s: Any, feed: Feed, tree_size: int, oldest: Row) -> list[int]:
    """Every row of ``feed``, page by page upwards from ``oldest`` (its last
    row), as the Newer links read them."""
    decided = -1 if oldest["decided_at_ms"] is None else oldest["decided_at_ms"]
    after = (oldest["leaf_index"], decided if feed.sort == "decided" else None)
    out = [oldest["leaf_index"]]
    while True:
        page, more = browse.feed_newer(s, feed, tree_size, *after)
        assert len(page) <= feed.limit
        out = [r["leaf_index"] for r in page] + out
        if not more:
            return out
        after = (page[0]["leaf_index"], page[0]["sort_key"] if feed.sort == "decided" else None)


@contextmanager
def _statements(log: Log) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) run on ``log``'s engine
    meanwhile: through SQLAlchemy, and on the driver's cursor
    (``ledger.db.connection_sql``: the feed's pages and counts,
    ``db.DriverStatement``), which SQLAlchemy's events do not see. A
    driver statement's placeholders are given as the driver takes them."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    real = db.connection_sql

    def on_driver(connection: Any, sql: str, params: Any = ()) -> Any:
        if connection.engine.url == log.engine.url:
            seen.append((sql if connection.dialect.name == "sqlite" else sql.replace("?", "%s"), tuple(params)))
        return real(connection, sql, params)

    event.listen(log.engine, "before_cursor_execute", capture)
    db.connection_sql = on_driver  # type: ignore[assignment]
    try:
        yield seen
    finally:
        db.connection_sql = real  # type: ignore[assignment]
        event.remove(log.engine, "before_cursor_execute", capture)


@pytest.mark.parametrize(
    "feed",
    [Feed(equal={"account_class": "legislator"}, limit=5), Feed(q="presidentia", limit=5)],
    ids=["class", "text"],
)
@pytest.mark.parametrize("few", [True, False], ids=["listed", "probed"])
def test_each_part_reads_an_index_in_the_pages_order(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, few: bool, feed: Feed
) -> None:
    """The statements of a filtered page, older and newer, in log order,
    as each database plans them: no part collects and sorts every match
    (SQLite's "USE TEMP B-TREE FOR ORDER BY" or "MULTI-INDEX OR";
    PostgreSQL's Sort, with sorting and sequential scans priced out, so
    that a plan without them exists), the regression a million records
    showed (10.8 s a page on SQLite).

    A text search on SQLite reads the full-text index first, in its row
    ID order (the log's), and probes each candidate's row: no statement
    builds the index's whole candidate list (a "LIST SUBQUERY" on it, 420 ms
    a request for a term in a quarter of 400,000 records), and a
    follow-up's decision is checked by its own text, not by the index.

    Whether each row is superseded probes ``record_index_ref``: SQLite's
    planner read every amendment after the row instead (1.0 s of CPU for a
    page of 50 rows near the start of 400,000 records)."""
    _fill(client)
    log: Log = app.extensions["ledger"].log
    with _plan(monkeypatch, few), log.read() as s:
        size = log.latest_size()
        first = query.feed(s, feed, size, None)
        assert len(first) == feed.limit
        with _statements(log) as seen:
            query.feed(s, feed, size, first[-1]["leaf_index"])
            browse.feed_newer(s, feed, size, first[-1]["leaf_index"])
    pages = [(st, p) for st, p in seen if "ORDER BY" in st and "count(" not in st]
    assert len(pages) == 6, [st[:80] for st, _ in seen]  # three parts, two pages
    with log.engine.connect() as conn:
        if is_sqlite(log.engine):
            own = [(st, p) for st, p in pages if "FROM record_search CROSS JOIN record_index ON" in st]
            assert len(own) == (0 if feed.q is None else 2), [st[:80] for st, _ in pages]
            for statement, parameters in own:
                rows = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
                assert rows[0].startswith("SCAN record_search VIRTUAL TABLE"), rows
                assert "LIST SUBQUERY" not in " | ".join(rows), rows
            if not few:
                assert all("record_search" not in st for st, p in pages if (st, p) not in own), pages
        for statement, parameters in pages:
            if is_sqlite(log.engine):
                plan = " | ".join(
                    str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                )
                assert "TEMP B-TREE" not in plan, plan
                assert "MULTI-INDEX OR" not in plan, plan
                # Whether a row is superseded: a probe of the amendments of its
                # decision, not a read of every amendment after it.
                later = [line for line in plan.split(" | ") if " later " in line]
                assert later, plan
                assert all("USING INDEX record_index_ref " in line for line in later), plan
            else:
                conn.exec_driver_sql("SET enable_seqscan = off")
                conn.exec_driver_sql("SET enable_sort = off")
                plan = " | ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
                assert "Sort" not in plan, plan


def test_page_rows_are_the_index_rows_and_their_history(client: FlaskClient) -> None:
    """A page's rows, read in one statement per part with their codes looked
    up in a dict (``query.page_rows``), are the index rows as SQLAlchemy
    reads them one at a time through ``Code``; and each row's
    ``superseded`` is what the record's own ``history`` (a probe per
    record, as its page shows it) says, over decisions, appeals and amendments."""
    _fill(client)
    log: Log = client.application.extensions["ledger"].log
    with log.read() as s:
        size = log.latest_size()
        superseded = 0
        for feed in (Feed(limit=200), Feed(equal={"account_class": "legislator"}, limit=200, sort="decided")):
            page = query.feed(s, feed, size, None)
            assert {r["type"] for r in page} == {"decision", "appeal", "amendment"}
            for r in page:
                alone = s.execute(select(record_index).where(record_index.c.leaf_index == r["leaf_index"])).one()
                assert {k: r[k] for k in alone._mapping} == dict(alone._mapping)
                record = query.record_at(s, r["leaf_index"])
                assert bool(r["superseded"]) == (query.history(s, record).superseded_by is not None), r
                superseded += bool(r["superseded"])
        assert superseded


def test_a_query_that_counted_many_decisions_counts_no_more(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many matching decisions stay many as the tree grows, so the plan's
    count runs once; the pages are the same either way, and a query with
    other values (or a smaller threshold) is counted for itself."""
    _fill(client)
    log: Log = client.application.extensions["ledger"].log
    feed = Feed(equal={"account_class": "legislator"}, limit=5)
    with log.read() as s, _statements(log) as seen:

        def counts() -> int:
            return sum(st.startswith("SELECT count(") for st, _ in seen)

        size = log.latest_size()
        with monkeypatch.context() as m:
            m.setattr(query, "FEW_DECISIONS", 2)
            first = query.feed(s, feed, size, None)
            assert counts() == 1
            assert query.feed(s, feed, size - 10, None) == query.feed(s, feed, size - 10, None)
            assert query.feed(s, feed, size, None) == first
            assert counts() == 1
            query.feed(s, Feed(equal={"account_class": "head_of_state"}, limit=5), size, None)
            assert counts() == 2
        query.feed(s, feed, size, None)  # FEW_DECISIONS back at 500: counted again
        assert counts() == 3
    assert [r["leaf_index"] for r in first] == [r["leaf_index"] for r in query_plain(client, feed, size)]


def _more_cases(rows: list[Row]) -> list[Feed]:
    """The shapes of the bench's filters (``bench.feed_cpu``) that :data:`CASES`
    lacks, and the other filters' own: a rule, a subject, a person, date
    ranges, a territory, the flags, values in the statement (the type)."""
    d = next(r for r in rows if r["type"] == "decision" and r["subject_key"] and r["rule_id"] and r["decided_at_ms"])
    mid = rows[len(rows) // 2]
    return [
        Feed(equal={"rule_id": d["rule_id"]}),
        Feed(equal={"rule_id": d["rule_id"], "rule_version": d["rule_version"]}),
        Feed(equal={"subject_key": d["subject_key"]}),
        Feed(equal={"subject_key": d["subject_key"], "type": "appeal"}),
        Feed(equal={"qid": "Q4115189"}),
        Feed(decided_from_ms=d["decided_at_ms"] - 86_400_000, decided_to_ms=d["decided_at_ms"] + 86_400_000),
        Feed(logged_from_ms=mid["logged_at_ms"], logged_to_ms=mid["logged_at_ms"] + 3_600_000),
        Feed(territory="DE", equal={"category": d["category"]}),
        Feed(flags={"violation_found": True, "exemption_applied": False}, equal={"severity": d["severity"]}),
    ]


def _positional(statement: str, parameters: Any) -> tuple[str, tuple[Any, ...]]:
    """A statement SQLAlchemy sent, with its parameters in the order of
    their placeholders as the driver takes them (``?`` on SQLite, psycopg's
    ``%s`` for SQLAlchemy's ``%(name)s``)."""
    if isinstance(parameters, dict):
        names = re.findall(r"%\((\w+)\)s", statement)
        return re.sub(r"%\((\w+)\)s", "%s", statement), tuple(parameters[n] for n in names)
    return statement, tuple(parameters)


@pytest.mark.parametrize("few", [True, False], ids=["listed", "probed"])
def test_driver_statements_send_what_sqlalchemy_sends(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, few: bool
) -> None:
    """Each statement the feed runs on the driver's cursor (``db.DriverStatement``:
    the pages' parts, the count of matching decisions, the pages' counts,
    the cards' follow-ups) sends the SQL and parameters that SQLAlchemy
    sends for the same statement, placeholders aside, and gives the rows
    its result gives, values and their types: for each filter's shape, both
    sorts, older and newer pages, under both plans of the follow-ups."""
    _fill(client)
    log: Log = client.application.extensions["ledger"].log
    real = db.DriverStatement.rows
    checked: list[str] = []

    def rows(self: db.DriverStatement, session: Any, params: Any) -> list[Any]:
        with _statements(log) as driven:
            got = real(self, session, params)
        with _statements(log) as sent:
            want = [tuple(r) for r in session.execute(self.statement, params)]
        [(sql, values)] = driven
        [(statement, parameters)] = sent
        assert (sql, values) == _positional(statement, parameters)
        assert got == want, sql
        assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in want], sql
        checked.append(sql)
        return got

    with log.read() as s:
        every = [dict(r._mapping) for r in s.execute(select(record_index).order_by(record_index.c.leaf_index))]
    size = every[-1]["leaf_index"] + 1
    monkeypatch.setattr(db.DriverStatement, "rows", rows)
    with _plan(monkeypatch, few), log.read() as s:
        for base in [*CASES, *_more_cases(every)]:
            for sort in query.SORTS:
                feed = Feed(**{**base.__dict__, "sort": sort, "limit": 7})
                page = query.feed(s, feed, size, None, columns=api_feed.COLUMNS)
                if page:
                    last, key = page[-1]["leaf_index"], page[-1]["sort_key"]
                    older = query.feed(s, feed, size, last, key, columns=cards.COLUMNS)
                    browse.feed_newer(s, feed, size, last, key, columns=cards.COLUMNS)
                    browse.followups(s, page + older, size)
                browse.count_feed(s, feed, size)
                browse.count_feed(s, feed, size, cap=3)
    # The decisions' count (Feed._few), the pages' counts (of a union of
    # parts), the follow-ups and the pages' parts.
    kinds = ["FROM (SELECT decision.leaf_index", "count_1 \nFROM (SELECT anon_", "ref_record_id IS NOT NULL"]
    kinds.append("ORDER BY")
    assert all(any(k in sql for sql in checked) for k in kinds), {sql[:60] for sql in checked}
    # Both lists of the follow-ups' record IDs: of one platform, and of two.
    assert {sql.count(" IN (") for sql in checked if "ref_record_id IS NOT NULL" in sql} >= {1, 2}


def query_plain(client: FlaskClient, feed: Feed, size: int) -> list[Row]:
    log: Log = client.application.extensions["ledger"].log
    with log.read() as s:
        rows = [dict(r._mapping) for r in s.execute(select(record_index).order_by(record_index.c.leaf_index))]
    return _reference(rows, feed, size)[: feed.limit]


def test_counts_grown_from_a_smaller_tree_equal_counts_made_afresh(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``browse.counts`` grows the tallies of a larger tree from a smaller
    one's (issue 14); each must equal the tallies counted from nothing."""
    _fill(client)
    log: Log = client.application.extensions["ledger"].log
    monkeypatch.setattr(browse, "_counts_cache", {})
    with log.read() as s:
        full = log.latest(s).size
        sizes = (1, full // 3, full // 3 + 1, full - 17, full)
        grown = [browse.counts(s, n) for n in sizes]
        for n, got in zip(sizes, grown, strict=True):
            monkeypatch.setattr(browse, "_counts_cache", {})
            assert got == browse.counts(s, n), n
    assert sum(k for _, _, k in grown[-1].by_platform) == 90 + 45 + 30


def test_history_reads_the_follow_ups_by_their_index(app: Flask, client: FlaskClient) -> None:
    """A record's history reads its appeals and amendments through
    ``record_index_ref`` (one table since migration 0015_fold_records):
    no plan scans it."""
    _fill(client)
    log: Log = app.extensions["ledger"].log
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    with log.read() as s:
        amended = s.execute(
            select(record_index.c.platform, record_index.c.ref_record_id).where(record_index.c.type == "amendment")
        ).first()
        assert amended is not None
        row = query.record_by_id(s, amended.platform, amended.ref_record_id)
        event.listen(log.engine, "before_cursor_execute", capture)
        try:
            found = query.history(s, row)
        finally:
            event.remove(log.engine, "before_cursor_execute", capture)
    assert found.amendments
    [(statement, parameters)] = [(st, p) for st, p in seen if "ref_record_id = " in st]
    plan = _explained(log, statement, parameters)
    assert "record_index_ref" in plan, plan
    assert "SCAN" not in plan, plan
    assert "Seq Scan" not in plan, plan


def _explained(log: Log, statement: str, parameters: Any) -> str:
    """The plan of ``statement``: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's
    EXPLAIN with statistics (as autovacuum would gather: without them, a
    table of 165 rows looks as good read whole) and sequential scans
    priced out, so that a plan without a usable index shows as one."""
    with log.engine.connect() as conn:
        if is_sqlite(log.engine):
            return " | ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        conn.exec_driver_sql("ANALYZE record_index")
        conn.exec_driver_sql("SET enable_seqscan = off")
        return " | ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement.replace("?", "%s"), parameters))


def test_the_duplicate_lookup_reads_the_unique_index(app: Flask, client: FlaskClient) -> None:
    """The submissions' lookup of records already logged (``ledger.submit``)
    reads the unique (platform, record_id) index of ``record_index`` (migration
    0015_fold_records), for one ID and for many: on SQLite a range of it, on
    PostgreSQL a probe an ID (tests/ledger/test_storage.py checks its plan
    without planner settings)."""
    _fill(client)
    log: Log = app.extensions["ledger"].log
    with log.read() as s:
        ids = s.execute(select(record_index.c.record_id).order_by(record_index.c.leaf_index).limit(40)).scalars().all()
    for chosen in (ids[:1], ids):
        statement, parameters = submit.lookup_statement(is_sqlite(log.engine), "example-social", chosen)
        plan = _explained(log, statement, tuple(parameters))
        assert "record_index_platform_record_id" in plan or "sqlite_autoindex_record_index_" in plan, plan
        assert "SCAN" not in plan, plan
    assert "Seq Scan" not in plan, plan
