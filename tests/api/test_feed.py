"""The public feed on SQLite and PostgreSQL: every filter narrows to exactly
the records a plain Python predicate picks, pages stay stable while the log
grows, the index is rebuilt from the log alone, and filters use indexes."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from api.record_validator import validate_record
from keys.records import PlatformKey
from ledger.db import HASHED_FILTERS, hashed_equal, is_sqlite, record_index
from ledger.log import Log
from ledger.records.codes import CODES
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
    _DECISIONS.clear()
    _DECISIONS.update({(r["platform"], r["record_id"]): r for r in recs})
    recs.append(appeal("apl-1", "d-001"))
    recs.append(amendment("amd-1", "d-002"))
    for start in range(0, len(recs), 25):
        batch = recs[start : start + 25]
        items = [sign(r, KEY if r["platform"] == "example-social" else KEY2) for r in batch]
        r = client.post("/api/v1/records", json={"records": items})
        assert r.status_code == 201, r.json["errors"]
    return recs


def _ids(client: FlaskClient, query: str) -> list[str]:
    r = client.get("/api/v1/records?limit=200&" + query)
    assert r.status_code == 200, r.json
    return [x["record_id"] for x in r.json["records"]]


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    return rec.get("corrected", rec) if rec["type"] == "amendment" else rec


#: The decisions of the data set by (platform, record_id), filled by the fixture.
_DECISIONS: dict[tuple[str, str], dict[str, Any]] = {}


def _about(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The decision bodies a filter on a decision's fields looks at for ``rec``: a
    decision's own, an amendment's correction and its decision, an appeal's decision."""
    own = [] if rec["type"] == "appeal" else [_body(rec)]
    if rec["type"] in ("appeal", "amendment"):
        own.append(_DECISIONS[(rec["platform"], rec["refs"]["record_id"])])
    return own


def _any(rec: dict[str, Any], pred: Callable[[dict[str, Any]], bool]) -> bool:
    return any(pred(b) for b in _about(rec))


