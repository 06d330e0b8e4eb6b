"""Atom feeds (issue 15): any filtered view of the feed, a platform and a
person's subject key can be followed; each page links its feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

from flask.testing import FlaskClient

from tests.browser.dataset import PRESIDENT, XSS
from tests.web.test_web import Data, Parsed, _get, data  # noqa: F401  (fixture)

ATOM = "{http://www.w3.org/2005/Atom}"


def _parse(client: FlaskClient, url: str) -> ET.Element:
    r = client.get(url)
    assert r.status_code == 200, (url, r.data[:300])
    assert r.mimetype == "application/atom+xml"
    root = ET.fromstring(r.data)
    assert root.tag == f"{ATOM}feed"
    return root


def _ids(root: ET.Element) -> list[str]:
    return [e.findtext(f"{ATOM}id") or "" for e in root.findall(f"{ATOM}entry")]


def test_a_filtered_feed_is_the_same_records_as_atom(client: FlaskClient, data: Data) -> None:  # noqa: F811
    query = "platform=example-social&type=decision"
    page = _get(client, f"/records?{query}")
    indexes = re.findall(r'<span class="id">([^<]+)</span>', page)
    root = _parse(client, f"/records.atom?{query}")
    assert _ids(root) == [f"http://localhost/records/example-social/{i}" for i in indexes]
    assert "Platform: Example Social" in (root.findtext(f"{ATOM}title") or "")
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links["alternate"] == f"http://localhost/records?{query}"
    for entry in root.findall(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}updated")
        assert (entry.findtext(f"{ATOM}title") or "").startswith("Example Social: Decision ")
    # The page links its feed, for feed readers and for people.
    href = "/records.atom?platform=example-social&amp;type=decision"
    assert f'<link rel="alternate" type="application/atom+xml" title="These results (Atom)" href="{href}">' in page
    assert f'<a class="atom" href="{href}">' in page


def test_platform_and_person_feeds_and_hostile_strings(client: FlaskClient, data: Data) -> None:  # noqa: F811
    person = _parse(client, f"/records.atom?subject_key={PRESIDENT}")
    assert len(_ids(person)) >= 4
    platform = _parse(client, "/records.atom?platform=other-video")
    assert all("/records/other-video/" in i for i in _ids(platform))
    # A name holding markup stays text in the XML.
    everything = _parse(client, "/records.atom?limit=200")
    titles = [e.findtext(f"{ATOM}title") or "" for e in everything.findall(f"{ATOM}entry")]
    assert any(XSS in t for t in titles)
    assert client.get("/records.atom?category=nonsense").status_code == 400


def _alternate(body: str) -> list[str | None]:
    """The Atom feeds a page links in its head."""
    return [
        a.get("href")
        for a in Parsed(body).all("link")
        if a.get("rel") == "alternate" and a.get("type") == "application/atom+xml"
    ]


def test_platform_and_subject_feeds_have_their_own_addresses(client: FlaskClient, data: Data) -> None:  # noqa: F811
    """``/platforms/<slug>.atom`` and ``/subjects/<key>.atom`` answer the
    same feed as the query form, and the pages link them."""
    for path, query in (
        ("/platforms/other-video.atom", "/records.atom?platform=other-video"),
        (f"/subjects/{PRESIDENT}.atom", f"/records.atom?subject_key={PRESIDENT}"),
    ):
        root = _parse(client, path)
        assert root.findall(f"{ATOM}entry")
        assert client.get(path).data == client.get(query).data, path
    assert all("/records/other-video/" in i for i in _ids(_parse(client, "/platforms/other-video.atom")))
    assert len(_ids(_parse(client, f"/subjects/{PRESIDENT}.atom"))) >= 4
    platform_page = _get(client, "/platforms/other-video")
    assert _alternate(platform_page) == ["/platforms/other-video.atom"]
    assert '<a class="atom" href="/platforms/other-video.atom">' in platform_page
    subject_page = _get(client, f"/subjects/{PRESIDENT}")
    assert _alternate(subject_page) == [f"/subjects/{PRESIDENT}.atom"]
    assert f'<a class="atom" href="/subjects/{PRESIDENT}.atom">' in subject_page
    # The platform's page itself still answers at its own address.
    assert "Other Video" in _get(client, "/platforms/other-video")
    # What has no page has no feed.
    assert client.get("/platforms/no-such-platform.atom").status_code == 404
    assert client.get("/subjects/unknown-subject-key-0000.atom").status_code == 404
    assert client.get("/subjects/short.atom").status_code == 404


def test_a_rule_page_links_its_feed(client: FlaskClient, data: Data) -> None:  # noqa: F811
    rule = data["example-social"][0]["rule"]["id"]
    page = _get(client, f"/stats/example-social/rule?rule_id={rule}")
    href = f"/records.atom?platform=example-social&amp;rule_id={quote(rule, safe='/')}"
    assert _alternate(page) == [href.replace("&amp;", "&")]
    assert f'<a class="atom" href="{href}">' in page
    root = _parse(client, href.replace("&amp;", "&"))
    ids = _ids(root)
    # Decisions under the rule, and amendments whose corrected decision is under it.
    expected = [
        r["record_id"] for r in data["example-social"] if r.get("corrected", r).get("rule", {}).get("id") == rule
    ]
    assert len(expected) >= 5
    assert sorted(i.rsplit("/", 1)[1] for i in ids) == sorted(expected)


def test_a_record_page_links_the_feed_of_its_rule(client: FlaskClient, data: Data) -> None:  # noqa: F811
    """Where a rule is shown, its feed is linked: a record page names the
    platform's rule, the feed view under it and that view's Atom feed,
    which holds the record."""
    rec = data["example-social"][0]
    rule = rec["rule"]["id"]
    page = _get(client, f"/records/example-social/{rec['record_id']}")
    query = f"platform=example-social&amp;rule_id={quote(rule, safe='/')}"
    assert f'<a href="/records?{query}">every record under it</a>' in page
    assert f'<a class="atom" href="/records.atom?{query}">' in page
    ids = _ids(_parse(client, "/records.atom?" + query.replace("&amp;", "&")))
    assert any(i.endswith(f"/records/example-social/{rec['record_id']}") for i in ids)
