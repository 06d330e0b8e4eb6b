"""The feed's cards drawn and kept per record (web/cards.py), on SQLite and
PostgreSQL: every page that lists cards is byte for byte what the Jinja
macro it replaced drew (tests/web/reference/_macros.html), whether its cards
are drawn or kept; a kept card gains its appeal and amendment as the log
does, and a page pinned to an earlier tree still shows that tree's."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, FileSystemLoader

from ledger.lru import LRU
from ledger.query import encode_cursor
from tests.browser.dataset import PRESIDENT
from tests.recordkit import amendment, appeal, decision, sign
from tests.web.test_followups import _card
from tests.web.test_web import KEY_SOCIAL, Data, _get, data  # noqa: F401  (fixture)
from web import present

REFERENCE = Path(__file__).resolve().parent / "reference"

#: Every page that lists cards, with the filters, sorts and pages that vary them.
CARD_PAGES = [
    "/",
    "/records",
    "/records?limit=200",
    "/records?account_class=political&violation_found=true",
    "/records?type=appeal",
    "/records?type=amendment",
    "/records?q=mayor",
    "/records?sort=decided&limit=25",
    "/records?current=true",
    f"/subjects/{PRESIDENT}",
    "/subjects/xss-subject-key-0001",
    "/people/Q4115189",
    "/platforms/example-social",
    "/platforms/other-video",
]


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative times ("3 days ago") as a function of the time alone, so that two draws of a page compare."""
    monkeypatch.setattr(present, "relative", lambda value, now=None: f"at {value}")


@contextlib.contextmanager
def _the_macro(app: Flask) -> Iterator[None]:
    """Pages drawn with the card macro that web/cards.py replaced."""
    loader = app.jinja_env.loader
    assert loader is not None
    app.jinja_env.loader = ChoiceLoader([FileSystemLoader(str(REFERENCE)), loader])
    app.jinja_env.cache.clear()  # type: ignore[union-attr]
    try:
        yield
    finally:
        app.jinja_env.loader = loader
        app.jinja_env.cache.clear()  # type: ignore[union-attr]


def test_pages_are_the_macros_byte_for_byte(app: Flask, client: FlaskClient, data: Data, fixed_now: None) -> None:  # noqa: F811
    # A page whose cards a later amendment or appeal changed: kept before, drawn again after.
    _get(client, "/records?limit=200")
    assert client.post("/api/v1/records", json=sign(appeal("apl-9", "dec-court"), KEY_SOCIAL)).status_code == 201
    assert client.post("/api/v1/records", json=sign(amendment("amd-9", "dec-court"), KEY_SOCIAL)).status_code == 201
    drawn = {url: _get(client, url) for url in CARD_PAGES}
    assert len(app.extensions["feed_cards"]) > 0
    kept = {url: _get(client, url) for url in CARD_PAGES}
    with _the_macro(app):
        expected = {url: _get(client, url) for url in CARD_PAGES}
    assert 'class="row-followups"' in expected["/records"]
    assert "row-superseded" in expected["/records?limit=200"]
    for url in CARD_PAGES:
        assert '<li class="row' in expected[url], url
        assert drawn[url] == expected[url], url
        assert kept[url] == expected[url], url


def test_pinned_pages_are_the_macros_byte_for_byte(
    app: Flask,
    client: FlaskClient,
    data: Data,  # noqa: F811
    fixed_now: None,
) -> None:
    size = len(re.findall(r"<li class=\"row", _get(client, "/records?limit=200")))
    pinned = [f"/records?limit=200&cursor={encode_cursor(n, n)}" for n in range(size // 2, size + 1, 3)]
    drawn = [_get(client, url) for url in pinned]
    with _the_macro(app):
        assert [_get(client, url) for url in pinned] == drawn


def test_a_kept_card_gains_its_appeal_and_amendment(app: Flask, client: FlaskClient) -> None:
    app.extensions["ledger"].log.registry.add_platform("example-social", "Example Social", KEY_SOCIAL.public_key)

    def post(record: dict[str, object]) -> None:
        assert client.post("/api/v1/records", json=sign(record, KEY_SOCIAL)).status_code == 201

    def both() -> tuple[str, dict[str, object]]:
        card = _card(_get(client, "/records"), "dec-1")
        (summary,) = [r for r in client.get("/api/v1/records").json["records"] if r["record_id"] == "dec-1"]
        return card, summary

    post(decision("dec-1"))
    post(decision("dec-2"))
    card, summary = both()
    assert "row-followups" not in card
    assert "row-superseded" not in card
    assert summary["superseded"] is False
    assert both() == (card, summary)  # kept, and the same

    post(appeal("apl-1", "dec-1"))
    card, summary = both()
    assert "<strong>Reversed on appeal</strong>" in card
    assert 'href="/records/example-social/apl-1"' in card
    assert "row-superseded" not in card
    assert summary["superseded"] is False

    post(amendment("amd-1", "dec-1"))
    card, summary = both()
    assert "<strong>Amended</strong>" in card
    assert 'href="/records/example-social/amd-1"' in card
    assert "<strong>Reversed on appeal</strong>" in card
    assert "row-superseded" in card
    assert "Replaced by a later amendment" in card
    assert summary["superseded"] is True
    # The page and the JSON pinned to the tree before the amendment still show that tree.
    before = encode_cursor(4, 4)
    pinned = _card(_get(client, f"/records?cursor={before}"), "dec-1")
    assert "row-superseded" not in pinned
    assert "<strong>Amended</strong>" not in pinned
    assert "<strong>Reversed on appeal</strong>" in pinned
    (old,) = [r for r in client.get(f"/api/v1/records?cursor={before}").json["records"] if r["record_id"] == "dec-1"]
    assert old["superseded"] is False
    # The untouched decision's card is as it was.
    assert "row-followups" not in _card(_get(client, "/records"), "dec-2")


@pytest.mark.parametrize(("size", "held"), [(0, ""), (1, "d"), (3, "acd")])
def test_lru_keeps_at_most_its_size_and_drops_the_least_recently_used(size: int, held: str) -> None:
    kept: LRU[str] = LRU(size)
    for k in "abc":
        kept.put(k, k.upper())
    kept.get("a")  # used: kept over b
    kept.put("d", "D")
    assert len(kept) == size
    assert "".join(k for k in "abcd" if kept.get(k) is not None) == held
