"""Feed pages that read only the ``record_index`` columns they show
(``ledger.query.feed``'s ``columns``), on SQLite and PostgreSQL: every JSON
feed answer, HTML page of cards and Atom feed is byte for byte what the
rows of every column gave, read by ``page_rows`` as it was before pages
named their columns (:func:`_every_column_page_rows`, kept here as the
reference), on a log with appeals, amendments and superseded records; and
the pages' statements name no other column."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import SmallInteger, select, type_coerce
from sqlalchemy.orm import Session

from api import feed as api_feed
from ledger import browse, query
from ledger.db import Code, record_index
from ledger.lru import LRU
from ledger.records.codes import row_decoder
from tests.browser.dataset import PRESIDENT
from tests.recordkit import amendment, appeal, sign
from tests.web.test_cards import fixed_now  # noqa: F401  (fixture)
from tests.web.test_web import KEY_SOCIAL, Data, data  # noqa: F401  (fixture)
from web import cards

JSON_URLS = [
    "/api/v1/records",
    "/api/v1/records?limit=200",
    "/api/v1/records?limit=3",
    "/api/v1/records?type=appeal",
    "/api/v1/records?type=amendment&limit=2",
    "/api/v1/records?political=true&violation_found=true",
    "/api/v1/records?account_class=head_of_state",
    "/api/v1/records?q=mayor",
    "/api/v1/records?current=true",
    "/api/v1/records?sort=decided&limit=4",
    f"/api/v1/subjects/{PRESIDENT}",
    "/api/v1/records?qid=Q4115189",
]
HTML_URLS = [
    "/",
    "/records",
    "/records?limit=200",
    "/records?limit=25",
    "/records?type=appeal",
    "/records?type=amendment",
    "/records?account_class=political&violation_found=true",
    "/records?q=mayor",
    "/records?current=true",
    "/records?sort=decided&limit=25",
    f"/subjects/{PRESIDENT}",
    "/people/Q4115189",
    "/platforms/example-social",
    "/records.atom",
    "/records.atom?type=appeal",
    "/platforms/example-social.atom",
]


def _every_column_page_rows(
    session: Session,
    q: query.Feed,
    tree_size: int,
    limit: int,
    cursor: tuple[int | None, int] | None,
    newest_first: bool,
    columns: tuple[str, ...] | None = query.COLUMNS,
) -> list[dict[str, Any]]:
    """``ledger.query.page_rows`` before pages named their columns: every
    column of ``record_index`` (codes decoded as then), ``superseded`` and
    ``sort_key``, whatever ``columns`` the caller names."""
    if columns is None:  # the downloads' leaf indexes: not a page's rows
        return query.page_rows(session, q, tree_size, limit, cursor, newest_first, None)
    c = record_index.c
    every = [type_coerce(col, SmallInteger).label(col.name) if isinstance(col.type, Code) else col for col in c]
    names = (*(col.name for col in c), "superseded", "sort_key")
    decode = row_decoder([col.name if isinstance(col.type, Code) else None for col in c] + [None, None])
    params = q.params(tree_size)
    if cursor is not None:
        params["cursor_key"], params["cursor_leaf"] = cursor
    found: dict[int, dict[str, Any]] = {}
    page: list[dict[str, Any]] = []
    for part in q.branches(session, tree_size):
        edge = len(page) == limit
        if edge:
            params["edge_key"], params["edge_leaf"] = page[-1]["sort_key"], page[-1]["leaf_index"]
        key = query.DECIDED_KEY if q.sort == "decided" else c.leaf_index
        cols = [query.DECIDED_KEY, part.logged] if q.sort == "decided" else [part.logged]
        where = []
        if cursor is not None:
            where.append(query._beyond(q.sort, "cursor", not newest_first, part.logged))
        if edge:
            where.append(query._beyond(q.sort, "edge", newest_first, part.logged))
        stmt = (
            part.select(*every, query.superseded().label("superseded"), key.label("sort_key"))
            .where(*where)
            .order_by(*([col.desc() for col in cols] if newest_first else cols))
            .limit(limit)
        )
        for r in session.execute(stmt, params):
            row = dict(zip(names, decode(r), strict=True))
            found.setdefault(row["leaf_index"], row)
        ranked = sorted(found.values(), key=lambda row: (row["sort_key"], row["leaf_index"]), reverse=newest_first)
        page = ranked[:limit]
    return page


@contextlib.contextmanager
def _every_column(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pages read as before they named their columns."""
    with monkeypatch.context() as m:
        m.setattr(query, "page_rows", _every_column_page_rows)
        m.setattr(browse, "page_rows", _every_column_page_rows)
        yield


