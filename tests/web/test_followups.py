"""Appeals and amendments where people look (issue 15): a decision's card,
in the feed, on the home page and on the subject's page, says what became
of it ("Reversed on appeal, 2 May 2026") and links the record that says so."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from ledger.query import encode_cursor
from tests.web.test_web import Data, _get, data  # noqa: F401  (fixture)


def _card(body: str, record_id: str) -> str:
    """The feed card (``li.row``) whose title links ``record_id``."""
    for card in re.findall(r'<li class="row[^"]*".*?</li>\s*(?=<li class="row|</ol>)', body, re.DOTALL):
        if re.search(rf'<span class="id">{re.escape(record_id)}</span>', card):
            return str(card)
    raise AssertionError(f"no card for {record_id}")


def test_a_card_says_its_decision_was_reversed_on_appeal(client: FlaskClient, data: Data) -> None:  # noqa: F811
    reversed_on_appeal = "<strong>Reversed on appeal</strong>, 2 May 2026"
    feed = _get(client, "/records?platform=example-social&limit=200")
    card = _card(feed, "dec-leg")
    assert reversed_on_appeal in card
    assert 'href="/records/example-social/apl-1"' in card
    # Amended, not appealed: the other card says so, and only that.
    amended = _card(feed, "dec-hos")
    assert "<strong>Amended</strong>" in amended
    assert "on appeal" not in amended
    assert 'href="/records/example-social/amd-1"' in amended
    # A decision nobody appealed or amended says nothing of the kind.
    assert "row-followups" not in _card(feed, "dec-court")
    # The same on the person's page.
    key = re.search(r'href="/subjects/([^"]+)"', card)
    assert key
    assert reversed_on_appeal in _card(_get(client, f"/subjects/{key.group(1)}"), "dec-leg")


def test_a_card_does_not_show_what_the_pinned_tree_does_not_hold(client: FlaskClient, data: Data) -> None:  # noqa: F811
    """A page pinned before the appeal was logged does not show it."""
    feed = _get(client, "/records?platform=example-social&limit=200")
    appeal_index = int(_card(feed, "apl-1").split('data-leaf-index="')[1].split('"')[0])
    pinned = _get(client, f"/records?platform=example-social&cursor={encode_cursor(appeal_index, appeal_index)}")
    assert "on appeal" not in _card(pinned, "dec-leg")
