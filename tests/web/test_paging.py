"""Newer and Older (issue 15): paging down a filtered feed and back up
visits the same pages, pinned to one tree size while the log grows."""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient

from tests.recordkit import decision, sign
from tests.web.test_web import KEY_SOCIAL, Data, _get, _indexes, data  # noqa: F401  (fixture)
from web import views_feed


def _link(body: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', body)
    return html.unescape(found.group(1)) if found else None


def test_older_then_newer_walks_back_over_the_same_pages(client: FlaskClient, data: Data) -> None:  # noqa: F811
    before = len(client.get("/api/v1/records?limit=200&platform=example-social").json["records"])
    bulk = 80 if (before + 80) % 25 else 81  # a short last page: a full one is followed by an empty one
    items = [sign(decision(f"bulk-{i:02d}"), KEY_SOCIAL) for i in range(bulk)]
    assert client.post("/api/v1/records", json={"records": items}).status_code == 201
    expected = [
        r["leaf_index"] for r in client.get("/api/v1/records?limit=200&platform=example-social").json["records"]
    ]
    url: str | None = "/records?platform=example-social&limit=25"
    down: list[list[int]] = []
    body = ""
    while url:
        body = _get(client, url)
        down.append(_indexes(body))
        # Records logged meanwhile change no page: every link pins the tree size.
        late = sign(decision(f"late-{len(down)}"), KEY_SOCIAL)
        assert client.post("/api/v1/records", json=late).status_code == 201
        url = _link(body, "next")
    assert [i for page in down for i in page] == expected
    assert len(down) == -(-len(expected) // 25) >= 4
    # The first page has no "Newer"; every later one has.
    assert _link(_get(client, "/records?platform=example-social&limit=25"), "prev") is None
    up = [_indexes(body)]
    url = _link(body, "prev")
    while url:
        body = _get(client, url)
        up.append(_indexes(body))
        assert 'href="/records?platform=example-social&amp;limit=25">Newest</a>' in body
        url = _link(body, "prev")
    assert up == down[::-1]


def test_sorted_by_decision_time_older_pages_visit_every_record_once(client: FlaskClient, data: Data) -> None:  # noqa: F811
    """Issue 15: the feed's Order select, newest decision first, as the JSON feed sorts it."""
    items = [sign(decision(f"sorted-{i:02d}"), KEY_SOCIAL) for i in range(30)]
    assert client.post("/api/v1/records", json={"records": items}).status_code == 201
    expected = [r["leaf_index"] for r in client.get("/api/v1/records?limit=200&sort=decided").json["records"]]
    assert expected != [r["leaf_index"] for r in client.get("/api/v1/records?limit=200").json["records"]]
    body = _get(client, "/records")
    assert '<option value="decided">Newest decision first</option>' in body
    url: str | None = "/records?sort=decided&limit=25"
    seen: list[int] = []
    pages = 0
    while url:
        body = _get(client, url)
        seen += _indexes(body)
        pages += 1
        url = _link(body, "next")
    assert seen == expected
    assert pages > 1


def test_sorted_by_decision_time_newer_walks_back_over_the_older_pages(client: FlaskClient, data: Data) -> None:  # noqa: F811
    """Newer for ``sort=decided`` as for log order: decision times out of log
    order, with ties, and records logged meanwhile (decided later than all,
    so unpinned they would top the first page) change no page."""
    items = [
        sign(decision(f"when-{i:02d}", decided_at=f"2026-04-16T10:{(i * 7) % 13:02d}:00Z"), KEY_SOCIAL)
        for i in range(60)
    ]
    assert client.post("/api/v1/records", json={"records": items}).status_code == 201
    expected = [r["leaf_index"] for r in client.get("/api/v1/records?limit=200&sort=decided").json["records"]]
    first = "/records?sort=decided&limit=25"
    url: str | None = first
    down: list[list[int]] = []
    body = ""
    while url:
        body = _get(client, url)
        down.append(_indexes(body))
        late = sign(decision(f"late-decided-{len(down)}", decided_at="2026-04-16T10:44:00Z"), KEY_SOCIAL)
        assert client.post("/api/v1/records", json=late).status_code == 201
        url = _link(body, "next")
    assert [i for page in down for i in page] == expected
    assert len(down) >= 3
    assert _link(_get(client, first), "prev") is None
    up = [_indexes(body)]
    url = _link(body, "prev")
    while url:
        assert "sort=decided" in url
        body = _get(client, url)
        up.append(_indexes(body))
        url = _link(body, "prev")
    assert up == down[::-1]


def test_a_newer_link_of_one_order_is_refused_in_the_other(client: FlaskClient, data: Data) -> None:  # noqa: F811
    items = [sign(decision(f"order-{i:02d}"), KEY_SOCIAL) for i in range(30)]
    assert client.post("/api/v1/records", json={"records": items}).status_code == 201
    body = _get(client, "/records?sort=decided&limit=25")
    older = _link(body, "next") or ""
    newer = _link(_get(client, older), "prev") or ""
    assert "newer=" in newer
    token = newer.split("newer=")[1].split("&")[0]
    _get(client, f"/records?limit=25&newer={token}", status=400)
    logged = _link(_get(client, _link(_get(client, "/records?limit=25"), "next") or ""), "prev") or ""
    logged_token = logged.split("newer=")[1].split("&")[0]
    _get(client, f"/records?sort=decided&limit=25&newer={logged_token}", status=400)


def test_a_count_past_the_cap_is_stated_as_a_bound_and_paging_goes_on(
    client: FlaskClient,
    data: Data,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The "N records match" line counts up to ``COUNT_CAP`` only (issue 14:
    counting every match cost most of a page's CPU at 200k records). Past
    it the page says "more than" the cap, never a wrong number; below it, or
    for a view the log keeps tallies of, the count is exact; the Older links
    still reach every record."""
    monkeypatch.setattr(views_feed, "COUNT_CAP", 30)
    items = [sign(decision(f"capped-{i:02d}"), KEY_SOCIAL) for i in range(39)]
    items.append(sign(decision("capped-39", statement="One statement names the quokka."), KEY_SOCIAL))
    assert client.post("/api/v1/records", json={"records": items}).status_code == 201
    expected = [
        r["leaf_index"]
        for r in client.get("/api/v1/records?limit=200&platform=example-social&action=remove_content").json["records"]
    ]
    assert len(expected) > 30
    body = _get(client, "/records?platform=example-social&action=remove_content&limit=25")
    assert "More than 30 records match (counted up to 30 only, to keep this page fast)." in body
    assert "Jump to the results (more than 30)" in body
    assert "if more match, narrow the filters" in body
    seen, url = _indexes(body), _link(body, "next")
    while url:
        body = _get(client, url)
        assert "More than 30 records match" in body
        seen += _indexes(body)
        url = _link(body, "next")
    assert seen == expected
    # A view on platform and type alone is counted exactly from the log's
    # tallies, however many match.
    every = client.get("/api/v1/records?limit=200&platform=example-social").json["records"]
    body = _get(client, "/records?platform=example-social")
    assert f'<span class="count">{len(every)}</span> records match.' in body
    # A view within the cap is counted exactly.
    body = _get(client, "/records?q=quokka")
    assert '<span class="count">1</span> record matches.' in body
    assert "Jump to the results (1)" in body
