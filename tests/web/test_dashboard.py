"""The evenness dashboard on SQLite and PostgreSQL, on the planted-disparity
data set of ``tests/ledger/test_evenness.py``: the pages state exactly the planted
flagged comparisons in the template's words, and the Simpson's-paradox
case as not flagged; every chart is well-formed, safe SVG with escaped
platform strings; every CSV holds the API document's numbers; no page says
what the data cannot show; pages pin to a checkpoint; bad requests get the
site's error pages. The chart module is also tested on its own, without
Flask.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ledger.evenness.words import flagged_sentence, unflagged_sentence
from ledger.evenness_cache import EXTENSION, Documents
from ledger.log import Log
from ledger.records.export import safe_cell
from tests.ledger.test_evenness import EVEN, KEYS, TENTH, Builder, planted_records, submit
from web import charts, views_stats

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "Forum <script>alert(1)</script> & Co"
NAMES = {"example-social": "Example Social", "other-video": "Other Video", "third-forum": HOSTILE}
FORBIDDEN = re.compile(r"bias|favou?rit|prove|no difference", re.IGNORECASE)
CIVIC = "/stats/example-social/rule?rule_id=civic/false-claims"
SPAM = "/stats/other-video/rule?rule_id=spam/phishing"
SIMPSON = "/stats/third-forum/rule?rule_id=hate/slurs"
PAGES = ["/stats", "/stats/example-social", "/stats/other-video", "/stats/third-forum", CIVIC, SPAM, SIMPSON]


@pytest.fixture
def planted(app: Flask, client: FlaskClient) -> Log:
    """The planted data set, under platforms one of which has a hostile display name."""
    log: Log = app.extensions["ledger"].log
    for slug, key in KEYS.items():
        log.registry.add_platform(slug, NAMES[slug], key.public_key)
    submit(client, planted_records())
    return log


def api(client: FlaskClient, query: str = "") -> dict[str, Any]:
    r = client.get("/api/v1/stats/evenness" + (f"?{query}" if query else ""))
    assert r.status_code == 200, r.json
    body: dict[str, Any] = r.json
    return body


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.data[:300])
    assert r.mimetype == "text/html", url
    return r.get_data(as_text=True)


class Page(HTMLParser):
    """A page's tags and attributes, the text of its sentence lists' items, and its chart links."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.items: list[str] = []
        self._depth: list[str] = []  # open ol/ul/li tags, "s" for a sentence list
        self._text: list[str] | None = None
        self.feed(body)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("ol", "ul"):
            self._depth.append("s" if dict(attrs).get("class") == "sentences" else tag)
        elif tag == "li" and self._depth and self._depth[-1] == "s":
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ol", "ul") and self._depth:
            self._depth.pop()
        elif tag == "li" and self._text is not None:
            self.items.append(" ".join("".join(self._text).split()))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [a[name] or "" for t, a in self.tags if t == tag and a.get(name) is not None]


def section(body: str, heading_id: str) -> str:
    """The HTML of the <section> labelled by ``heading_id``."""
    match = re.search(rf'<section aria-labelledby="{heading_id}".*?</section>', body, re.DOTALL)
    assert match, heading_id
    return match.group(0)


def _flag_keys(doc: dict[str, Any]) -> set[tuple[str, str, str | None, str]]:
    return {(f["metric"], f["platform"], f["rule_id"], f["group"]) for f in doc["flagged"]}


