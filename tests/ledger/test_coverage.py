"""Coverage end to end, on SQLite and PostgreSQL (issue 16).

The planted-disparity records of tests/ledger/test_evenness.py are logged
with one coverage statement per (platform, month, rule), each built by the
platform client's :func:`~ledger.records.coverage.build_statement` from the
records plus the platform's totals. The totals equal what was logged,
but for two planted cells:

* a gap: example-social declares 20 more exemptions for legislators under
  civic/false-claims in one month than it logged (exemptions for
  politicians under-logged);
* a contradiction: other-video declares one decision fewer for a
  journalists' cell under spam/phishing in one month than it logged.

Exactly those two must be found, and nothing else.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from ledger.audit import audit
from ledger.log import Log
from ledger.records.coverage import build_statement, decision_cell
from tests.ledger.test_evenness import get, planted_records, register, submit
from tests.tamper import tamper

GAP = ("example-social", "civic/false-claims", "legislator")
CONTRADICTED = ("other-video", "spam/phishing", "journalist")
GAP_MONTH = "2026-02"
CONTRADICTED_MONTH = "2026-04"


def statements_for(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One statement per (platform, month, rule) of ``records``, with the two planted errors."""
    totals: dict[tuple[str, str, str], Counter[tuple[str, str, bool]]] = {}
    for r in records:
        if r["type"] == "decision":
            month, rule, cls, action, exempted = decision_cell(r)
            totals.setdefault((r["platform"], month, rule), Counter())[(cls, action, exempted)] += 1
    out = []
    for i, ((platform, month, rule), counts) in enumerate(sorted(totals.items())):
        declared = dict(counts)
        if (platform, rule) == GAP[:2] and month == GAP_MONTH:
            cell = max((k for k in declared if k[0] == GAP[2] and k[2]), key=lambda k: (declared[k], k))
            declared[cell] += 20
        statement = build_statement(
            records,
            platform=platform,
            record_id=f"cov-{i:03d}",
            period=month,
            rule_id=rule,
            submitted_at="2026-11-02T00:00:00Z",
            description="Every decision under this rule in the month, on accounts of the classes listed.",
            totals=declared,
        )
        if (platform, rule) == CONTRADICTED[:2] and month == CONTRADICTED_MONTH:
            actions = statement["counts"][CONTRADICTED[2]]
            action = sorted(actions)[0]
            half = sorted(actions[action])[0]
            actions[action][half] -= 1
        out.append(statement)
    return out


@pytest.fixture
def covered(app: Flask, client: FlaskClient) -> list[dict[str, Any]]:
    register(app)
    records = planted_records()
    submit(client, records + statements_for(records))
    return records


