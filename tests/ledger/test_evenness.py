"""Evenness statistics end to end, on SQLite and PostgreSQL.

A synthetic log with three planted effects is submitted through the API:

* on example-social, rule civic/false-claims: exemptions applied to 50% of
  the violations found for legislators and heads of state, 10% for
  everyone else;
* on other-video, rule spam/phishing: journalists' and other public
  figures' decisions take three times as long;
* on third-forum, rule hate/slurs, a Simpson's paradox: within each
  severity every class has the same exemption rate, but politicians'
  cases are mostly of the severity with the higher rate, so their crude
  rate is three times the ordinary users'.

Everything else is equal by construction (exact proportions, not random
draws), so exactly the planted comparisons must be flagged.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from keys.records import REGISTRY_CONTEXT, PlatformKey, platform_key_id, verify_signature
from ledger.evenness_store import CheckpointRef, Filters, compute_document, facts_from_entries
from ledger.log import Log
from ledger.records.entries import canonical, parse_entry
from ledger.tlog.tile import TILE_WIDTH, parse_bundle
from tests.recordkit import appeal, example, sign

KEYS = {
    "example-social": PlatformKey(bytes([21]) * 32),
    "other-video": PlatformKey(bytes([22]) * 32),
    "third-forum": PlatformKey(bytes([23]) * 32),
}
SEVERITIES = ("low", "medium", "high", "critical")
ACTS = ("remove_content", "label", "temporary_suspension", "reduce_reach", "geo_block")
BASE_TIMES = (600, 1200, 1800, 2400, 3600, 4800, 7200, 9000, 10800, 14400)
START = datetime(2026, 2, 1, tzinfo=UTC)
FORBIDDEN = re.compile(r"bias|favou?rit|prove", re.IGNORECASE)
OUTCOMES = ("upheld", "reversed", "upheld", "upheld", "reversed", "pending", "modified", "upheld", "reversed", "upheld")


def _time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Builder:
    """Makes valid decision records with exactly the fields the statistics read."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.n = 0

    def decision(
        self, platform: str, cls: str, subject: int, rule: str, severity: str, exempt: bool, action: str, secs: int
    ) -> dict[str, Any]:
        self.n += 1
        ordinary = cls == "ordinary_user"
        rec = copy.deepcopy(example("decision-ordinary-user" if ordinary else "decision-head-of-state-newsworthiness"))
        flagged = START + timedelta(hours=3 * (self.n % 2000))
        decided = flagged + timedelta(seconds=secs)
        rec.update(
            platform=platform,
            record_id=f"d-{self.n:05d}",
            submitted_at=_time(decided),
            rule={"id": rule, "version": "1"},
            severity=severity,
            violation_found=True,
            action=action,
            exemption={"applied": True, "type": "newsworthiness"} if exempt else {"applied": False},
            flagged_at=_time(flagged),
            decided_at=_time(decided),
            applied_at=_time(decided),
        )
        rec.pop("action_ends_at", None)
        if action == "temporary_suspension":
            rec["action_ends_at"] = _time(decided + timedelta(days=7))
        rec["account"]["class"] = cls
        key = f"{cls.replace('_', '-')}-subject-{subject:04d}"
        # An ordinary user's key is an HMAC-SHA-256 in hex; a digest of the label stands in for one.
        rec["account"]["subject_key"] = hashlib.sha256(key.encode()).hexdigest() if ordinary else key
        posted = flagged - timedelta(hours=1)
        rec["content"]["posted_at"] = posted.strftime("%Y-%m-%d") if ordinary else _time(posted)
        self.records.append(rec)
        return rec

    def cell(
        self,
        platform: str,
        cls: str,
        rule: str,
        per_severity: dict[str, int],
        exempt_tenths: dict[str, int],
        slow: int = 1,
    ) -> list[dict[str, Any]]:
        """``per_severity[s]`` decisions (a multiple of 10), ``exempt_tenths[s]``
        tenths of them exempted; actions and times cycle through fixed lists."""
        made = []
        for severity, count in per_severity.items():
            for i in range(count):
                exempt = i % 10 < exempt_tenths[severity]
                secs = BASE_TIMES[i % 10] * slow
                made.append(self.decision(platform, cls, i % 7, rule, severity, exempt, ACTS[i % 5], secs))
        return made


EVEN = dict.fromkeys(SEVERITIES, 10)
TENTH = dict.fromkeys(SEVERITIES, 1)
HALF = dict.fromkeys(SEVERITIES, 5)
PUBLIC = ("legislator", "head_of_state", "journalist", "other_public_figure")


