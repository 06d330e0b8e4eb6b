"""Atom feeds (issue 15): any filtered view of the feed, a platform and a
person's subject key can be followed; each page links its feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from flask.testing import FlaskClient

from tests.browser.dataset import PRESIDENT, XSS
from tests.web.test_web import Data, _get, data  # noqa: F401  (fixture)

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
    assert f'href="/records.atom?subject_key={PRESIDENT}"' in _get(client, f"/subjects/{PRESIDENT}")
    platform = _parse(client, "/records.atom?platform=other-video")
    assert all("/records/other-video/" in i for i in _ids(platform))
    assert 'href="/records.atom?platform=other-video"' in _get(client, "/platforms/other-video")
    # A name holding markup stays text in the XML.
    everything = _parse(client, "/records.atom?limit=200")
    titles = [e.findtext(f"{ATOM}title") or "" for e in everything.findall(f"{ATOM}entry")]
    assert any(XSS in t for t in titles)
    assert client.get("/records.atom?category=nonsense").status_code == 400
