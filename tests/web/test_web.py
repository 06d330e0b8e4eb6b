"""The server-rendered pages on SQLite and PostgreSQL: every page renders with
realistic data, filters narrow exactly as the JSON feed does, every field
and vocabulary value has words, platform-supplied strings are escaped, no
page has inline script or style, and unknown things get helpful 404 pages."""

from __future__ import annotations

import html
import itertools
import re
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from ledger.log import Log
from ledger.records.vocab import ENUMS
from tests.browser.dataset import KEY_DEMO, KEY_SOCIAL, PRESIDENT, XSS, XSS_NAME, build
from tests.recordkit import decision, sign
from web import filters
from web.labels import LABELS

Data = dict[str, list[dict[str, Any]]]


@pytest.fixture
def data(app: Flask, client: FlaskClient) -> Data:
    log: Log = app.extensions["ledger"].log

    def post(items: list[dict[str, Any]]) -> None:
        r = client.post("/api/v1/records", json={"records": items})
        assert r.status_code == 201, r.json

    return build(log.registry, post, int(time.time() * 1000))


class Parsed(HTMLParser):
    """The parts of a page the tests check: tags with attributes, and text."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(body)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def _get(client: FlaskClient, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.data[:500])
    assert r.mimetype == "text/html", url
    return r.get_data(as_text=True)


def _indexes(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-leaf-index="(\d+)"', body)]


PAGES = [
    "/",
    "/records",
    "/records?account_class=political&violation_found=true",
    "/records/example-social/dec-hos",
    "/records/example-social/dec-leg",
    "/records/example-social/ord-1",
    "/records/example-social/dec-court",
    "/records/example-social/apl-1",
    "/records/example-social/amd-1",
    "/records/example-social/dec-xss",
    "/records/other-video/old-0",
    f"/subjects/{PRESIDENT}",
    "/subjects/xss-subject-key-0001",
    "/platforms",
    "/platforms/example-social",
    "/platforms/other-video",
    "/entries/0",
    "/log",
    "/log/checkpoints",
    "/about",
    "/downloads",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_accessibly(client: FlaskClient, data: Data, url: str) -> None:
    page = Parsed(_get(client, url))
    # No inline script or style, nothing from elsewhere: the CSP would block it.
    assert not page.all("style")
    for tag, attrs in page.tags:
        assert "style" not in attrs, (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
    for script in page.all("script"):
        assert (script.get("src") or "").startswith("/static/"), script
    for link in page.all("link"):
        if link.get("rel") == "alternate":  # named, not loaded: a feed of this page, on this site
            assert link.get("type") == "application/atom+xml", link
            href = link.get("href") or ""
            assert re.match(r"/[^/]", href), link  # this site
            feed = client.get(href)
            assert (feed.status_code, feed.mimetype) == (200, "application/atom+xml"), link
        else:
            assert (link.get("href") or "").startswith("/static/"), link
    # One h1, and headings never skip a level going down.
    levels = [int(t[1]) for t, _ in page.tags if re.fullmatch(r"h[1-6]", t)]
    assert levels[0] == 1
    assert levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
    # Every input has a label, and a skip link leads to the main content.
    labelled = {a.get("for") for a in page.all("label")}
    for tag in ("input", "select"):
        for attrs in page.all(tag):
            assert attrs.get("id") in labelled or attrs.get("aria-label"), attrs
    assert page.all("a")[0].get("href") == "#main"
    assert {"id": "main", "tabindex": "-1"}.items() <= page.all("main")[0].items()
    # A description of what the page shows, and the site's icon.
    [description] = [a.get("content") or "" for a in page.all("meta") if a.get("name") == "description"]
    assert len(description) >= 60, description
    assert [a.get("href") for a in page.all("link") if a.get("rel") == "icon"] == ["/static/favicon.svg"]
    _check_table_regions(page)


def _check_table_regions(page: Parsed) -> None:
    """Each table wrapper that may scroll sideways can take focus and is named by its table's caption."""
    ids = {a.get("id") for _, a in page.tags}
    for _, attrs in page.tags:
        if "table-wrap" in (attrs.get("class") or "").split():
            assert (attrs.get("role"), attrs.get("tabindex")) == ("region", "0"), attrs
            assert attrs.get("aria-labelledby") in ids, attrs


def test_api_docs_tables_are_named_focusable_regions(client: FlaskClient) -> None:
    page = Parsed(_get(client, "/api/v1/docs"))
    assert len([a for a in page.all("div") if a.get("class") == "table-wrap"]) >= 20
    _check_table_regions(page)
    assert [a.get("href") for a in page.all("link") if a.get("rel") == "icon"] == ["/static/favicon.svg"]
    [description] = [a.get("content") or "" for a in page.all("meta") if a.get("name") == "description"]
    assert "JSON API" in description