def planted_records() -> list[dict[str, Any]]:
    b = Builder()
    appealed: list[dict[str, Any]] = []
    # 1. Exemptions several times more often for politicians (civic/false-claims on example-social).
    for cls in PUBLIC:
        made = b.cell("example-social", cls, "civic/false-claims", EVEN, HALF if cls in PUBLIC[:2] else TENTH)
        appealed += made[:10]
    made = b.cell("example-social", "ordinary_user", "civic/false-claims", dict.fromkeys(SEVERITIES, 100), TENTH)
    appealed += made[:40]
    # 2. Slower decisions for journalists and other public figures (spam/phishing on other-video).
    for cls in PUBLIC:
        b.cell("other-video", cls, "spam/phishing", EVEN, TENTH, slow=3 if cls in PUBLIC[2:] else 1)
    b.cell("other-video", "ordinary_user", "spam/phishing", dict.fromkeys(SEVERITIES, 50), TENTH)
    # 3. Simpson's paradox (hate/slurs on third-forum): within a severity the
    # rates are equal (50% low, 10% high); politicians are mostly low severity.
    for cls in PUBLIC[:2]:
        b.cell("third-forum", cls, "hate/slurs", {"low": 40, "high": 10}, {"low": 5, "high": 1})
    b.cell("third-forum", "ordinary_user", "hate/slurs", {"low": 20, "high": 180}, {"low": 5, "high": 1})
    for i, rec in enumerate(appealed):
        b.records.append(_appeal(f"a-{i:04d}", rec, OUTCOMES[i % 10]))
    return b.records


def _appeal(record_id: str, decision: dict[str, Any], outcome: str) -> dict[str, Any]:
    rec = appeal(record_id, decision["record_id"], decision["platform"])
    decided = datetime.fromisoformat(decision["decided_at"].replace("Z", "+00:00"))
    rec.update(submitted_at=_time(decided + timedelta(days=3)), outcome=outcome)
    rec["filed_at"] = _time(decided + timedelta(days=1))
    rec["decided_at"] = _time(decided + timedelta(days=2))
    if outcome in ("upheld", "pending"):
        rec.pop("new_action", None)
    if outcome == "pending":
        rec.pop("decided_at")
    return rec


def submit(client: FlaskClient, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 500):
        items = [sign(r, KEYS[r["platform"]]) for r in records[start : start + 500]]
        r = client.post("/api/v1/records", json={"records": items})
        assert r.status_code == 201, r.json


def register(app: Flask) -> Log:
    log: Log = app.extensions["ledger"].log
    for slug, key in KEYS.items():
        log.registry.add_platform(slug, slug.replace("-", " ").title(), key.public_key)
    return log


@pytest.fixture
def planted(app: Flask, client: FlaskClient) -> list[dict[str, Any]]:
    register(app)
    records = planted_records()
    submit(client, records)
    return records


def get(client: FlaskClient, query: str = "") -> Any:
    r = client.get("/api/v1/stats/evenness" + (f"?{query}" if query else ""))
    assert r.status_code == 200, r.json
    return r


def _flags(doc: dict[str, Any]) -> set[tuple[str, str, str, str | None, str]]:
    return {(f["section"], f["metric"], f["platform"], f["rule_id"], f["group"]) for f in doc["flagged"]}


def test_exactly_the_planted_effects_are_flagged(client: FlaskClient, planted: list[dict[str, Any]]) -> None:
    doc = get(client).json["document"]
    civic = ("example-social", "civic/false-claims")
    spam = ("other-video", "spam/phishing")
    assert _flags(doc) == {
        ("comparisons", "exemption_rate", *civic, "legislator"),
        ("comparisons", "exemption_rate", *civic, "head_of_state"),
        ("comparisons", "exemption_rate", *civic, "political_any"),
        ("platform_summaries", "exemption_rate", "example-social", None, "political_any"),
        ("comparisons", "time_to_decision", *spam, "journalist"),
        ("comparisons", "time_to_decision", *spam, "other_public_figure"),
    }
    # Every flagged entry points at its comparison, which says so.
    for f in doc["flagged"]:
        c = doc[f["section"]][f["index"]]
        assert c["flagged"]
        assert c["wording"] == f["sentence"]
        assert c["primary"]["q_value"] < 0.05
    # The paradox: the crude rates differ plainly, the stratified ones not at all.
    (simpson,) = [
        c
        for c in doc["comparisons"]
        if c["platform"] == "third-forum" and c["metric"] == "exemption_rate" and c["group"] == "political_any"
    ]
    assert simpson["group_rate"]["estimate"] == pytest.approx(0.42)  # (40 + 2) / 100
    assert simpson["reference_rate"]["estimate"] == pytest.approx(0.14)  # (10 + 18) / 200
    assert simpson["fisher_exact"]["p_value"] < 1e-6
    assert simpson["odds_ratio"]["estimate"] == pytest.approx(1.0)
    assert simpson["association"]["p_value"] > 0.9
    assert not simpson["flagged"]
    assert "cannot distinguish the rates" in simpson["wording"]
    # Appeals are folded in: 40% of resolved appeals reversed everywhere, pending and modified left out.
    (reversal,) = [
        c
        for c in doc["comparisons"]
        if c["metric"] == "appeal_reversal_rate" and c["group"] == "political_any" and c["platform"] == civic[0]
    ]
    assert (reversal["group_rate"]["events"], reversal["group_rate"]["cases"]) == (6, 16)
    assert (reversal["reference_rate"]["events"], reversal["reference_rate"]["cases"]) == (12, 32)
    assert reversal["tested"]
    assert not reversal["flagged"]
    assert doc["totals"] == {"decisions": 1220, "amended": 0, "appealed": 80}


