"""The feed's filter form drawn in Python (web/filter_form.py) and its demo
banner from the platforms the page read, on SQLite and PostgreSQL: every
``/records`` page, each field empty, holding a valid value or an invalid
one, is byte for byte what the Jinja macro it replaced drew (the page as it
was, tests/web/reference/feed.html, with the card macro before it)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient

from tests.browser.dataset import KEY_DEMO
from tests.web.test_cards import _the_macro, fixed_now  # noqa: F401  (fixture)
from tests.web.test_web import Data, _get, data  # noqa: F401  (fixture)
from web import filters

#: A value each kind of field accepts, and one it refuses, by field name
#: where the kind alone does not say.
GOOD = {"q": "mayor", "rule_id": "civic-integrity/false-voting-claims", "rule_version": "v1", "qid": "Q4115189"}
GOOD |= {"subject_key": "xss-subject-key-0001", "decided_from": "2026-01-02", "decided_to": "2026-12-30"}
GOOD |= {"logged_from": "2020-01-01", "logged_to": "2030-01-01", "current": "true", "direct": "true"}
BAD = {"q": "ab", "rule_id": "not a rule", "rule_version": "x" * 65, "qid": "Q0", "subject_key": "short"}
BAD |= {"decided_from": "2026-13-45", "decided_to": "tomorrow", "logged_from": "1899-01-01", "logged_to": "9999-01-01"}
BAD |= {"current": "yes", "direct": "1"}


def _urls(names: dict[str, str]) -> list[str]:
    """``/records`` with each field good, then bad, and some mixes, escaping probes and page links."""
    urls = ["/records"]
    for f in filters.fields(names):
        good = GOOD.get(f.name) or next(iter(f.choices or {"": ""}))
        urls.append("/records?" + urlencode({f.name: good}))
        urls.append("/records?" + urlencode({f.name: BAD.get(f.name, "nope\"<&>'")}))
    urls += [
        "/records?" + urlencode({"q": "<script>\"'&amp;", "limit": "25", "sort": "decided"}),
        "/records?" + urlencode({"q": "a\x01bcdef", "platform": "<b>", "territory": "FR"}),
        "/records?" + urlencode({"decided_from": "2026-05-02", "decided_to": "2026-05-01", "severity": "high"}),
        "/records?" + urlencode({"account_class": "political", "violation_found": "true", "exemption_applied": "x"}),
        "/records?" + urlencode({"cursor": "not-a-cursor", "current": "true"}),
        "/records?" + urlencode({"cursor": "MTox", "newer": "MTox"}),
        "/records?" + urlencode(dict.fromkeys(("rule_id", "qid", "subject_key", "rule_version"), 'é<"')),
    ]
    return urls


def _page(client: FlaskClient, url: str) -> str:
    r = client.get(url)
    assert r.status_code in (200, 400), (url, r.status_code)
    return r.get_data(as_text=True)


def test_feed_pages_are_the_macros_byte_for_byte(app: Flask, client: FlaskClient, data: Data, fixed_now: None) -> None:  # noqa: F811
    names = {"example-social": "Example Social", "other-video": "Other Video"}
    urls = _urls(names)
    drawn = {url: _page(client, url) for url in urls}
    again = {url: _page(client, url) for url in urls}  # the empty fields kept since
    with _the_macro(app):
        expected = {url: _page(client, url) for url in urls}
    assert 'class="field field-select field-error"' in expected["/records?platform=nope%22%3C%26%3E%27"]
    assert "&lt;script&gt;&#34;&#39;&amp;amp;" in expected[urls[-7]]
    assert sum('<p class="error"' in page for page in expected.values()) > len(urls) // 3
    for url in urls:
        assert drawn[url] == expected[url], url
        assert again[url] == expected[url], url


def test_a_platform_registered_since_is_in_the_form_and_the_banner(
    app: Flask,
    client: FlaskClient,
    data: Data,  # noqa: F811
    fixed_now: None,  # noqa: F811
) -> None:
    urls = ["/records", "/records?platform=demo-social", "/records?platform=example-social"]
    before = [_page(client, url) for url in urls]
    assert "demo-banner" not in before[0]
    assert 'value="demo-social"' not in before[0]
    assert 'id="err-platform"' in before[1]
    app.extensions["ledger"].log.registry.add_platform("demo-social", "Demo <Social>", KEY_DEMO.public_key)
    after = [_page(client, url) for url in urls]
    assert "demo-banner" in after[0]
    assert "demo-banner" in _get(client, "/")  # a page that does not pass the banner asks the database
    assert '<option value="demo-social">Demo &lt;Social&gt;</option>' in after[0]
    assert '<option value="demo-social" selected>Demo &lt;Social&gt;</option>' in after[1]
    assert 'id="err-platform"' not in after[1]
    with _the_macro(app):
        assert [_page(client, url) for url in urls] == after
