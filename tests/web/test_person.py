"""The person page (issue 15): ``/people/<QID>`` gathers the decisions about a
person's accounts on every platform, by the Wikidata item the platforms gave,
with the appeals and amendments of those decisions; its counts are the
feed's, its links lead to the same records; subject and record pages that
carry the item link it; an unknown item is 404, a malformed one 400."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.browser.dataset import KEY_VIDEO, PRESIDENT
from tests.recordkit import appeal, decision, sign
from tests.web.test_web import Data, Parsed, _get, _indexes, data  # noqa: F401  (fixture)

ITEM = "Q4115189"  # the head-of-state example's item (docs/examples)
VIDEO_KEY = "presidentia-on-other-video-0001"


@pytest.fixture
def person(client: FlaskClient, data: Data) -> Data:  # noqa: F811
    """The data set, plus the head of state on a second platform (another
    subject key: each platform derives its own) with an appeal there."""
    rec = decision("vid-hos", platform="other-video", name="decision-head-of-state-newsworthiness")
    rec["account"]["subject_key"] = VIDEO_KEY
    rec["action"] = "interstitial"
    items = [sign(rec, KEY_VIDEO), sign(appeal("apl-2026-000010", "vid-hos", platform="other-video"), KEY_VIDEO)]
    r = client.post("/api/v1/records", json={"records": items})
    assert r.status_code == 201, r.json
    return data


def _api(client: FlaskClient, query: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/records?limit=200&{query}")
    assert r.status_code == 200, r.json
    assert r.json["next_cursor"] is None
    return list(r.json["records"])


def _cell_links(body: str) -> dict[str, int]:
    """Each count on the page that links to the feed: {href: the number shown}."""
    return {
        href.replace("&amp;", "&"): int(n.replace(",", ""))
        for href, n in re.findall(r'<a href="(/records\?[^"]+)">([\d,]+)<span class="vh">', body)
    }


def test_the_page_counts_what_the_feed_holds_on_every_platform(client: FlaskClient, person: Data) -> None:
    body = _get(client, f"/people/{ITEM}")
    feed = _api(client, f"qid={ITEM}")
    assert {r["platform"] for r in feed} == {"example-social", "other-video"}
    # The cards are the feed's records, newest first, appeals and amendments included.
    assert _indexes(body) == [r["leaf_index"] for r in feed]
    assert {"apl-2026-000010", "amd-1", "vid-hos", "dec-hos"} <= {r["record_id"] for r in feed}
    assert "<h1>Example Presidentia</h1>" in body
    links = _cell_links(body)
    per_platform = {h: n for h, n in links.items() if "&platform=" in h}
    assert len(per_platform) == 6  # two platforms, three record types
    for href, n in links.items():
        query = href.split("?", 1)[1]
        # Each count is the number of records its link's feed lists.
        assert n == len(_api(client, query)), href
        assert n == len(_indexes(_get(client, href + "&limit=200"))), href
    assert per_platform[f"/records?qid={ITEM}&platform=other-video&type=appeal"] == 1
    assert per_platform[f"/records?qid={ITEM}&platform=other-video&type=decision"] == 1
    # Per action: the current version of each decision, so the amended dec-hos counts once, as amended.
    actions = {h: n for h, n in links.items() if "&action=" in h}
    current = [r for r in feed if r["type"] in ("decision", "amendment") and not r["superseded"]]
    assert sum(actions.values()) == len(current)
    assert actions[f"/records?qid={ITEM}&action=interstitial&current=true&direct=true"] == 1
    # Both accounts, each linked to its subject page.
    assert f'href="/subjects/{PRESIDENT}"' in body
    assert f'href="/subjects/{VIDEO_KEY}"' in body
    assert f'href="https://www.wikidata.org/wiki/{ITEM}"' in body


def test_downloads_json_and_atom_carry_the_persons_filter(client: FlaskClient, person: Data) -> None:
    body = _get(client, f"/people/{ITEM}")
    parsed = Parsed(body)
    hrefs = [a.get("href") or "" for a in parsed.all("a")]
    downloads = [h for h in hrefs if h.startswith("/api/v1/feed.")]
    assert sorted(downloads) == sorted(f"/api/v1/feed.{f}?qid={ITEM}" for f in ("csv", "ndjson", "parquet"))
    csv = client.get(downloads[0])
    assert csv.status_code == 200
    assert csv.headers["Ledger-Record-Count"] == str(len(_api(client, f"qid={ITEM}")))
    assert f"/api/v1/records?qid={ITEM}" in hrefs
    assert f"/people/{ITEM}.atom" in hrefs
    atom = client.get(f"/people/{ITEM}.atom")
    assert atom.status_code == 200
    assert atom.data == client.get(f"/records.atom?qid={ITEM}").data
    ids = [e.findtext("{http://www.w3.org/2005/Atom}id") for e in ET.fromstring(atom.data)]
    assert "http://localhost/records/other-video/vid-hos" in ids


def test_subject_and_record_pages_link_the_person(client: FlaskClient, person: Data) -> None:
    link = f'href="/people/{ITEM}"'
    assert link in _get(client, f"/subjects/{PRESIDENT}")
    assert link in _get(client, f"/subjects/{VIDEO_KEY}")
    assert link in _get(client, "/records/other-video/vid-hos")
    assert link in _get(client, "/records/example-social/amd-1")
    # No item, no link.
    assert "/people/" not in _get(client, "/records/example-social/dec-leg")
    assert "/people/" not in _get(client, "/records/example-social/ord-1")


def test_a_protection_targets_item_gets_no_person_link(client: FlaskClient, person: Data) -> None:
    """The target's item links Wikidata only: the person page counts a person's own accounts."""
    target = {"class": "candidate", "public_subject": {"display_name": "A Candidate", "wikidata_qid": "Q42"}}
    rec = decision("vid-threat", platform="other-video", name="decision-legislator-removal", target=target)
    rec["rule"] = {**rec["rule"], "abuse": "harassment"}
    r = client.post("/api/v1/records", json=sign(rec, KEY_VIDEO))
    assert r.status_code == 201, r.json
    body = _get(client, "/records/other-video/vid-threat")
    assert 'href="https://www.wikidata.org/wiki/Q42"' in body
    assert "/people/Q42" not in body
    _get(client, "/people/Q42", 404)


@pytest.mark.parametrize("bad", ["q4115189", "Q0", "Q01", "4115189", "Q1x", "Q" + "9" * 20])
def test_a_malformed_item_is_400(client: FlaskClient, person: Data, bad: str) -> None:
    body = _get(client, f"/people/{bad}", 400)
    assert "A Wikidata item is Q and a number" in body
    assert client.get(f"/people/{bad}.atom").status_code == 400


def test_an_item_no_record_names_is_404(client: FlaskClient, person: Data) -> None:
    body = _get(client, "/people/Q1", 404)
    assert "No decision in the log names Wikidata item Q1" in body
    assert client.get("/people/Q1.atom").status_code == 404


def test_the_feed_form_filters_by_item(client: FlaskClient, person: Data) -> None:
    body = _get(client, f"/records?qid={ITEM}&limit=200")
    assert _indexes(body) == [r["leaf_index"] for r in _api(client, f"qid={ITEM}")]
    assert f'href="/api/v1/feed.csv?qid={ITEM}"' in body
    bad = _get(client, "/records?qid=Q01", 400)
    assert "must match ^Q[1-9][0-9]*$" in bad


def test_older_and_newer_pages_of_a_person_join_without_a_gap(client: FlaskClient, person: Data) -> None:
    recs = []
    for i in range(50):
        rec = decision(f"vid-hos-{i}", platform="other-video", name="decision-head-of-state-newsworthiness")
        rec["account"]["subject_key"] = VIDEO_KEY
        recs.append(sign(rec, KEY_VIDEO))
    assert client.post("/api/v1/records", json={"records": recs}).status_code == 201
    everything = [r["leaf_index"] for r in _api(client, f"qid={ITEM}")]
    assert len(everything) > 50
    first = _get(client, f"/people/{ITEM}")
    older = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert older is not None
    second = _get(client, older.group(1).replace("&amp;", "&"))
    assert _indexes(first) + _indexes(second) == everything
    newer = re.search(r'<a rel="prev" href="([^"]+)"', second)
    assert newer is not None
    assert _indexes(_get(client, newer.group(1).replace("&amp;", "&"))) == _indexes(first)


def test_a_foreign_page_link_is_a_form_error_not_a_failure(client: FlaskClient, person: Data) -> None:
    body = _get(client, f"/people/{ITEM}?cursor=not-a-cursor", 400)
    assert "This page link is not valid" in body
    assert "<h1>Example Presidentia</h1>" in body