def test_wording(client: FlaskClient, planted: list[dict[str, Any]]) -> None:
    doc = get(client).json["document"]
    cp = doc["checkpoint"]
    sentences = [c["wording"] for c in doc["comparisons"] + doc["platform_summaries"]]
    assert sentences
    assert not [s for s in sentences if FORBIDDEN.search(s)]
    assert not [s for s in sentences if "no difference" in s.lower()]
    for c in doc["comparisons"] + doc["platform_summaries"]:
        if c["flagged"]:
            s = c["wording"]
            assert "95% interval" in s
            assert f"tree size {cp['tree_size']} (root hash {cp['root_hash']})" in s
            assert s.endswith("This describes recorded decisions only, and says nothing of why they differ.")
        else:
            assert "the recorded data cannot distinguish the" in c["wording"]
    (civic,) = [f for f in doc["flagged"] if f["group"] == "political_any" and f["section"] == "comparisons"]
    assert "was 50.0% (40 of 80 violations found; 95% interval" in civic["sentence"]
    assert "against 10.0% for ordinary users (40 of 400;" in civic["sentence"]
    assert "exemption rate" in civic["sentence"]


def read_entries(client: FlaskClient, size: int) -> Iterator[tuple[int, bytes]]:
    """The log's entries as a client reads them: entry bundles over HTTP."""
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        path = f"/tile/entries/{n:03d}" + (f".p/{width}" if width < TILE_WIDTH else "")
        r = client.get(path)
        assert r.status_code == 200, path
        for i, data in enumerate(parse_bundle(r.data, width)):
            yield n * TILE_WIDTH + i, data


def offline(client: FlaskClient, note: str, filters: Filters) -> bytes:
    cp = CheckpointRef.from_note(note.encode())
    return compute_document(facts_from_entries(read_entries(client, cp.size), cp.size), cp, filters).data


def test_endpoint_and_offline_recomputation_agree_byte_for_byte(
    app: Flask, client: FlaskClient, planted: list[dict[str, Any]]
) -> None:
    queries = {
        "": Filters(),
        "platform=other-video&group=journalist": Filters(platform="other-video", group="journalist"),
        "metric=exemption_rate&rule_id=hate/slurs&decided_from=2026-03-01&decided_to=2026-09-01T00:00:00Z": Filters(
            metric="exemption_rate",
            rule_id="hate/slurs",
            decided_from_ms=int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000),
            decided_to_ms=int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1000),
        ),
    }
    for query, filters in queries.items():
        r = get(client, query)
        raw = r.data
        assert raw.startswith(b'{"document":{')
        doc = r.json["document"]
        data = offline(client, doc["checkpoint"]["signed_note"], filters)
        assert raw[len(b'{"document":') :].startswith(data + b',"document_sha256":"')
        assert canonical(r.json) == raw  # the whole answer is RFC 8785
        assert r.headers["ETag"] == f'"{r.json["document_sha256"]}"'
    # A filtered document holds only what it was asked for.
    doc = get(client, "platform=other-video&group=journalist").json["document"]
    assert {c["group"] for c in doc["comparisons"]} == {"journalist"}
    assert {c["account_class"] for c in doc["cells"]} == {"journalist", "ordinary_user"}
    assert doc["platform_summaries"] == []
    assert doc["monthly"] == []