def test_pages_state_exactly_the_planted_flags_in_the_templates_words(client: FlaskClient, planted: Log) -> None:
    doc = api(client)["document"]
    cp = doc["checkpoint"]
    civic, spam = ("example-social", "civic/false-claims"), ("other-video", "spam/phishing")
    assert _flag_keys(doc) == {
        ("exemption_rate", *civic, "legislator"),
        ("exemption_rate", *civic, "head_of_state"),
        ("exemption_rate", *civic, "political_any"),
        ("exemption_rate", "example-social", None, "political_any"),
        ("time_to_decision", *spam, "journalist"),
        ("time_to_decision", *spam, "other_public_figure"),
    }
    # The overview lists each flagged comparison once, in the template's words.
    overview = page(client, "/stats")
    listed = Page(section(overview, "flagged-heading")).items
    # Beside each, its coverage (method version 2's section): here nothing is declared.
    coverage = {
        (c["section"], c["index"]): c["sentence"]
        for c in api(client, "method_version=2")["document"]["coverage"]["comparisons"]
    }
    assert sorted(listed) == sorted(
        flagged_sentence(doc[f["section"]][f["index"]], cp) + " Coverage " + coverage[(f["section"], f["index"])]
        for f in doc["flagged"]
    )
    assert len(listed) == 6
    for item in listed:
        assert f"at tree size {cp['tree_size']} (root hash {cp['root_hash']})" in item
        sentence, _, note = item.partition(" Coverage ")
        assert sentence.endswith("This describes recorded decisions only, and says nothing of why they differ.")
        assert note.startswith("Coverage is not declared for every decision of")
    # Grouped by where they are, each group linking to its page.
    scopes = re.findall(r'<h3 class="scope"><a href="([^"]+)"', section(overview, "flagged-heading"))
    assert [html.unescape(u) for u in scopes] == [
        "/stats/example-social/rule?rule_id=civic/false-claims",
        "/stats/example-social",
        "/stats/other-video/rule?rule_id=spam/phishing",
    ]
    # Each rule page flags exactly its own, and states every other comparison unflagged.
    for url, platform, rule in ((CIVIC, *civic), (SPAM, *spam), (SIMPSON, "third-forum", "hate/slurs")):
        body = page(client, url)
        ours = [c for c in doc["comparisons"] if (c["platform"], c["rule_id"]) == (platform, rule)]
        flagged = Page(section(body, "flagged-heading")).items
        assert flagged == [f"Flagged {flagged_sentence(c, cp)}" for c in ours if c["flagged"]]
        others = Page(section(body, "all-heading")).items
        assert sorted(others) == sorted(f"{_badge(c)} {unflagged_sentence(c)}" for c in ours if not c["flagged"])
    # The paradox: crude rates differ, so it is charted as they are, but it is not flagged.
    simpson = page(client, SIMPSON)
    assert "None under this rule" in section(simpson, "flagged-heading")
    assert "for the exemption rate, the recorded data cannot distinguish the rates of political accounts" in simpson
    rates = _csv(client, "/stats/third-forum/charts/exemption_rate.csv?rule_id=hate/slurs")
    (row,) = [r for r in rates if r["group"] == "political_any"]
    assert (row["events"], row["cases"], row["flagged"]) == ("42", "100", "False")


def _badge(c: dict[str, Any]) -> str:
    return "Not tested" if not c["tested"] else "Not flagged"


def _chart_urls(client: FlaskClient) -> list[str]:
    """Every chart URL the pages link, SVG (both widths and the download) and CSV."""
    urls = set()
    for url in PAGES:
        p = Page(page(client, url))
        for link in p.attrs("img", "src") + p.attrs("source", "srcset") + p.attrs("a", "href"):
            if "/charts/" in link:
                urls.add(html.unescape(link))
    return sorted(urls)


def test_charts_are_safe_svg_and_csv_holds_the_documents_numbers(client: FlaskClient, planted: Log) -> None:
    doc = api(client)["document"]
    urls = _chart_urls(client)
    assert len([u for u in urls if ".csv" in u]) == 3 + 3 * 3  # monthly per platform, three per rule
    assert len([u for u in urls if ".svg" in u]) == 3 * (3 + 3 * 3)  # wide, narrow and download
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, url
        assert dict(parse_qsl(urlsplit(url).query))["tree_size"] == str(doc["checkpoint"]["tree_size"])
        assert f"tree{doc['checkpoint']['tree_size']}." in r.headers["Content-Disposition"]
        if ".svg" in url:
            assert r.mimetype == "image/svg+xml"
            assert r.headers["Content-Security-Policy"] == views_stats.SVG_CSP
            _check_svg(r.get_data(as_text=True), url)
        else:
            assert r.mimetype == "text/csv"
            _check_csv(doc, list(csv.DictReader(io.StringIO(r.get_data(as_text=True)))), url)
    # The pages share one parsed document per process: nothing may have changed it.
    assert views_stats._parsed_docs[api(client)["document_sha256"]] == doc


