"""Findings first (issue 15): ``/stats`` opens with the flagged comparisons
as one-line headlines, each linking to its full statement, its chart and the
records behind both of its figures; the feed counts a filtered view exactly.

On the planted data set of ``tests/ledger/test_evenness.py``, through the
real app on both databases.
"""

from __future__ import annotations

import html
import re
from typing import Any

from flask.testing import FlaskClient

from ledger.evenness.facts import METRICS
from ledger.log import Log
from tests.ledger.test_evenness import planted_records
from tests.web.test_dashboard import api, page, planted, section  # noqa: F401  (fixture)
from web.dashboard import COMPARISON_METRICS

ROW = re.compile(r"<tr>\s*<th scope=\"row\">.*?</tr>", re.DOTALL)


def _links(row: str) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'<a href="([^"]+)"', row)]


def _count(client: FlaskClient, url: str) -> int:
    body = page(client, url)
    match = re.search(r'<span class="count">([0-9,]+)</span>', body)
    assert match, url
    return int(match.group(1).replace(",", ""))


def _figures(c: dict[str, Any]) -> tuple[int, int]:
    """How many decisions stand behind each of the comparison's two figures."""
    if c["metric"] == "time_to_decision":
        return c["group_time"]["n"], c["reference_time"]["n"]
    return c["group_rate"]["cases"], c["reference_rate"]["cases"]


def test_stats_opens_with_one_headline_per_flagged_comparison(client: FlaskClient, planted: Log) -> None:  # noqa: F811
    doc = api(client)["document"]
    body = page(client, "/stats")
    # The findings come before the full statements, the checkpoint box after both.
    assert body.index('id="findings-heading"') < body.index('id="flagged-heading"') < body.index('id="cp-heading"')
    rows = ROW.findall(section(body, "findings-heading"))
    assert len(rows) == len(doc["flagged"]) == 6
    for number, (row, f) in enumerate(zip(rows, doc["flagged"], strict=True), start=1):
        c = doc[f["section"]][f["index"]]
        sentence, chart, records, reference = _links(row)
        # The statement: an anchor on this page holding the document's sentence.
        assert sentence == f"#finding-{number}"
        anchored = re.search(
            rf'<li id="finding-{number}"><span class="sentence">(.*?)</span>\s*<p class="coverage">(.*?)</p></li>',
            body,
            re.DOTALL,
        )
        assert anchored
        assert html.unescape(anchored.group(1)) == f["sentence"]
        # Beside it, its coverage (nothing is declared in this data set).
        assert "Coverage is not declared for every decision of" in anchored.group(2)
        # The chart: the rule's (or the platform's) page, at the chart of this measure when it has one.
        target, _, fragment = chart.partition("#")
        chart_page = page(client, target)
        if fragment:
            assert f'id="{fragment}"' in chart_page
        # The records: the feed, filtered and pinned to the document's tree size,
        # lists exactly the decisions each figure counts.
        assert _count(client, records) == _figures(c)[0], records
        assert _count(client, reference) == _figures(c)[1], reference
        # The numbers in the line are the document's.
        if "group_rate" in c:
            assert f"{c['group_rate']['events']} of {c['group_rate']['cases']}" in row
            ratio = c["group_rate"]["estimate"] / c["reference_rate"]["estimate"]
            assert f"{ratio:.1f}×" in row


def test_platform_summaries_name_every_flagged_group_and_time(client: FlaskClient, planted: Log) -> None:  # noqa: F811
    body = page(client, "/stats")
    video = re.search(r'<caption id="summary-other-video">.*?</table>', body, re.DOTALL)
    assert video
    rows = dict(re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', video.group(0), re.DOTALL))
    # Other Video's flagged comparisons are about time to decision, under one rule:
    # its summary says so, and never "Not flagged" beside them.
    assert "Journalists, <code>spam/phishing</code>" in rows["Time to decision"]
    assert "Other public figures, <code>spam/phishing</code>" in rows["Time to decision"]
    assert "Not flagged" not in video.group(0)


def test_platform_summaries_have_a_row_for_every_measure_a_comparison_carries(
    client: FlaskClient,
    planted: Log,  # noqa: F811
) -> None:
    """A flagged comparison of any measure (the actions taken among them) is
    named in its platform's summary: the summary has a row for each."""
    body = page(client, "/stats")
    tables = re.findall(r'<caption id="summary-[^"]+">.*?</table>', body, re.DOTALL)
    assert tables
    wanted = [html.escape(COMPARISON_METRICS[m]) for m in METRICS]
    for table in tables:
        assert re.findall(r'<th scope="row">(.*?)</th>', table) == wanted


def test_the_feed_counts_a_filtered_view_exactly(client: FlaskClient, planted: Log) -> None:  # noqa: F811
    # Every record planted, not the first page's 50 nor "50+".
    assert _count(client, "/records") == len(planted_records()) > 50
    # A narrow filter: its count equals the rows listed when all fit on one page.
    url = "/records?platform=other-video&rule_id=spam/phishing&account_class=journalist&limit=200"
    n = _count(client, url)
    assert 0 < n <= 200
    assert page(client, url).count("data-leaf-index=") == n