def _v2(client: FlaskClient, query: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = get(client, "method_version=2" + (f"&{query}" if query else "")).json["document"]
    assert doc["method"]["version"] == 2
    return doc


def test_exactly_the_planted_gap_and_contradiction_are_found(
    client: FlaskClient, covered: list[dict[str, Any]]
) -> None:
    cov = _v2(client)["coverage"]
    statuses = Counter(s["status"] for s in cov["statements"])
    wrong = {(s["platform"], s["rule_id"], s["account_class"], s["period"], s["status"]) for s in cov["statements"]}
    wrong = {w for w in wrong if w[-1] != "complete"}
    assert wrong == {(*GAP, GAP_MONTH, "incomplete"), (*CONTRADICTED, CONTRADICTED_MONTH, "contradicted")}
    assert statuses["complete"] == 16  # the other (month, rule, class) of the three platforms
    (gap,) = [s for s in cov["statements"] if s["status"] == "incomplete"]
    assert (gap["declared"] - gap["logged"], gap["missing"]) == (20, 20)
    assert next(c for c in gap["cells"] if c["status"] != "complete")["exempted"] is True
    assert cov["superseded"] == []
    assert cov["conflicting"] == []

    cells = {(c["platform"], c["rule_id"], c["account_class"]): c for c in cov["cells"]}
    assert {k for k, c in cells.items() if c["status"] != "complete"} == {GAP, CONTRADICTED}
    legislators = cells[GAP]
    assert (legislators["status"], legislators["missing"], legislators["logged"]) == ("incomplete", 20, 40)
    # 20 exemptions in 40 violations, 20 decisions missing: between 20/60 and 40/60.
    assert legislators["exemption_rate"] == {"lower": pytest.approx(1 / 3), "upper": pytest.approx(2 / 3)}
    assert legislators["sentence"].startswith(
        "the log holds 40 of the 60 decisions the platform declared for legislators under this rule in February 2026"
    )
    assert "lies between 33.3% and 66.7%" in legislators["sentence"]
    assert cells[CONTRADICTED]["exemption_rate"] is None
    assert "the statement is contradicted" in cells[CONTRADICTED]["sentence"]

    by_key = {(c["section"], c["metric"], c["platform"], c["rule_id"], c["group"]): c for c in cov["comparisons"]}
    leg = by_key[("comparisons", "exemption_rate", *GAP[:2], "legislator")]
    assert leg["reversible"] is False
    assert "could not reverse this comparison" in leg["sentence"]
    journalists = by_key[("comparisons", "exemption_rate", *CONTRADICTED[:2], "journalist")]
    assert journalists["reversible"] is None
    assert "contradicted by the log" in journalists["sentence"]
    # Everything else is complete: coverage cannot change those comparisons.
    complete = [c for k, c in by_key.items() if k[2:4] == ("third-forum", "hate/slurs")]
    assert complete
    assert all("coverage cannot change this" in c["sentence"] for c in complete)


def test_version_1_ignores_statements_and_a_filter_by_month(client: FlaskClient, covered: list[dict[str, Any]]) -> None:
    v1 = get(client).json["document"]
    assert "coverage" not in v1
    assert v1["method"]["version"] == 1
    assert v1["totals"]["decisions"] == 1220
    # February alone: the gap is whole inside; the other months' statements are left out.
    cov = _v2(client, "decided_from=2026-02-01&decided_to=2026-03-01")["coverage"]
    assert {s["period"] for s in cov["statements"]} == {GAP_MONTH}
    assert {s["status"] for s in cov["statements"]} == {"complete", "incomplete"}
    # Cut months are not compared: no month lies wholly in the range.
    cut = _v2(client, "decided_from=2026-02-02&decided_to=2026-03-01")["coverage"]
    assert cut["statements"] == []
    assert {c["sentence"] for c in cut["cells"]} == {"coverage not declared"}


def test_the_audit_rebuilds_and_compares_coverage_rows(
    app: Flask, covered: list[dict[str, Any]], runner: FlaskCliRunner
) -> None:
    log: Log = app.extensions["ledger"].log
    with log.read() as s:
        assert audit(s, log.verifier).ok
    tamper(log.engine, "UPDATE coverage_statements SET counts = '{}' WHERE record_id = 'cov-000'")
    with log.read() as s:
        report = audit(s, log.verifier)
    assert not report.ok
    assert (report.mismatches[0].table, report.mismatches[0].column) == ("coverage_statements", "counts")
    out = runner.invoke(args=["ledger", "audit", "--quiet"])
    assert out.exit_code == 1
    assert "coverage_statements row" in out.output


def test_the_coverage_endpoint_filters_and_names_its_checkpoint(
    client: FlaskClient, covered: list[dict[str, Any]]
) -> None:
    every = client.get("/api/v1/coverage").json
    v2 = _v2(client)["coverage"]["statements"]
    assert every["comparisons"] == v2  # one computation, two answers
    assert every["checkpoint"]["tree_size"] == client.get("/api/v1/log").json["checkpoint"]["tree_size"]
    gaps = client.get("/api/v1/coverage?status=incomplete").json["comparisons"]
    assert [(c["platform"], c["rule_id"], c["account_class"], c["period"]) for c in gaps] == [(*GAP, GAP_MONTH)]
    one = client.get(f"/api/v1/coverage?platform={CONTRADICTED[0]}&account_class=journalist&period_from=2026-04")
    assert [c["status"] for c in one.json["comparisons"]] == ["contradicted"]
    assert client.get("/api/v1/coverage?period_to=2026-01").json["comparisons"] == []
    # Pinned to a checkpoint before the statements: nothing was declared yet.
    before = client.get("/api/v1/coverage?tree_size=1003").json  # 3 registry entries, two batches of 500
    assert before["comparisons"] == []
    assert before["checkpoint"]["tree_size"] == 1003
    bad = client.get("/api/v1/coverage?period_from=2026-13&status=some")
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert {e["path"] for e in bad.json["errors"]} == {"period_from", "status"}


def test_pages_show_coverage_beside_the_findings(client: FlaskClient, covered: list[dict[str, Any]]) -> None:
    stats = client.get("/stats").get_data(as_text=True)
    assert "Coverage</span> Coverage: the log holds 40 of the 60 decisions declared for legislators" in stats
    assert "could not reverse this comparison" in stats
    platform = client.get(f"/stats/{GAP[0]}").get_data(as_text=True)
    assert "the log holds 40 of the 60 decisions the platform declared for legislators" in platform
    page = client.get(f"/platforms/{CONTRADICTED[0]}/coverage")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<span class="badge badge-warn">Contradicted</span>') == 2  # the grid cell and the list
    assert f"{CONTRADICTED_MONTH}, <code>{CONTRADICTED[1]}</code>, journalist" in html
    gap = client.get(f"/platforms/{GAP[0]}/coverage").get_data(as_text=True)
    assert "Contradicted</span>" not in gap
    assert "20 missing" in gap
    assert client.get("/platforms/nobody/coverage").status_code == 404
    assert "coverage statements" in client.get(f"/platforms/{GAP[0]}").get_data(as_text=True)