Pred = Callable[[dict[str, Any]], bool]
CASES: list[tuple[str, Pred]] = [
    ("platform=other-video", lambda r: r["platform"] == "other-video"),
    ("type=appeal", lambda r: r["type"] == "appeal"),
    ("account_class=legislator", lambda r: _any(r, lambda b: b["account"]["class"] == "legislator")),
    ("political=true", lambda r: _any(r, lambda b: b["account"]["class"] in POLITICAL_CLASSES)),
    ("political=false", lambda r: _any(r, lambda b: b["account"]["class"] not in POLITICAL_CLASSES)),
    ("rule_id=hate/slurs", lambda r: _any(r, lambda b: b["rule"]["id"] == "hate/slurs")),
    (
        "rule_id=spam/phishing&rule_version=2",
        lambda r: _any(r, lambda b: (b["rule"]["id"], b["rule"]["version"]) == ("spam/phishing", "2")),
    ),
    ("category=scams_and_fraud", lambda r: _any(r, lambda b: b["category"] == "scams_and_fraud")),
    ("severity=critical", lambda r: _any(r, lambda b: b["severity"] == "critical")),
    ("action=geo_block", lambda r: _any(r, lambda b: b["action"] == "geo_block")),
    # Every decision of the data set found a violation: a second filter narrows it.
    (
        "violation_found=true&severity=critical",
        lambda r: _any(r, lambda b: b["violation_found"] and b["severity"] == "critical"),
    ),
    (
        "exemption_applied=true",
        lambda r: _any(r, lambda b: (b.get("exemption") or {}).get("applied") is True),
    ),
    (
        "exemption_type=newsworthiness",
        lambda r: _any(r, lambda b: (b.get("exemption") or {}).get("type") == "newsworthiness"),
    ),
    ("review_path=standard", lambda r: _any(r, lambda b: b["review_path"] == "standard")),
    ("interim_state=hidden", lambda r: _any(r, lambda b: b["interim_state"] == "hidden")),
    (
        "detection_source=internal_staff",
        lambda r: _any(r, lambda b: b["detection_source"] == "internal_staff"),
    ),
    ("automated_decision=fully", lambda r: _any(r, lambda b: b["automated_decision"] == "fully")),
    ("territory=DE", lambda r: _any(r, lambda b: "DE" in b["territorial_scope"])),
    (
        "target_class=election_worker",
        lambda r: _any(r, lambda b: b.get("target", {}).get("class") == "election_worker"),
    ),
    ("reporter_class=target_self", lambda r: _any(r, lambda b: b.get("reporter_class") == "target_self")),
    ("abuse_kind=threat", lambda r: _any(r, lambda b: b["rule"].get("abuse") == "threat")),
    (
        "target_class=candidate&reporter_class=trusted_flagger",
        lambda r: _any(
            r,
            lambda b: b.get("target", {}).get("class") == "candidate" and b.get("reporter_class") == "trusted_flagger",
        ),
    ),
    (
        "subject_key=politician-subject-0001",
        lambda r: _any(r, lambda b: b["account"]["subject_key"] == "politician-subject-0001"),
    ),
    (
        "qid=Q4115189",
        lambda r: _any(r, lambda b: b["account"].get("public_subject", {}).get("wikidata_qid") == "Q4115189"),
    ),
    (
        "q=PRESIDENTIA",
        lambda r: _any(r, lambda b: "presidentia" in json.dumps(b["account"].get("public_subject", {})).lower()),
    ),
    (
        "decided_from=2026-04-16&decided_to=2026-04-17",
        lambda r: "2026-04-16" <= _body(r)["decided_at"][:10] < "2026-04-17",
    ),
    (
        "platform=example-social&political=true&severity=high",
        lambda r: (
            r["platform"] == "example-social"
            and _any(r, lambda b: b["account"]["class"] in POLITICAL_CLASSES and b["severity"] == "high")
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
        if _any(r, lambda b: b["account"]["subject_key"] == "politician-subject-0001")
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
        ("qid=Q0", "qid"),
        ("qid=q42", "qid"),
        ("qid=42", "qid"),
        ("qid=Q" + "1" * 20, "qid"),
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
        "qid",
        "abuse_kind",
        "exemption_type",
    ],
)
def test_filters_use_an_index(app: Flask, dataset: list[dict[str, Any]], column: str) -> None:
    """Each filter reads one value's rows newest first from its index, sorting nothing."""
    log: Log = app.extensions["ledger"].log
    # The value as stored: a closed vocabulary's column holds codes (migration 0012_codes).
    value: Any = True if column == "political" else 1 if column in CODES else "x"
    term, index = f"{column} = :v", f"record_index_{column}"
    if column in HASHED_FILTERS and not is_sqlite(log.engine):
        # PostgreSQL's index holds the text's hash (migration 0013_hashed_keys):
        # the term the feed writes for it.
        hashed = hashed_equal(log.engine, record_index.c[column], value)
        term = str(hashed.compile(log.engine, compile_kwargs={"literal_binds": True}))
        index = f"record_index_{HASHED_FILTERS[column]}"
    sql = f"SELECT leaf_index FROM record_index WHERE {term} AND leaf_index < 1000 ORDER BY leaf_index DESC LIMIT 50"
    with log.engine.connect() as conn:
        if is_sqlite(log.engine):
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql), {"v": value}))
            assert "USING INDEX record_index_" in plan or "USING COVERING INDEX record_index_" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            # Off, so that a plan that sorts is one where the index cannot
            # give the order (not the planner's choice on a tiny table).
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            conn.execute(text("SET LOCAL enable_bitmapscan = off"))
            conn.execute(text("SET LOCAL enable_sort = off"))
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), {"v": value}))
            assert index in plan, plan
            assert "Sort" not in plan, plan


def _web_count(client: FlaskClient, query: str) -> int:
    """The count the web feed shows for ``query`` (all its records fit on one page)."""
    r = client.get("/records?limit=200&" + query)
    assert r.status_code == 200, r.data[:500]
    found = re.search(r'<span class="count">([\d,]+)</span>', r.get_data(as_text=True))
    return int(found.group(1).replace(",", "")) if found else 0


