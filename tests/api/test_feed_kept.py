"""The JSON feed's summaries kept per row (api/feed.py), on SQLite and
PostgreSQL: every answer is byte for byte what ``jsonify`` made of the
summaries built afresh, whether kept or not, compact or indented; a kept
summary says ``superseded`` as the page's tree does."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from api import feed as api_feed
from ledger import query
from tests.api.test_feed import KEY, dataset  # noqa: F401  (fixture)
from tests.recordkit import amendment, decision, sign

URLS = [
    "/api/v1/records",
    "/api/v1/records?limit=200",
    "/api/v1/records?limit=7",
    "/api/v1/records?type=appeal",
    "/api/v1/records?rule_id=hate/slurs&sort=decided&limit=5",
    "/api/v1/records?q=mayor",
    "/api/v1/records?current=true",
    "/api/v1/subjects/politician-subject-0001?limit=9",
]


def _fresh(app: Flask, url: str) -> bytes:
    """The answer to ``url`` as the feed gave it before it kept summaries:
    ``jsonify`` of the rows' summaries built afresh."""
    with app.test_request_context(url):
        path, args = request.path, request.args
        extra = {}
        if path.startswith("/api/v1/subjects/"):
            extra["subject_key"] = path.rsplit("/", 1)[1]
            parsed = api_feed.parse_query(api_feed._SUBJECT_QUERY, args)
        else:
            parsed = api_feed.parse_query(api_feed._FEED_QUERY, args)
        feed = api_feed.feed_of(parsed, extra)
        log = app.extensions["ledger"].log
        with log.read() as s:
            size = log.latest(s).size
            before = key = None
            if "cursor" in parsed:
                size, before, key = query.decode_sorted_cursor(parsed["cursor"])  # type: ignore[misc]
            rows = query.feed(s, feed, size, before, key)
        last = rows[-1] if len(rows) == feed.limit else None
        body: dict[str, Any] = {
            "tree_size": size,
            "records": [api_feed._summary(r) for r in rows],
            "next_cursor": None
            if last is None
            else query.encode_cursor(size, last["leaf_index"], last["sort_key"] if feed.sort == "decided" else None),
        }
        body.update(extra)
        return bytes(app.json.response(body).get_data())


def _urls(client: FlaskClient) -> list[str]:
    """:data:`URLS` and the second page of each that has one."""
    out = list(URLS)
    for url in URLS:
        cursor = client.get(url).json["next_cursor"]
        if cursor:
            out.append(url + ("&" if "?" in url else "?") + f"cursor={cursor}")
    return out


@pytest.mark.parametrize("compact", [None, False])
def test_answers_are_jsonify_byte_for_byte(
    app: Flask,
    client: FlaskClient,
    dataset: list[dict[str, Any]],  # noqa: F811
    compact: bool | None,
) -> None:
    app.json.compact = compact  # type: ignore[attr-defined]
    urls = _urls(client)
    for url in urls:
        first, again = client.get(url), client.get(url)  # drawn, then kept
        assert first.status_code == 200, (url, first.json)
        assert first.headers["Cache-Control"] == "no-store"
        assert first.mimetype == "application/json"
        expected = _fresh(app, url)
        assert first.get_data() == expected, url
        assert again.get_data() == expected, url
    assert len(app.extensions["feed_summaries"]) > 0


def test_a_kept_summary_follows_the_pages_tree(app: Flask, client: FlaskClient) -> None:
    app.extensions["ledger"].log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    for rec in (decision("d-1"), decision("d-2")):
        assert client.post("/api/v1/records", json=sign(rec, KEY)).status_code == 201

    def superseded(url: str = "/api/v1/records") -> dict[str, bool]:
        return {r["record_id"]: r["superseded"] for r in client.get(url).json["records"]}

    assert superseded() == {"d-1": False, "d-2": False}
    assert superseded() == {"d-1": False, "d-2": False}  # kept
    assert client.post("/api/v1/records", json=sign(amendment("amd-1", "d-1"), KEY)).status_code == 201
    assert superseded() == {"amd-1": False, "d-1": True, "d-2": False}
    pinned = f"/api/v1/records?limit=1&cursor={query.encode_cursor(2, 2)}"
    assert superseded(pinned) == {"d-1": False}
    assert client.post("/api/v1/records", json=sign(amendment("amd-2", "d-1"), KEY)).status_code == 201
    assert superseded() == {"amd-2": False, "amd-1": True, "d-1": True, "d-2": False}
