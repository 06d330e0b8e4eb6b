"""'Download these results' (issue 15): a filtered feed view links files
holding exactly the records it counts, which pandas reads as they are."""

from __future__ import annotations

import html
import io
import json
import re

import pandas as pd
from flask.testing import FlaskClient

from tests.web.test_web import Data, _get, data  # noqa: F401  (fixture)


def _downloads(body: str) -> dict[str, str]:
    block = re.search(r'<p class="downloads">(.*?)</p>', body, re.S)
    assert block, "no download links on the feed page"
    return {label: html.unescape(href) for href, label in re.findall(r'<a href="([^"]+)" download>(\w+)</a>', block[1])}


def _count(body: str) -> int:
    found = re.search(r'<span class="count">([0-9,]+)</span>', body)
    assert found, "no exact count on the feed page"
    return int(found[1].replace(",", ""))


def test_a_filtered_view_downloads_the_records_it_counts(client: FlaskClient, data: Data) -> None:  # noqa: F811
    body = _get(client, "/records?platform=example-social&account_class=ordinary_user")
    links = _downloads(body)
    assert set(links) == {"CSV", "NDJSON", "Parquet"}
    expected = _count(body)
    assert expected > 0
    csv = client.get(links["CSV"])
    assert csv.status_code == 200
    frame = pd.read_csv(io.BytesIO(csv.data), dtype=str, keep_default_na=False)
    assert len(frame) == expected
    assert set(frame["platform"]) == {"example-social"}
    assert set(frame["account.class"]) == {"ordinary_user"}
    assert int(csv.headers["Ledger-Record-Count"]) == expected
    parquet = client.get(links["Parquet"])
    assert pd.read_parquet(io.BytesIO(parquet.data))["record_id"].tolist() == frame["record_id"].tolist()
    lines = client.get(links["NDJSON"]).data.splitlines()
    assert [json.loads(line)["record"]["record_id"] for line in lines] == frame["record_id"].tolist()


def test_no_download_links_for_a_view_with_errors_or_no_records(client: FlaskClient, data: Data) -> None:  # noqa: F811
    assert '<p class="downloads">' not in _get(client, "/records?decided_from=not-a-date", 400)
    assert '<p class="downloads">' not in _get(client, "/records?platform=example-social&rule_id=no-such-rule")
