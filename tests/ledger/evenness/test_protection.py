"""Method version 2's protection section, on records made from the documented example.

One planted disparity (threats aimed at election workers decided slower,
within every severity level, on one platform) must be the only flag; a
Simpson's-paradox decoy on another platform (election workers' threats are
mostly of a severity that every platform decides slower, and within each
severity they wait no longer) must not be flagged, although its pooled
medians differ by as much. Also: the van Elteren test against hand
computation, amendments, the wording rules, and version 1 untouched.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from keys.note import Signer
from ledger.errors import InvalidInput
from ledger.evenness.document import CheckpointRef, compute_document
from ledger.evenness.facts import FACT_COLUMNS, Filters
from ledger.evenness.protection import PROTECTION_COLUMNS, protection_facts_from_entries, protection_section
from ledger.records.entries import canonical, entry_bytes, format_time
from ledger.records.index_rows import index_row
from ledger.stats import mann_whitney
from ledger.stats.ranks import van_elteren
from ledger.tlog.checkpoint import Checkpoint

SIGNER = Signer.from_seed("example.org/log", bytes(range(32)))
EXAMPLE = json.loads(
    (Path(__file__).resolve().parents[3] / "docs/examples/decision-threat-election-worker.json").read_text()
)
HOUR = 3_600_000
T0 = 1_790_000_000_000  # 2026-09-21


def checkpoint(size: int) -> CheckpointRef:
    return CheckpointRef.from_note(Checkpoint(SIGNER.name, size, bytes(32)).sign(SIGNER))


def threat(
    n: int, platform: str, target: str, severity: str, hours: float, reporter: str = "ordinary_user"
) -> dict[str, Any]:
    rec = copy.deepcopy(EXAMPLE)
    flagged = T0 + n * HOUR
    rec.update(platform=platform, record_id=f"dec-{n}", severity=severity, reporter_class=reporter)
    rec["target"] = {"class": target}
    rec["account"]["subject_key"] = f"{n % 23:064x}"
    rec["flagged_at"] = format_time(flagged)
    rec["decided_at"] = format_time(flagged + int(hours * HOUR))
    rec["applied_at"] = rec["decided_at"]
    rec["content"]["posted_at"] = rec["flagged_at"][:10]
    return rec


def planted() -> list[dict[str, Any]]:
    """slow-video: election workers' threats wait about 30 hours against 9, at every severity.
    decoy-social: critical threats wait 30 hours for everyone, others 8; election workers'
    threats are mostly critical, ordinary users' mostly high. Times are spread evenly over
    0.6 to 1.4 times the centre, so groups with the same centre have the same distribution."""
    out: list[dict[str, Any]] = []

    def add(platform: str, target: str, severity: str, centre: float, count: int) -> None:
        for i in range(count):
            out.append(threat(len(out), platform, target, severity, (0.6 + 0.8 * (i + 0.5) / count) * centre))

    for severity in ("high", "critical"):
        add("slow-video", "election_worker", severity, 30, 40)
        add("slow-video", "ordinary_user", severity, 9, 60)
        add("slow-video", "candidate", severity, 9, 40)
    add("decoy-social", "election_worker", "critical", 30, 90)
    add("decoy-social", "election_worker", "high", 8, 10)
    add("decoy-social", "ordinary_user", "critical", 30, 10)
    add("decoy-social", "ordinary_user", "high", 8, 90)
    return out


def facts_of(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(index_row(i, 0, r)[c] for c in PROTECTION_COLUMNS) for i, r in enumerate(records)]


def section(records: list[dict[str, Any]], filters: Filters | None = None) -> dict[str, Any]:
    cp = checkpoint(len(records)).as_json()
    return protection_section(facts_of(records), filters or Filters(), cp)


def test_finds_the_planted_disparity_and_nothing_else() -> None:
    s = section(planted())
    assert [(f["section"], f["metric"], f["platform"], f["group"]) for f in s["flagged"]] == [
        ("target", "time_to_decision", "slow-video", "election_worker")
    ]
    sentence = s["flagged"][0]["sentence"]
    assert sentence.startswith("On slow-video, under rule violent-speech/threats, threats aimed at election workers ")
    assert "were decided in a median of " in sentence
    assert "for threats aimed at ordinary users" in sentence
    assert "van Elteren p = " in sentence
    assert "says nothing of why" in sentence


def test_the_decoy_is_a_simpsons_paradox_and_is_not_flagged() -> None:
    """The decoy's pooled medians differ as much as the planted ones, and a pooled
    Mann-Whitney would flag it: only the stratified test sees it is severity alone."""
    s = section(planted())
    decoy = next(
        c
        for c in s["comparisons"]
        if c["platform"] == "decoy-social" and c["metric"] == "time_to_decision" and c["group"] == "election_worker"
    )
    g, r = decoy["group_time"]["median"]["estimate"], decoy["reference_time"]["median"]["estimate"]
    assert g > 2.5 * r  # pooled: election workers' threats look three times slower
    for stratum in decoy["strata"]:  # within each severity, no slower
        m1, m2 = stratum["group"]["median"]["estimate"], stratum["reference"]["median"]["estimate"]
        assert 0.7 < m1 / m2 < 1.4
    assert not decoy["flagged"]
    assert decoy["primary"]["q_value"] >= 0.05
    assert abs(decoy["van_elteren"]["cles"] - 0.5) < 0.06
    assert "cannot distinguish the times to decision of threats aimed at election workers" in decoy["wording"]


def test_pooled_test_would_have_flagged_the_decoy() -> None:
    recs = [r for r in planted() if r["platform"] == "decoy-social"]
    facts = facts_of(recs)
    times: dict[str, list[int]] = {"election_worker": [], "ordinary_user": []}
    for f, rec in zip(facts, recs, strict=True):
        row = dict(zip(PROTECTION_COLUMNS, f, strict=True))
        times[rec["target"]["class"]].append((row["decided_at_ms"] - row["flagged_at_ms"]) // 1000)
    mw = mann_whitney(times["election_worker"], times["ordinary_user"])
    assert mw.test.p_value is not None
    assert mw.test.p_value < 1e-6
    assert mw.cles > 0.7


def test_reporter_comparison() -> None:
    """Reports by government bodies decided within hours, ordinary users' in a day."""
    rng = random.Random(3)
    recs = [
        threat(i, "p", "candidate", "high", rng.uniform(1, 3) if i % 2 else rng.uniform(20, 28), reporter)
        for i, reporter in enumerate(["government_body", "ordinary_user"] * 40)
    ]
    s = section(recs)
    [flag] = s["flagged"]
    assert (flag["section"], flag["group"]) == ("reporter", "government_body")
    assert "threats reported by government bodies were decided in a median of " in flag["sentence"]