def _check_svg(text: str, url: str) -> None:
    root = ET.fromstring(text)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    assert [child.tag for child in root][:3] == [f"{SVG}title", f"{SVG}desc", f"{SVG}style"]
    # The one style is the constant dark theme, which no input reaches.
    assert [s.text for s in root.iter(f"{SVG}style")] == [charts.STYLE], url
    for element in root.iter():
        assert element.tag.startswith(SVG), (url, element.tag)
        assert element.tag not in (f"{SVG}script", f"{SVG}foreignObject", f"{SVG}a"), url
        assert not [a for a in element.attrib if a.startswith("on") or "href" in a], (url, element.attrib)
    title = root.findtext(f"{SVG}title") or ""
    if "/third-forum/" in url:
        assert HOSTILE in title  # escaped on the way in, so it parses back as the same text
        assert "<script>" not in text
    assert len(root.findall(f".//{SVG}text")) >= 10, url
    assert not FORBIDDEN.search(text), url


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def _check_csv(doc: dict[str, Any], rows: list[dict[str, str]], url: str) -> None:
    cp = doc["checkpoint"]
    assert rows, url
    for row in rows:
        assert (row["origin"], row["tree_size"], row["root_hash"]) == (
            cp["origin"],
            str(cp["tree_size"]),
            safe_cell(cp["root_hash"]),  # base64 may begin with "+"
        )
        if "month" in row:
            (m,) = [m for m in doc["monthly"] if (m["platform"], m["month"]) == (row["platform"], row["month"])]
            want = m[row["group"]]
        elif "p50_seconds" in row:
            want = _time_of(doc, row)
            q = want["quantiles"]
            got = [_number(row[f"{p}_seconds"]) for p in ("p10", "p25", "p50", "p75", "p90")]
            assert got == (None if q is None else [q[p] for p in ("p10", "p25", "p50", "p75", "p90")]), url
            assert int(row["n"]) == want["n"]
            continue
        else:
            want = _rate_of(doc, row)
        assert (int(row["events"]), int(row["cases"]), row["size"]) == (want["events"], want["cases"], want["size"])
        for k in ("estimate", "lower", "upper"):
            assert _number(row[k]) == want[k], (url, row, k)  # exactly: floats in full precision


def _rate_of(doc: dict[str, Any], row: dict[str, str]) -> dict[str, Any]:
    where = (row["platform"], row["rule_id"])
    if row["group"] == "political_any":
        (c,) = [
            c
            for c in doc["comparisons"]
            if (c["platform"], c["rule_id"], c["metric"], c["group"]) == (*where, row["metric"], "political_any")
        ]
        return dict(c["group_rate"])
    (cell,) = [c for c in doc["cells"] if (c["platform"], c["rule_id"], c["account_class"]) == (*where, row["group"])]
    return dict(cell[row["metric"]])


def _time_of(doc: dict[str, Any], row: dict[str, str]) -> dict[str, Any]:
    where = (row["platform"], row["rule_id"])
    if row["group"] == "political_any":
        (c,) = [
            c
            for c in doc["comparisons"]
            if (c["platform"], c["rule_id"], c["metric"], c["group"]) == (*where, "time_to_decision", "political_any")
        ]
        return dict(c["group_time"])
    (cell,) = [c for c in doc["cells"] if (c["platform"], c["rule_id"], c["account_class"]) == (*where, row["group"])]
    return dict(cell["time_to_decision"])


def _csv(client: FlaskClient, url: str) -> list[dict[str, str]]:
    r = client.get(url)
    assert r.status_code == 200, url
    return list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))


