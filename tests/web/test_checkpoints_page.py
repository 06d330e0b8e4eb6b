"""The page of signed checkpoints (issue 15): every checkpoint the log
signed, largest first, each linking the statistics pinned to it."""

from __future__ import annotations

import base64
import html
import re

from flask import Flask
from flask.testing import FlaskClient

from ledger import storage
from ledger.log import Log
from tests.web.test_dashboard import section
from tests.web.test_web import Data, _get, data  # noqa: F401  (fixture)


def test_every_signed_checkpoint_is_listed_and_pins_the_statistics(
    app: Flask,
    client: FlaskClient,
    data: Data,  # noqa: F811
) -> None:
    log: Log = app.extensions["ledger"].log
    with log.read() as s:
        signed = list(storage.iter_checkpoints(s))
    assert len(signed) > 2
    body = _get(client, "/log/checkpoints")
    sizes = [int(n.replace(",", "")) for n in re.findall(r'<tr id="size-\d+">\s*<th scope="row">([0-9,]+)</th>', body)]
    assert sizes == sorted((cp.size for cp in signed), reverse=True)
    for cp in signed:
        assert f'<code class="hash">{base64.b64encode(cp.root).decode()}</code>' in body
    links = [html.unescape(u) for u in re.findall(r'href="(/stats\?tree_size=\d+)"', body)]
    assert links == [f"/stats?tree_size={n}" for n in sizes]
    pinned = _get(client, links[-1])
    assert f"at tree size {sizes[-1]} " in html.unescape(pinned)
    # The client pins its recomputation to the same sizes, and the log page says how.
    assert "<code>mdl evenness --tree-size N</code>" in body
    assert 'href="/log#client-heading"' in body
    log_page = _get(client, "/log")
    assert "<code>mdl evenness --tree-size N</code>" in section(log_page, "client-heading")
    # Reached from the log page and the statistics' pin form.
    assert 'href="/log/checkpoints"' in _get(client, "/log")
    assert 'href="/log/checkpoints"' in _get(client, "/stats")


def test_checkpoints_page_older_pages_and_bad_input(app: Flask, client: FlaskClient, data: Data) -> None:  # noqa: F811
    log: Log = app.extensions["ledger"].log
    with log.read() as s:
        sizes = [cp.size for cp in storage.iter_checkpoints(s)]
    below = sizes[-1]
    body = _get(client, f"/log/checkpoints?before={below}")
    listed = [int(n.replace(",", "")) for n in re.findall(r'<tr id="size-(\d+)">', body)]
    assert listed == sorted((n for n in sizes if n < below), reverse=True)
    for bad in ("0", "-1", "01", "x"):
        assert client.get(f"/log/checkpoints?before={bad}").status_code == 400
