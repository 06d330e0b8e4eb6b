"""Licence and citation (issue 15): every page states the data licence; a
record page and a rule's statistics say how to cite them, checkpoint included."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient

from ledger.log import Log
from tests.web.test_dashboard import CIVIC, api, page, planted  # noqa: F401  (fixture)
from tests.web.test_web import Data, _get, data  # noqa: F401  (fixture)

LICENCE = '<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>'


def test_a_record_page_cites_the_record_with_its_checkpoint(app: Flask, client: FlaskClient, data: Data) -> None:  # noqa: F811
    log: Log = app.extensions["ledger"].log
    with log.read() as s:
        cp = log.latest(s)
    origin, size, root = cp.note.decode().split("\n")[:3]
    body = html.unescape(_get(client, "/records/example-social/dec-leg"))
    cite = re.search(r'<p class="cite">(.*?)</p>', body, re.DOTALL)
    assert cite
    text = cite.group(1)
    assert text.startswith("Example Social, decision record dec-leg, logged ")
    assert f"Transparency log {origin}, entry " in text
    assert f"checkpoint of tree size {size} (root hash {root})" in text
    assert "http://localhost/records/example-social/dec-leg" in text
    for url in ("/", "/records", "/log/checkpoints", "/about"):
        assert LICENCE in _get(client, url), url


def test_a_rules_statistics_cite_the_document(client: FlaskClient, planted: Log) -> None:  # noqa: F811
    doc = api(client)["document"]
    cp = doc["checkpoint"]
    body = html.unescape(page(client, CIVIC))
    cite = re.search(r'<p class="cite">(.*?)</p>', body, re.DOTALL)
    assert cite
    text = cite.group(1)
    assert f"checkpoint of tree size {cp['tree_size']} (root hash {cp['root_hash']})" in text
    # The digest is the one the statistics page gives for the JSON document.
    shown = re.search(r'SHA-256 <code class="hash">([0-9a-f]{64})</code>', page(client, "/stats"))
    assert shown
    assert f"document SHA-256 {shown.group(1)}." in text
    assert LICENCE in page(client, "/stats")