def test_no_page_or_chart_says_what_the_data_cannot_show(client: FlaskClient, planted: Log) -> None:
    for url in PAGES:
        body = page(client, url)
        assert not FORBIDDEN.search(body), (url, FORBIDDEN.findall(body))
        p = Page(body)
        # Accessible like the other pages: one h1, no skipped heading level, no inline script or style.
        levels = [int(t[1]) for t, _ in p.tags if re.fullmatch(r"h[1-6]", t)]
        assert levels.count(1) == 1, url
        assert levels[0] == 1, url
        assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), (url, levels)
        assert not [t for t, a in p.tags if t in ("script", "style") or "style" in a], url
        assert all(alt for alt in p.attrs("img", "alt")), url
        assert 'aria-current="page">Statistics' in body
    for url in _chart_urls(client):
        assert not FORBIDDEN.search(client.get(url).get_data(as_text=True)), url
    assert HOSTILE in html.unescape(page(client, "/stats/third-forum"))
    assert "<script>alert(1)" not in page(client, "/stats/third-forum")


def test_pages_pin_a_checkpoint_and_share_the_apis_documents(app: Flask, client: FlaskClient, planted: Log) -> None:
    first = api(client)
    size = first["document"]["checkpoint"]["tree_size"]
    latest = page(client, "/stats")
    assert first["document_sha256"] in latest  # the same document, from the one cache
    documents: Documents = app.extensions[EXTENSION]
    assert app.extensions["evenness_documents"] is documents
    pinned = page(client, f"/stats?tree_size={size}")
    pinned_rule = page(client, f"{CIVIC}&tree_size={size}")
    svg = client.get(f"/stats/example-social/charts/monthly.svg?tree_size={size}")
    assert svg.headers["Cache-Control"] == "public, max-age=86400"
    b = Builder()
    b.n = 90_000
    submit(client, b.cell("other-video", "ordinary_user", "spam/phishing", EVEN, TENTH))
    # A pinned page never changes; the latest moves on, and says so.
    assert page(client, f"/stats?tree_size={size}") == pinned
    assert page(client, f"{CIVIC}&tree_size={size}") == pinned_rule
    assert client.get(f"/stats/example-social/charts/monthly.svg?tree_size={size}").data == svg.data
    newer = page(client, "/stats")
    assert f"at tree size {size} " not in newer
    assert f"at tree size {size + 40} " in newer  # one cell of 40 decisions more
    assert f"at tree size {size} " in pinned
    # Links from a pinned page stay pinned.
    links = [html.unescape(a) for a in Page(pinned).attrs("a", "href") if a.startswith("/stats/")]
    assert links
    assert all(f"tree_size={size}" in a for a in links), links
    assert client.get("/stats/example-social/charts/monthly.svg").headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "url, status",
    [
        ("/stats?tree_size=abc", 400),
        ("/stats?tree_size=-1", 400),
        ("/stats?tree_size=01", 400),
        ("/stats?tree_size=999999", 404),
        ("/stats/example-social?tree_size=1e3", 400),
        ("/stats/no-such-platform", 404),
        ("/stats/%3Cscript%3E", 404),
        ("/stats/example-social/rule", 400),
        ("/stats/example-social/rule?rule_id=%3Cscript%3E", 400),
        ("/stats/example-social/rule?rule_id=no/such-rule", 404),
        ("/stats/example-social/charts/exemption_rate.svg", 400),
        ("/stats/example-social/charts/exemption_rate.svg?rule_id=civic/false-claims&width=5000", 400),
        ("/stats/example-social/charts/kindness.svg?rule_id=civic/false-claims", 404),
        ("/stats/example-social/charts/exemption_rate.csv?rule_id=civic/false-claims&tree_size=x", 400),
    ],
)
def test_bad_requests_get_the_sites_error_pages(client: FlaskClient, planted: Log, url: str, status: int) -> None:
    body = page(client, url, status)
    assert "<script>" not in body


def test_a_busy_server_says_so(app: Flask, client: FlaskClient) -> None:
    documents = Documents(wait=0.0)
    app.extensions[EXTENSION] = documents
    documents._computing.acquire()  # another request is computing a document
    try:
        assert "Busy" in page(client, "/stats", 429)
        assert client.get("/api/v1/stats/evenness").status_code == 429  # the API shares the gate
    finally:
        documents._computing.release()
    assert "Evenness statistics" in page(client, "/stats")


