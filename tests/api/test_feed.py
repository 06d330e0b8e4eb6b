"""The public feed on SQLite and PostgreSQL: every filter narrows to exactly
the records a plain Python predicate picks, pages stay stable while the log
grows, the index is rebuilt from the log alone, and filters use indexes."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from api.record_validator import validate_record
from keys.records import PlatformKey
from ledger.db import is_sqlite
from ledger.log import Log
from ledger.records.vocab import POLITICAL_CLASSES
from tests.checklog import check_log
from tests.recordkit import amendment, appeal, decision, sign
from tests.tamper import tamper

KEY = PlatformKey(bytes([3]) * 32)
KEY2 = PlatformKey(bytes([4]) * 32)
NAMES = [
    "decision-head-of-state-newsworthiness",
    "decision-illegal-court-order",
    "decision-legislator-removal",
    "decision-ordinary-user",
]
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _varied(rng: random.Random, i: int, platform: str) -> dict[str, Any]:
    rec = decision(f"d-{i:03d}", platform=platform, name=rng.choice(NAMES))
    rec["severity"] = rng.choice(["low", "medium", "high", "critical"])
    rec["rule"] = {
        "id": rng.choice(["civic/false-claims", "hate/slurs", "spam/phishing"]),
        "version": rng.choice(["1", "2"]),
    }
    rec["review_path"] = rng.choice(["standard", "secondary_high_profile", "policy_escalation"])
    rec["detection_source"] = rng.choice(["automated", "user_report", "internal_staff"])
    rec["automated_decision"] = rng.choice(["fully", "partially", "none"])
    if rec["account"]["class"] != "ordinary_user" and rng.random() < 0.5:
        rec["account"]["subject_key"] = "politician-subject-0001"
    # The protection fields, from a generator of their own so the draws above stay as they were.
    own = random.Random(i)
    if own.random() < 0.6:
        rec["target"] = {"class": own.choice(["election_worker", "candidate", "ordinary_user", "group"])}
        rec["reporter_class"] = own.choice(["target_self", "ordinary_user", "trusted_flagger"])
        if own.random() < 0.5:
            rec["rule"]["abuse"] = "threat"
    assert validate_record(rec, NOW) == [], validate_record(rec, NOW)
    return rec


@pytest.fixture
def dataset(app: Flask, client: FlaskClient) -> list[dict[str, Any]]:
    """60 decisions on two platforms, an appeal and an amendment, in log order."""
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    log.registry.add_platform("other-video", "Other Video", KEY2.public_key)
    rng = random.Random(7)
    recs = []
    for i in range(60):
        platform = "example-social" if i % 3 else "other-video"
        recs.append(_varied(rng, i, platform))
    recs.append(appeal("apl-1", "d-001"))
    recs.append(amendment("amd-1", "d-002"))
    for start in range(0, len(recs), 25):
        batch = recs[start : start + 25]
        items = [sign(r, KEY if r["platform"] == "example-social" else KEY2) for r in batch]
        r = client.post("/api/v1/records", json={"records": items})
        assert r.status_code == 201, r.json
    return recs


def _ids(client: FlaskClient, query: str) -> list[str]:
    r = client.get("/api/v1/records?limit=200&" + query)
    assert r.status_code == 200, r.json
    return [x["record_id"] for x in r.json["records"]]


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    return rec.get("corrected", rec) if rec["type"] == "amendment" else rec


Pred = Callable[[dict[str, Any]], bool]
CASES: list[tuple[str, Pred]] = [
    ("platform=other-video", lambda r: r["platform"] == "other-video"),
    ("type=appeal", lambda r: r["type"] == "appeal"),
    ("account_class=legislator", lambda r: r["type"] != "appeal" and _body(r)["account"]["class"] == "legislator"),
    ("political=true", lambda r: r["type"] != "appeal" and _body(r)["account"]["class"] in POLITICAL_CLASSES),
    ("political=false", lambda r: r["type"] != "appeal" and _body(r)["account"]["class"] not in POLITICAL_CLASSES),
    ("rule_id=hate/slurs", lambda r: r["type"] == "decision" and r["rule"]["id"] == "hate/slurs"),
    (
        "rule_id=spam/phishing&rule_version=2",
        lambda r: r["type"] == "decision" and (r["rule"]["id"], r["rule"]["version"]) == ("spam/phishing", "2"),
    ),
    ("category=scams_and_fraud", lambda r: r["type"] != "appeal" and _body(r)["category"] == "scams_and_fraud"),
    ("severity=critical", lambda r: r["type"] != "appeal" and _body(r)["severity"] == "critical"),
    ("action=geo_block", lambda r: r["type"] != "appeal" and _body(r)["action"] == "geo_block"),
    ("violation_found=true", lambda r: r["type"] != "appeal" and _body(r)["violation_found"]),
    (
        "exemption_applied=true",
        lambda r: r["type"] != "appeal" and (_body(r).get("exemption") or {}).get("applied") is True,
    ),
    (
        "exemption_type=newsworthiness",
        lambda r: r["type"] != "appeal" and (_body(r).get("exemption") or {}).get("type") == "newsworthiness",
    ),
    ("review_path=standard", lambda r: r["type"] != "appeal" and _body(r)["review_path"] == "standard"),
    ("interim_state=hidden", lambda r: r["type"] != "appeal" and _body(r)["interim_state"] == "hidden"),
    (
        "detection_source=internal_staff",
        lambda r: r["type"] != "appeal" and _body(r)["detection_source"] == "internal_staff",
    ),
    ("automated_decision=fully", lambda r: r["type"] != "appeal" and _body(r)["automated_decision"] == "fully"),
    ("territory=DE", lambda r: r["type"] != "appeal" and "DE" in _body(r)["territorial_scope"]),
    (
        "target_class=election_worker",
        lambda r: r["type"] != "appeal" and _body(r).get("target", {}).get("class") == "election_worker",
    ),
    ("reporter_class=target_self", lambda r: r["type"] != "appeal" and _body(r).get("reporter_class") == "target_self"),
    ("abuse_kind=threat", lambda r: r["type"] != "appeal" and _body(r)["rule"].get("abuse") == "threat"),
    (
        "target_class=candidate&reporter_class=trusted_flagger",
        lambda r: (
            r["type"] != "appeal"
            and _body(r).get("target", {}).get("class") == "candidate"
            and _body(r).get("reporter_class") == "trusted_flagger"
        ),
    ),
    (
        "subject_key=politician-subject-0001",
        lambda r: r["type"] != "appeal" and _body(r)["account"]["subject_key"] == "politician-subject-0001",
    ),
    (
        "q=PRESIDENTIA",
        lambda r: (
            r["type"] != "appeal" and "presidentia" in json.dumps(_body(r)["account"].get("public_subject", {})).lower()
        ),
    ),
    (
        "decided_from=2026-04-16&decided_to=2026-04-17",
        lambda r: "2026-04-16" <= _body(r)["decided_at"][:10] < "2026-04-17",
    ),
    (
        "platform=example-social&political=true&severity=high",
        lambda r: (
            r["platform"] == "example-social"
            and r["type"] != "appeal"
            and _body(r)["account"]["class"] in POLITICAL_CLASSES
            and _body(r)["severity"] == "high"
        ),
    ),
]


@pytest.mark.parametrize("query,pred", CASES, ids=[c[0] for c in CASES])
def test_every_filter(client: FlaskClient, dataset: list[dict[str, Any]], query: str, pred: Pred) -> None:
    expected = [r["record_id"] for r in reversed(dataset) if pred(r)]
    assert expected, f"the data set should exercise {query}"
    assert len(expected) < len(dataset), f"{query} should narrow the feed"
    assert _ids(client, query) == expected


def test_logged_at_range_and_tree_size(client: FlaskClient, dataset: list[dict[str, Any]]) -> None:
    body = client.get("/api/v1/records?logged_from=2000-01-01").json
    assert body["tree_size"] == len(dataset) + 2  # two registry entries
    assert len(client.get("/api/v1/records?logged_to=2000-01-01").json["records"]) == 0


def test_current_leaves_out_superseded(client: FlaskClient, dataset: list[dict[str, Any]]) -> None:
    all_ids = _ids(client, "")
    assert "d-002" in all_ids
    current = _ids(client, "current=true")
    assert "d-002" not in current
    assert "amd-1" in current
    rows = {x["record_id"]: x for x in client.get("/api/v1/records?limit=200").json["records"]}
    assert rows["d-002"]["superseded"] is True
    assert rows["amd-1"]["superseded"] is False


def test_pages_are_stable_while_the_log_grows(client: FlaskClient, dataset: list[dict[str, Any]]) -> None:
    expected = [r["record_id"] for r in reversed(dataset)]
    seen: list[str] = []
    body = client.get("/api/v1/records?limit=7").json
    size = body["tree_size"]
    n = 0
    while True:
        seen += [x["record_id"] for x in body["records"]]
        assert body["tree_size"] == size
        # Someone appends between our page requests.
        rec = decision(f"late-{n}")
        assert client.post("/api/v1/records", json=sign(rec, KEY)).status_code == 201
        n += 1
        if body["next_cursor"] is None:
            break
        body = client.get(f"/api/v1/records?limit=7&cursor={body['next_cursor']}").json
    assert seen == expected
    assert _ids(client, "")[:n] == [f"late-{i}" for i in reversed(range(n))]


def test_subject_page(client: FlaskClient, dataset: list[dict[str, Any]]) -> None:
    body = client.get("/api/v1/subjects/politician-subject-0001").json
    expected = [
        r["record_id"]
        for r in reversed(dataset)
        if r["type"] != "appeal" and _body(r)["account"]["subject_key"] == "politician-subject-0001"
    ]
    assert [x["record_id"] for x in body["records"]] == expected
    assert body["subject_key"] == "politician-subject-0001"
    assert client.get("/api/v1/subjects/bad%20key").status_code == 400


@pytest.mark.parametrize(
    "query,path",
    [
        ("action=obliterate", "action"),
        ("political=yes", "political"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("decided_from=yesterday", "decided_from"),
        ("q=ab", "q"),
        ("cursor=%21%21", "cursor"),
        ("territory=XX", "territory"),
        ("target_class=poll_worker", "target_class"),
        ("reporter_class=victim", "reporter_class"),
        ("colour=red", "colour"),
        ("q=abc%00def", "q"),
        ("rule_version=1%0A2", "rule_version"),
    ],
)
def test_bad_filters_are_400(client: FlaskClient, dataset: list[dict[str, Any]], query: str, path: str) -> None:
    r = client.get("/api/v1/records?" + query)
    assert r.status_code == 400
    assert [e["path"] for e in r.json["errors"]] == [path]


def test_reindex_adds_missing_rows_and_rewrites_none(
    app: Flask, client: FlaskClient, runner: Any, dataset: list[dict[str, Any]]
) -> None:
    before = [client.get(f"/api/v1/records?limit=200&{q}").json for q, _ in CASES]
    res = runner.invoke(args=["ledger", "reindex"])
    assert res.exit_code == 0, res.output
    assert "added 0 missing index rows" in res.output
    log: Log = app.extensions["ledger"].log
    # Rows lost behind the log's back (the table itself refuses DELETE).
    everything = _ids(client, "")
    tamper(log.engine, "DELETE FROM record_index WHERE leaf_index IN (3, 40)")
    assert len(_ids(client, "")) == len(everything) - 2
    res = runner.invoke(args=["ledger", "reindex"])
    assert res.exit_code == 0, res.output
    assert "added 2 missing index rows" in res.output
    assert [client.get(f"/api/v1/records?limit=200&{q}").json for q, _ in CASES] == before
    check_log(log)


@pytest.mark.parametrize(
    "column",
    [
        "platform",
        "account_class",
        "rule_id",
        "subject_key",
        "category",
        "action",
        "political",
        "target_class",
        "reporter_class",
    ],
)
def test_filters_use_an_index(app: Flask, dataset: list[dict[str, Any]], column: str) -> None:
    log: Log = app.extensions["ledger"].log
    sql = (
        f"SELECT leaf_index FROM record_index WHERE {column} = :v AND leaf_index < 1000 "
        "ORDER BY leaf_index DESC LIMIT 50"
    )
    with log.engine.connect() as conn:
        if is_sqlite(log.engine):
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql), {"v": "x"}))
            assert "USING INDEX record_index_" in plan or "USING COVERING INDEX record_index_" in plan, plan
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(
                r[0] for r in conn.execute(text("EXPLAIN " + sql), {"v": True if column == "political" else "x"})
            )
            assert f"record_index_{column}" in plan, plan