def test_pinned_tree_size_is_cached_and_never_changes(
    app: Flask, client: FlaskClient, planted: list[dict[str, Any]]
) -> None:
    latest = get(client)
    size = latest.json["document"]["checkpoint"]["tree_size"]
    assert latest.headers["Cache-Control"] == "no-cache"
    first = get(client, f"tree_size={size}")
    assert first.data == latest.data
    assert first.headers["Cache-Control"] == "public, max-age=60"  # until a digest is published
    again = client.get(f"/api/v1/stats/evenness?tree_size={size}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    b = Builder()
    b.n = 90_000
    submit(client, b.cell("other-video", "ordinary_user", "spam/phishing", EVEN, TENTH))
    assert get(client, f"tree_size={size}").data == first.data
    app.extensions["evenness_documents"].__init__()  # cold: recomputed from the index
    assert get(client, f"tree_size={size}").data == first.data
    newer = get(client)
    assert newer.json["document"]["checkpoint"]["tree_size"] > size
    assert newer.json["document"]["totals"]["decisions"] == 1220 + 40


def test_publish_stats_appends_a_verifiable_digest(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    log = register(app)
    b = Builder()
    submit(client, b.cell("example-social", "ordinary_user", "civic/false-claims", EVEN, TENTH))
    size = log.latest_size()
    res = runner.invoke(args=["ledger", "publish-stats", "--tree-size", str(size)])
    assert res.exit_code == 0, res.output
    leaf = int(re.search(r"published: log entry (\d+)", res.output).group(1))  # type: ignore[union-attr]
    assert leaf == size
    body = get(client, f"tree_size={size}")
    assert body.json["publication"] == {
        "tree_size": size,
        "method_version": 1,
        "leaf_index": leaf,
        "document_sha256": body.json["document_sha256"],
    }
    assert body.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert body.json["document_sha256"] in res.output
    data, _ = log.entry(leaf)
    entry = parse_entry(data)
    assert entry.kind == "registry"
    with log.read() as s:
        root = log.checkpoint_for(s, size).root
    assert entry.body == {
        "event": "statistics_published",
        "tree_size": size,
        "root_hash": base64.b64encode(root).decode(),
        "method_version": 1,
        "document_sha256": body.json["document_sha256"],
    }
    assert entry.signature["key_id"] == platform_key_id(log.verifier.public_key)
    verify_signature(
        log.verifier.public_key, REGISTRY_CONTEXT, canonical(entry.body), base64.b64decode(entry.signature["value"])
    )
    # The statistics of the latest tree ignore the registry entry; publishing twice is refused.
    assert get(client).json["document"]["totals"]["decisions"] == 40
    again = runner.invoke(args=["ledger", "publish-stats", "--tree-size", str(size)])
    assert again.exit_code != 0
    assert f"already published at log entry {leaf}" in again.output
    # Without --tree-size: the latest checkpoint, which now includes the first digest.
    latest = runner.invoke(args=["ledger", "publish-stats"])
    assert latest.exit_code == 0, latest.output
    assert get(client, f"tree_size={size + 1}").json["publication"]["leaf_index"] == size + 1
    # Method version 2 is published on its own, for the same tree size as version 1's.
    v2 = runner.invoke(args=["ledger", "publish-stats", "--tree-size", str(size), "--method-version", "2"])
    assert v2.exit_code == 0, v2.output
    assert "evenness statistics (method version 2)" in v2.output
    body2 = get(client, f"tree_size={size}&method_version=2")
    assert body2.json["publication"]["method_version"] == 2
    assert body2.json["publication"]["document_sha256"] == body2.json["document_sha256"]
    assert body2.json["document_sha256"] != body.json["document_sha256"]
    assert get(client, f"tree_size={size}").json["publication"]["leaf_index"] == leaf  # version 1's is its own
    twice = runner.invoke(args=["ledger", "publish-stats", "--tree-size", str(size), "--method-version", "2"])
    assert "(method version 2) were already published" in twice.output


@pytest.mark.parametrize(
    "query, path",
    [
        ("group=politicians", "group"),
        ("group=ordinary_user", "group"),
        ("metric=kindness", "metric"),
        ("platform=Example", "platform"),
        ("rule_id=a%20b", "rule_id"),
        ("tree_size=-1", "tree_size"),
        ("tree_size=01", "tree_size"),
        ("decided_from=yesterday", "decided_from"),
        ("decided_from=2026-05-01&decided_to=2026-04-01", "decided_to"),
        ("colour=red", "colour"),
    ],
)
def test_bad_filters_are_400(client: FlaskClient, query: str, path: str) -> None:
    r = client.get("/api/v1/stats/evenness?" + query)
    assert r.status_code == 400, r.json
    assert r.mimetype == "application/problem+json"
    assert [e["path"] for e in r.json["errors"]] == [path]


def test_unknown_tree_sizes_are_404(app: Flask, client: FlaskClient) -> None:
    register(app)  # three entries, each under its own checkpoint
    assert client.get("/api/v1/stats/evenness?tree_size=4").status_code == 404
    assert get(client, "tree_size=2").json["document"]["totals"]["decisions"] == 0