def test_an_empty_log_has_an_empty_dashboard(app: Flask, client: FlaskClient) -> None:
    body = page(client, "/stats")
    assert "No decision is recorded below this checkpoint." in body
    assert "None: for every comparison" in body
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("third-forum", HOSTILE, KEYS["third-forum"].public_key)
    body = page(client, "/stats/third-forum")  # registered, nothing recorded yet
    assert "has no decision recorded below this checkpoint" in body
    assert "<script>alert" not in body
    page(client, "/stats/third-forum/charts/monthly.svg", 404)


# The chart module on its own: plain numbers in, SVG strings out.

EVIL = 'x<script>alert("1")</script>&amp;\'"'


def test_charts_escape_every_string() -> None:
    rows = [charts.Interval(EVIL, EVIL, 0.5, 0.25, 0.75), charts.Interval("Few", "3 of 8", None, None, None)]
    spreads = [charts.Spread(EVIL, EVIL, (1.0, 2.0, 3.0, 4.0, 5.0)), charts.Spread("Few", "8 decisions", None)]
    series = [charts.Series(EVIL, [(0.1, 0.0, 0.2), None, (0.5, 0.4, 0.6)])]
    drawn = [
        charts.interval_chart(EVIL, EVIL, [EVIL, EVIL], rows, EVIL, 640),
        charts.spread_chart(EVIL, EVIL, [EVIL], spreads, EVIL, 336),
        charts.series_chart(EVIL, EVIL, [EVIL], [EVIL, "b", "c"], series, EVIL, 336),
    ]
    for svg in drawn:
        root = ET.fromstring(svg)
        assert root.findtext(f"{SVG}title") == EVIL
        assert root.findtext(f"{SVG}desc") == EVIL
        assert "<script" not in svg
        texts = [t.text or "" for t in root.iter(f"{SVG}text")]
        assert all("<" not in t or t.startswith("x<script>") for t in texts)
        assert any(t.startswith("x<script>") for t in texts)  # the label is drawn as text


def test_interval_chart_draws_dots_and_whiskers_where_the_numbers_are() -> None:
    rows = [charts.Interval("A", "50%", 0.5, 0.25, 0.75), charts.Interval("B", "ref", 0.1, 0.0, 1.0, "reference")]
    root = ET.fromstring(charts.interval_chart("t", "d", ["t"], rows, "axis", 640))
    (dot,) = root.iter(f"{SVG}circle")
    x0, x1 = charts.PAD + 6, 640 - charts.PAD - 6
    assert float(dot.get("cx", "")) == pytest.approx(x0 + (x1 - x0) * 0.5, abs=0.1)
    whiskers = [p.get("d", "") for p in root.iter(f"{SVG}path")]
    assert len(whiskers) == 2
    start = float(re.match(r"M([\d.]+)", whiskers[1]).group(1))  # type: ignore[union-attr]
    assert start == pytest.approx(x0, abs=0.1)  # the reference's interval starts at 0%
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert {"0%", "25%", "50%", "75%", "100%", "axis", "A", "B", "ref"} <= set(labels)


@pytest.mark.parametrize(
    "most, unit, top",
    [(45, "seconds", 50), (600, "minutes", 10), (4 * 3600 + 1, "hours", 5), (3 * 86_400, "days", 3), (0, "seconds", 1)],
)
def test_time_axes_have_round_ticks_in_a_fitting_unit(most: float, unit: str, top: float) -> None:
    per, name, ticks = charts.time_scale(most)
    assert name == unit
    assert ticks[0] == 0
    assert ticks[-1] == top
    assert ticks[-1] * per >= most
    assert 2 <= len(ticks) <= 7


def test_wrap_and_csv() -> None:
    assert charts.wrap("aa bb cc", 0.6 * 13 * 5) == ["aa bb", "cc"]
    assert charts.wrap("x" * 12, 0.6 * 13 * 5) == ["xxxxx", "xxxxx", "xx"]
    text = charts.csv_text(["a", "b", "c"], [[0.1 + 0.2, None, 'say "hi", then'], [1, 2.5, 3]])
    assert text.split("\r\n")[0] == "a,b,c"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["0.30000000000000004", "", 'say "hi", then']
    assert float(rows[1][0]) == 0.1 + 0.2