@pytest.fixture
def followups(app: Flask, client: FlaskClient, data: Data) -> None:  # noqa: F811
    """Appeals and amendments beyond the data set's: a decision appealed and
    amended twice (its first amendment superseded too), an amendment appealed."""
    for rec in (
        appeal("apl-7", "dec-court"),
        amendment("amd-7", "dec-court"),
        amendment("amd-8", "dec-court"),
        appeal("apl-8", "dec-hos"),
    ):
        assert client.post("/api/v1/records", json=sign(rec, KEY_SOCIAL)).status_code == 201


def _pages(app: Flask, client: FlaskClient, urls: list[str]) -> dict[str, bytes]:
    """Each of ``urls`` (and the next and newer page of each that has one)
    drawn afresh, none of its rows kept."""
    app.extensions["feed_summaries"] = LRU(0)
    app.extensions["feed_cards"] = LRU(0)
    out = {}
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        out[url] = r.get_data()
    return out


def _with_pages(client: FlaskClient, urls: list[str]) -> list[str]:
    """``urls`` and the pages their links lead to: the next page of each
    JSON answer, the older and newer pages of each HTML feed."""
    out = list(urls)
    for url in urls:
        if url.startswith("/api/"):
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.json)
            cursor = answer.json["next_cursor"]
            if cursor:
                out.append(url + ("&" if "?" in url else "?") + f"cursor={cursor}")
        elif url == "/records?limit=25":
            pin = query.encode_cursor(*_last_of_first_page(client))
            out += [f"{url}&cursor={pin}", f"{url}&newer={pin}"]
    return out


def _last_of_first_page(client: FlaskClient) -> tuple[int, int]:
    """(tree size, leaf index) of the last record of the first page of three."""
    page = client.get("/api/v1/records?limit=3").json
    return page["tree_size"], page["records"][-1]["leaf_index"]


def test_pages_of_shown_columns_are_every_columns_byte_for_byte(
    app: Flask,
    client: FlaskClient,
    followups: None,
    fixed_now: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    urls = _with_pages(client, JSON_URLS + HTML_URLS)
    drawn = _pages(app, client, urls)
    with _every_column(monkeypatch):
        expected = _pages(app, client, urls)
    assert b'"superseded":true' in expected["/api/v1/records?limit=200"]
    assert b'"type":"appeal"' in expected["/api/v1/records?limit=200"]
    assert b'class="row-followups"' in expected["/records"]
    assert b"row-superseded" in expected["/records?limit=200"]
    assert b"<entry>" in expected["/records.atom"]
    for url in urls:
        assert drawn[url] == expected[url], url


def test_pages_read_only_the_columns_they_show(app: Flask, client: FlaskClient, followups: None) -> None:
    log = app.extensions["ledger"].log
    read = {api_feed.COLUMNS: "JSON feed", cards.COLUMNS: "cards"}
    with log.read() as s:
        size = log.latest(s).size
        for columns, page in read.items():
            assert "search_text" not in columns, page
            assert "territories" not in columns, page
            for q in (query.Feed(), query.Feed(equal={"account_class": "head_of_state"}, sort="decided")):
                rows = query.feed(s, q, size, None, columns=columns)
                assert rows, page
                for row in rows:
                    assert set(row) == {"leaf_index", *columns, "superseded", "sort_key"}, page
        every = query.feed(s, query.Feed(), size, None)
        assert set(every[0]) == {*query.COLUMNS, "superseded", "sort_key"}
        # The statement itself names no other column of record_index.
        stmts = [v for k, v in query._BUILT.items() if k[0] == "page" and k[-1] == api_feed.COLUMNS]
        assert stmts
        for stmt in stmts:
            assert set(stmt.selected_columns.keys()) == {*api_feed.COLUMNS, "superseded", "sort_key"}
            assert len(select(record_index).selected_columns) > len(stmt.selected_columns)