def test_amendment_replaces_the_target() -> None:
    recs = [threat(i, "p", "election_worker", "high", 5) for i in range(3)]
    fix = {
        "type": "amendment",
        "schema_version": 1,
        "platform": "p",
        "record_id": "amd-1",
        "submitted_at": recs[0]["submitted_at"],
        "refs": {"record_id": "dec-0"},
        "reason": "data_error",
        "corrected": {
            k: v
            for k, v in recs[0].items()
            if k not in ("type", "schema_version", "platform", "record_id", "submitted_at")
        }
        | {"target": {"class": "group"}},
    }
    s = section(recs + [fix])
    counts = {c["target_class"]: c["decisions"] for c in s["target_cells"]}
    assert counts == {"election_worker": 2, "group": 1}


def test_filters_narrow_the_section() -> None:
    s = section(planted(), Filters(platform="decoy-social"))
    assert {c["platform"] for c in s["comparisons"]} == {"decoy-social"}
    assert s["flagged"] == []


def test_van_elteren_by_hand() -> None:
    """Two strata of 2 and 2: U1 = 4 and 0.5, weights 1/5; E = 2/5 + 2/5; with ties in stratum 2."""
    ve = van_elteren([([3, 4], [1, 2]), ([1, 2], [2, 3])])
    t = (4 + 0.5) / 5
    var = (4 / 12 * 5) / 25 + (4 / 12 * (5 - 6 / 12)) / 25
    assert ve.test.statistic == pytest.approx(t)
    assert ve.z == pytest.approx(abs(t - 0.8) / var**0.5)
    assert ve.cles == pytest.approx(4.5 / 8)
    # One stratum: Mann-Whitney's z without its continuity correction.
    xs, ys = [5, 7, 9, 11, 13], [1, 2, 6, 8]
    one = van_elteren([(xs, ys)])
    mw = mann_whitney(xs, ys)
    assert mw.z is not None
    assert one.z is not None
    assert one.z == pytest.approx(mw.z + 0.5 / (20 / 12 * 10) ** 0.5)
    with pytest.raises(InvalidInput):
        van_elteren([([1], [])])


def test_version_2_is_version_1_plus_the_section() -> None:
    recs = planted()
    entries = [
        (i, entry_bytes(0, "record", canonical(r), {"key_id": "0" * 16, "alg": "ed25519", "value": "AA=="}))
        for i, r in enumerate(recs)
    ]
    from ledger.evenness.facts import facts_from_entries

    cp = checkpoint(len(recs))
    v1 = compute_document(facts_from_entries(entries, len(recs)), cp)
    v2 = compute_document(
        facts_from_entries(entries, len(recs)),
        cp,
        method_version=2,
        protection=protection_facts_from_entries(entries, len(recs)),
    )
    assert v1.document["method"]["version"] == 1
    assert "protection" not in v1.document
    assert v2.document["method"]["version"] == 2
    rest = {k: v for k, v in v2.document.items() if k != "protection"}
    rest["method"] = rest["method"] | {"version": 1}
    assert rest == v1.document
    assert len(v2.document["protection"]["flagged"]) == 1
    with pytest.raises(InvalidInput):
        compute_document([], cp, method_version=3)
    with pytest.raises(InvalidInput):
        compute_document([], cp, method_version=2)
    assert len(FACT_COLUMNS) + 3 == len(PROTECTION_COLUMNS)


def test_wording_rules() -> None:
    """No sentence says bias, favouritism or proves; an unflagged one never says there is no difference."""
    s = section(planted())
    for c in s["comparisons"]:
        text = c["wording"].lower()
        for word in ("bias", "favour", "favor", "prove", "no difference", "discriminat"):
            assert word not in text, text
        if not c["flagged"]:
            assert "cannot distinguish" in text