def test_the_icon_is_where_browsers_look_for_it(client: FlaskClient) -> None:
    with client.get("/favicon.ico") as r, client.get("/static/favicon.svg") as linked:
        assert r.status_code == 200
        assert r.mimetype == "image/svg+xml"
        assert r.data == linked.data


def test_unknown_addresses_get_the_sites_error_page_and_the_api_keeps_json(client: FlaskClient, data: Data) -> None:
    body = _get(client, "/no/such/page", 404)
    assert '<html lang="en">' in body
    assert "<main" in body
    assert "Search and filter all decisions" in body
    r = client.post("/about")
    assert r.status_code == 405
    assert r.mimetype == "text/html"
    assert "GET" in r.headers["Allow"]
    assert "<main" in r.get_data(as_text=True)
    for url in ("/api/v1/nope", "/checkpoint/nope"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.mimetype == "application/problem+json", url


def test_a_record_page_carries_its_inclusion_proof_and_checkpoint(client: FlaskClient, data: Data) -> None:
    body = _get(client, "/records/example-social/dec-hos")
    proof = client.get("/api/v1/platforms/example-social/records/dec-hos").json
    assert proof is not None
    section = body[body.index('id="proof-heading"') :]
    shown = re.findall(r'<li><code class="hash">([^<]+)</code></li>', section[: section.index("</ol>")])
    assert shown == proof["inclusion_path"]
    assert len(shown) >= 2
    assert html.escape(proof["checkpoint"]["signed_note"], quote=False) in section


def test_home_counts_and_newest(client: FlaskClient, data: Data) -> None:
    body = _get(client, "/")
    assert "Latest signed checkpoint" in body
    rows = re.findall(r'data-leaf-index="\d+" data-type="(\w+)"', body)
    assert rows == ["decision"] * 10
    social = re.search(r"Example Social</a></th>\s*<td[^>]*><a[^>]*>(\d+)</a></td>\s*<td[^>]*><a[^>]*>(\d+)", body)
    assert social is not None
    assert social.groups() == ("8", "1")  # 8 decisions, 1 appeal
    assert '>Head of state</a></th><td class="num">4</td>' in body


def test_labels_cover_every_vocabulary() -> None:
    for name, values in ENUMS.items():
        assert name in LABELS, name
        missing = [v for v in values if v not in LABELS[name]]
        assert not missing, (name, missing)
        assert all(LABELS[name][v].strip() for v in values)
    # Every select in the filter form offers every value with its label.
    for f in filters.fields({}):
        if f.choices and f.name in ENUMS:
            assert set(ENUMS[f.name]) <= set(f.choices), f.name


FILTERS = [
    "platform=other-video",
    "type=appeal",
    "type=amendment",
    "account_class=political",
    "account_class=ordinary_user",
    "action=geo_block",
    "category=scams_and_fraud",
    "severity=critical",
    "violation_found=true&direct=true",  # every decision found one: direct leaves out the appeals
    "violation_found=false",
    "exemption_applied=true",
    "exemption_type=newsworthiness",
    "review_path=secondary_high_profile",
    "interim_state=hidden",
    "detection_source=court_order",
    "automated_decision=fully",
    "territory=DE",
    "rule_id=civic-integrity/false-voting-claims",
    "rule_id=civic-integrity/false-voting-claims&rule_version=2026-01",
    f"subject_key={PRESIDENT}",
    "q=presidentia",
    "q=%3Cscript%3E",
    "decided_from=2026-04-16&decided_to=2026-04-16",
    "decided_to=2026-03-31",
    "logged_to=2000-01-01",
    "current=true",
    "platform=example-social&account_class=political&severity=critical",
]


@pytest.mark.parametrize("query", FILTERS)
def test_filters_narrow_as_the_json_feed_does(client: FlaskClient, data: Data, query: str) -> None:
    everything = _indexes(_get(client, "/records"))
    body = _get(client, "/records?" + query)
    shown = _indexes(body)
    assert len(shown) < len(everything), f"{query} should narrow the feed"
    assert shown == sorted(shown, reverse=True)
    # The page links to the same query in the JSON API; it must agree.
    link = re.search(r'<a href="(/api/v1/records[^"]*)">The same as JSON', body)
    assert link is not None
    api = client.get(html.unescape(link.group(1))).json
    assert [r["leaf_index"] for r in api["records"]] == shown


def test_filters_pick_the_right_records(client: FlaskClient, data: Data) -> None:
    def ids(query: str) -> set[str]:
        return set(re.findall(r'<span class="id">([^<]+)</span>', _get(client, "/records?" + query)))

    assert ids("platform=other-video") == {"old-0", "old-1", "vid-0", "vid-1"}
    political = {"old-0", "vid-0", "dec-leg", "dec-court", "dec-hos", "dec-xss", "amd-1"}
    # With the appeal of a political decision, found through the decision (issue 15).
    assert ids("account_class=political") == political | {f"dec-hos-{i}" for i in range(3)} | {"apl-1"}
    assert ids("account_class=political&direct=true") == political | {f"dec-hos-{i}" for i in range(3)}
    assert ids("decided_from=2026-04-16&decided_to=2026-04-16") == {"dec-leg", "old-0", "vid-0"}
    assert "dec-hos" not in ids("current=true")
    assert ids("q=mayor") == {"dec-xss"}


def test_empty_inputs_are_dropped_from_the_address(client: FlaskClient, data: Data) -> None:
    r = client.get("/records?q=&platform=other-video&type=&limit=")
    assert r.status_code == 302
    assert r.headers["Location"] == "/records?platform=other-video"


def test_invalid_filters_are_form_errors(client: FlaskClient, data: Data) -> None:
    body = _get(client, "/records?category=nope&decided_from=2026-02-31&q=ab&limit=7&rule_id=a%20b", 400)
    page = Parsed(body)
    assert "Some filters are not valid" in body
    invalid = {a.get("id") for _, a in page.tags if a.get("aria-invalid") == "true"}
    assert invalid == {"f-category", "f-decided_from", "f-q", "f-limit", "f-rule_id"}
    assert "“2026-02-31” is not a date" in body
    # The reader sees what they typed: a date field would show an invalid date as empty.
    [decided_from] = [a for t, a in page.tags if a.get("id") == "f-decided_from"]
    assert (decided_from.get("type"), decided_from.get("value")) == ("text", "2026-02-31")
    assert not _indexes(body)
    assert "Not a valid" not in body
    _get(client, "/records?decided_from=2026-05-02&decided_to=2026-05-01", 400)
    bad = _get(client, "/records?cursor=bm9wZQ", 400)
    assert "This page link is not valid" in bad
    future = _get(client, "/records?cursor=" + filters.encode_cursor(10**6, 5), 400)
    assert "larger log" in future
    for text in ("q=abc%00def", "rule_version=1%0A2"):
        assert "must not contain control characters" in _get(client, f"/records?{text}", 400)
    for day in ("9999-12-31", "0001-01-01", "2026-1-1", "２０２６-01-01"):
        assert "is not a date" in _get(client, f"/records?decided_to={day}", 400)


def test_cursors_parse_exactly() -> None:
    cursor = filters.encode_cursor(120, 77)
    assert filters.decode_cursor(cursor) == (120, 77)
    for bad in (cursor + "=", cursor + "A", "MTIwOjA3Nw", "LTE6Mg", "", "!!!!"):  # 120:077, -1:2
        assert filters.decode_cursor(bad) is None, bad


def test_pages_stay_stable_while_the_log_grows(client: FlaskClient, data: Data) -> None:
    items = [sign(decision(f"bulk-{i:02d}"), KEY_SOCIAL) for i in range(40)]
    assert client.post("/api/v1/records", json={"records": items}).status_code == 201
    expected = [r["leaf_index"] for r in client.get("/api/v1/records?limit=200").json["records"]]
    seen: list[int] = []
    url: str | None = "/records?limit=25"
    n = 0
    while url:
        body = _get(client, url)
        seen += _indexes(body)
        late = sign(decision(f"late-{n}"), KEY_SOCIAL)
        assert client.post("/api/v1/records", json=late).status_code == 201
        n += 1
        older = re.search(r'<a rel="next" href="([^"]+)"', body)
        url = html.unescape(older.group(1)) if older else None
        if url:
            assert dict(parse_qsl(urlsplit(url).query))["limit"] == "25"
    assert seen == expected
    assert n == 3


def test_record_page_shows_every_field(client: FlaskClient, data: Data) -> None:
    for platform, recs in data.items():
        for rec in recs:
            body = _get(client, f"/records/{platform}/{rec['record_id']}")
            assert "Other fields" not in body  # the table knows every documented field
            for value in _strings(rec):
                assert str(escape(value)) in body, (rec["record_id"], value)


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def test_platform_strings_are_escaped(client: FlaskClient, data: Data) -> None:
    for url in ("/records/example-social/dec-xss", "/records", "/", "/subjects/xss-subject-key-0001"):
        body = _get(client, url)
        assert XSS not in body, url
        assert str(escape(XSS_NAME)) in body, url
        assert "<img src=x" not in body
        assert "<b>bold</b>" not in body
        for script in Parsed(body).all("script"):
            assert script.get("src") == "/static/verify.js"


def test_chains_banners_and_keys(client: FlaskClient, data: Data) -> None:
    hos = _get(client, "/records/example-social/dec-hos")
    assert "Replaced by a later amendment" in hos
    assert 'href="/records/example-social/amd-1"' in hos
    amd = _get(client, "/records/example-social/amd-1")
    assert "is its current version" in amd
    assert "(as corrected)" in amd
    apl = _get(client, "/records/example-social/apl-1")
    assert 'This is an appeal of decision <a href="/records/example-social/dec-leg">' in apl
    leg = _get(client, "/records/example-social/dec-leg")
    assert "apl-1" in leg
    assert "Replaced by" not in leg
    old = _get(client, "/records/other-video/old-0")
    assert "The key that signed this record was revoked" in old
    assert "rotated after a suspected leak" in old
    assert "was revoked" not in _get(client, "/records/other-video/vid-0")
    ordinary = _get(client, "/records/example-social/ord-1")
    assert "An ordinary user (not named" in ordinary


def test_record_links_to_its_json(client: FlaskClient, data: Data) -> None:
    body = _get(client, "/records/example-social/dec-hos")
    panel = Parsed(body).all("section")
    verify = next(s for s in panel if s.get("id") == "verify")
    record_url = verify["data-record-url"]
    assert record_url is not None
    rec = client.get(record_url).json
    assert rec["record_id"] == "dec-hos"
    assert str(rec["leaf_index"]) == verify["data-index"]
    assert client.get(verify["data-log-url"] or "").json["verifier_key"]
    assert client.get("/api/v1/platforms/example-social/records/dec-hos").status_code == 200
    assert 'href="/api/v1/platforms/example-social/records/dec-hos"' in body
    tampered = _get(client, "/records/example-social/dec-hos?tamper=proof")
    assert 'data-tamper="proof"' in tampered
    assert "Tampering demonstration" in tampered


def test_entries_redirect_to_records_or_show_the_registry(client: FlaskClient, data: Data) -> None:
    r = client.get("/entries/2")
    assert r.status_code == 302
    assert r.headers["Location"] == "/records/example-social/dec-hos"
    assert "registered the platform" in _get(client, "/entries/0")
    platform = _get(client, "/platforms/other-video")
    for index in re.findall(r'href="/entries/(\d+)"', platform):
        assert "Registry entry" in _get(client, f"/entries/{index}")
    assert "revoked a signing key" in platform or "Revoked" in platform


def test_subject_page_matches_the_api(client: FlaskClient, data: Data) -> None:
    body = _get(client, f"/subjects/{PRESIDENT}")
    api = client.get(f"/api/v1/subjects/{PRESIDENT}").json
    assert _indexes(body) == [r["leaf_index"] for r in api["records"]]
    assert "<h1>Example Presidentia</h1>" in body


@pytest.mark.parametrize(
    "url,message",
    [
        ("/records/example-social/nope", "The log holds no record"),
        ("/records/no-such-platform/dec-hos", "The log holds no record"),
        ("/entries/99999", "numbered"),
        ("/subjects/abcdefghijklmnopqrstuvwxyz", "No record in the log is about"),
        ("/subjects/short", "A subject key is"),
        ("/platforms/nope", "No platform"),
    ],
)
def test_unknown_things_get_helpful_html_404s(client: FlaskClient, data: Data, url: str, message: str) -> None:
    body = _get(client, url, 404)
    assert message in body
    assert "Search and filter all decisions" in body


def test_demo_banner_only_with_demo_platforms(app: Flask, client: FlaskClient, data: Data) -> None:
    assert "Synthetic demo data" not in _get(client, "/")
    app.extensions["ledger"].log.registry.add_platform("demo-social", "Demo", KEY_DEMO.public_key)
    for url in ("/", "/records", "/about", "/log", "/platforms", "/records/example-social/dec-hos"):
        assert "Synthetic demo data" in _get(client, url), url
    assert "Synthetic demo data" in _get(client, "/records/x/y", 404)


def test_an_empty_log_renders(client: FlaskClient) -> None:
    assert "No decision has been logged yet" in _get(client, "/")
    assert "No record matches" in _get(client, "/records")
    assert "No platform is registered yet" in _get(client, "/platforms")
    _get(client, "/entries/0", 404)