def test_a_decisions_filters_find_its_appeals_and_amendments(client: FlaskClient) -> None:
    """Issue 15: a person's feed, or a class's, shows their appeals and amendments
    too, found through the decision each refers to; the API and the web agree."""
    log: Log = client.application.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    mine = decision("mine", name="decision-legislator-removal")
    mine["account"]["subject_key"] = "person-under-test-01"
    other = decision("dec-2026-000777", name="decision-ordinary-user")
    assert mine["account"]["class"] == "legislator"
    assert other["account"]["class"] == "ordinary_user"
    recs = [
        mine,
        other,
        appeal("apl-2026-000001", "mine"),
        amendment("amd-2026-000001", "mine"),
        appeal("apl-2026-000002", "dec-2026-000777"),
    ]
    assert validate_record(recs[3], NOW) == []
    for batch in (recs[:2], recs[2:]):
        r = client.post("/api/v1/records", json={"records": [sign(x, KEY) for x in batch]})
        assert r.status_code == 201, r.json.get("errors")
    # The amendment's own correction names another account: only its decision ties it to the person.
    assert recs[3]["corrected"]["account"].get("subject_key") != "person-under-test-01"

    person = "subject_key=person-under-test-01"
    assert _ids(client, person) == ["amd-2026-000001", "apl-2026-000001", "mine"]
    assert [x["record_id"] for x in client.get("/api/v1/subjects/person-under-test-01").json["records"]] == [
        "amd-2026-000001",
        "apl-2026-000001",
        "mine",
    ]
    assert _ids(client, person + "&type=appeal") == ["apl-2026-000001"]
    assert _ids(client, "account_class=legislator&type=appeal") == ["apl-2026-000001"]
    assert "apl-2026-000001" in _ids(client, "political=true")
    assert "apl-2026-000002" not in _ids(client, "political=true")
    assert _ids(client, "account_class=ordinary_user&type=appeal") == ["apl-2026-000002"]
    # A rule finds the appeals of the decisions under it (an appeal names no rule of its own).
    assert _ids(client, f"rule_id={mine['rule']['id']}&type=appeal") == ["apl-2026-000001"]
    assert _ids(client, f"rule_id={other['rule']['id']}&type=appeal") == ["apl-2026-000002"]
    # A filter no decision matches matches none of the appeals either.
    assert _ids(client, "subject_key=nobody-has-this-key") == []
    assert _ids(client, "rule_id=no/such-rule") == []
    for q in (
        person,
        person + "&type=appeal",
        "account_class=legislator",
        "account_class=ordinary_user",
        f"rule_id={mine['rule']['id']}",
        "rule_id=no/such-rule",
    ):
        assert _web_count(client, q) == len(_ids(client, q)), q


def test_sort_by_decision_time_pages_through_every_record_once(
    client: FlaskClient, dataset: list[dict[str, Any]]
) -> None:
    """Issue 15: sort=decided lists the newest decision first (ties newest logged
    first), and its cursor pages through every record exactly once."""
    log_order = client.get("/api/v1/records?limit=200").json["records"]
    expected = sorted(log_order, key=lambda r: (r["decided_at"] or "", r["leaf_index"]), reverse=True)
    assert [r["leaf_index"] for r in expected] != [r["leaf_index"] for r in log_order], "the data set should reorder"
    seen: list[int] = []
    url = "/api/v1/records?sort=decided&limit=7"
    while True:
        page = client.get(url).json
        seen += [r["leaf_index"] for r in page["records"]]
        # Records logged meanwhile change no page: the cursor pins the tree size.
        late = sign(decision(f"late-sort-{len(seen)}"), KEY)
        assert client.post("/api/v1/records", json=late).status_code == 201
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/records?sort=decided&limit=7&cursor={page['next_cursor']}"
    assert seen == [r["leaf_index"] for r in expected]
    # With a filter, the same order restricted to its records.
    plat = client.get("/api/v1/records?sort=decided&limit=200&platform=other-video").json["records"]
    assert [r["leaf_index"] for r in plat] == [r["leaf_index"] for r in expected if r["platform"] == "other-video"]
    # A cursor of one order is refused in the other.
    first = client.get("/api/v1/records?limit=7").json["next_cursor"]
    assert client.get(f"/api/v1/records?sort=decided&cursor={first}").status_code == 400
    sorted_cursor = client.get("/api/v1/records?sort=decided&limit=7").json["next_cursor"]
    assert client.get(f"/api/v1/records?cursor={sorted_cursor}").status_code == 400
    assert client.get("/api/v1/records?sort=oldest").status_code == 400


def test_a_person_across_platforms(client: FlaskClient, dataset: list[dict[str, Any]]) -> None:
    """``qid`` finds one person's decisions on both platforms, with the appeal of
    one found through its decision; ``direct=true`` leaves the appeal out."""
    item = "Q4115189"
    mine = [
        r
        for r in dataset
        if r["type"] == "decision" and _body(r)["account"].get("public_subject", {}).get("wikidata_qid") == item
    ]
    assert {r["platform"] for r in mine} == {"example-social", "other-video"}
    target = next(r for r in mine if r["platform"] == "example-social")
    r = client.post("/api/v1/records", json=sign(appeal("apl-2026-000900", target["record_id"]), KEY))
    assert r.status_code == 201, r.json["errors"]
    body = client.get(f"/api/v1/records?limit=200&qid={item}").json
    assert body["records"][0]["record_id"] == "apl-2026-000900"
    assert body["records"][0]["qid"] is None  # the appeal carries no account: found through its decision
    assert {x["qid"] for x in body["records"] if x["type"] == "decision"} == {item}
    assert "apl-2026-000900" not in _ids(client, f"qid={item}&direct=true")
    assert _ids(client, "qid=Q1") == []
