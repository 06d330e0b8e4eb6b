"""The evenness statistics on the demo data find the demo's planted
disparities (``demo/__init__.py``) and nothing else.

The document is computed from the demo's signed items laid out as log
entries, the same pure computation the API serves (tests/ledger/test_evenness.py
holds the endpoint byte for byte equal to it) and the dashboard shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from demo.cast import CHIRP_CIVIC, FACESPACE_HATE
from demo.generate import generate
from keys.note import Signer
from ledger.evenness.document import CheckpointRef, compute_document
from ledger.evenness.facts import facts_from_entries
from ledger.records.entries import entry_bytes
from ledger.records.vocab import POLITICAL_CLASSES
from ledger.tlog.checkpoint import Checkpoint

SIGNER = Signer.from_seed("demo.example/log", bytes(range(32)))
#: Rules of demo-tubeview with at least 20 journalist decisions at the default
#: seed and size, as demo/__init__.py lists them (the per-rule time test needs 20).
SLOW_RULES = {"copyright/infringement", "violent-content/graphic-violence", "misinformation/medical"}
POLITICAL = set(POLITICAL_CLASSES) | {"political_any"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    demo = generate("2026", 3000, datetime(2026, 12, 1, tzinfo=UTC))
    t0 = 1_780_000_000_000
    entries = [(i, entry_bytes(t0 + i, "record", it.canonical_record, it.signature)) for i, it in enumerate(demo.items)]
    ref = CheckpointRef.from_note(Checkpoint(SIGNER.name, len(entries), bytes(32)).sign(SIGNER))
    return compute_document(facts_from_entries(entries, len(entries)), ref).document


def _planted(f: dict[str, Any]) -> bool:
    """Whether a flagged comparison is one of the plants' effects."""
    platform, rule, group, metric = f["platform"], f["rule_id"], f["group"], f["metric"]
    if platform == "demo-chirp" and group in POLITICAL and rule in (CHIRP_CIVIC, None):
        # Plant 1: exemptions, and the adverse actions they prevent (same plant).
        return metric in ("exemption_rate", "adverse_action_rate", "action_distribution")
    return platform == "demo-tubeview" and group == "journalist" and metric == "time_to_decision"  # plant 2


def _find(doc: dict[str, Any], section: str, **key: Any) -> dict[str, Any]:
    (hit,) = [c for c in doc[section] if all(c[k] == v for k, v in key.items())]
    return hit


def test_every_flag_is_a_planted_effect(document: dict[str, Any]) -> None:
    flagged = document["flagged"]
    assert flagged
    assert [f for f in flagged if not _planted(f)] == []


def test_each_plant_is_found(document: dict[str, Any]) -> None:
    keys = {(f["platform"], f["rule_id"], f["group"], f["metric"]) for f in document["flagged"]}
    # Plant 1, in its cell and in the platform summary.
    assert ("demo-chirp", CHIRP_CIVIC, "political_any", "exemption_rate") in keys
    assert ("demo-chirp", None, "political_any", "exemption_rate") in keys
    # Plant 2: every rule with enough journalist decisions to test.
    slow = {rule for platform, rule, group, metric in keys if metric == "time_to_decision"}
    assert slow == SLOW_RULES


def test_simpsons_paradox_is_not_flagged(document: dict[str, Any]) -> None:
    c = _find(
        document,
        "comparisons",
        platform="demo-facespace",
        rule_id=FACESPACE_HATE,
        group="political_any",
        metric="adverse_action_rate",
    )
    assert c["fisher_exact"]["p_value"] < 0.01  # the crude rates differ...
    assert c["association"]["p_value"] > 0.5  # ...within each severity they do not
    assert not c["flagged"]
    assert "cannot distinguish" in c["wording"]


def test_flagged_sentences_state_denominators_and_checkpoint(document: dict[str, Any]) -> None:
    for f in document["flagged"]:
        s = f["sentence"]
        for words in (" of ", "95% interval", "tree size 3000", "says nothing of why"):
            assert words in s, s


# Method version 2: the protection plant (demo/protection.py) ------------------------


@pytest.fixture(scope="module")
def protection_document() -> dict[str, Any]:
    from ledger.evenness.protection import protection_facts_from_entries

    demo = generate("2026", 3000, datetime(2026, 12, 1, tzinfo=UTC))
    t0 = 1_780_000_000_000
    entries = [(i, entry_bytes(t0 + i, "record", it.canonical_record, it.signature)) for i, it in enumerate(demo.items)]
    ref = CheckpointRef.from_note(Checkpoint(SIGNER.name, len(entries), bytes(32)).sign(SIGNER))
    facts = facts_from_entries(entries, len(entries))
    protection = protection_facts_from_entries(entries, len(entries))
    return compute_document(facts, ref, method_version=2, protection=protection).document


def test_the_protection_plant_is_the_only_protection_flag(protection_document: dict[str, Any]) -> None:
    p = protection_document["protection"]
    assert [(f["section"], f["platform"], f["rule_id"], f["group"], f["metric"]) for f in p["flagged"]] == [
        ("target", "demo-chirp", "violent-speech/threats", "election_worker", "time_to_decision")
    ]
    sentence = p["flagged"][0]["sentence"]
    assert "threats aimed at election workers were decided in a median of 8.7 hours" in sentence
    assert "against 3.7 hours for threats aimed at ordinary users" in sentence


def test_the_protection_plant_holds_within_each_severity() -> None:
    """Not a Simpson's paradox: at every severity, threats aimed at election workers wait
    longer than those aimed at ordinary users, and the two have a like severity mix; the
    flagged comparison is the one stratified by severity (van Elteren)."""
    from statistics import median

    from ledger.records.entries import parse_json

    demo = generate("2026", 3000, datetime(2026, 12, 1, tzinfo=UTC))
    times: dict[tuple[str, str], list[float]] = {}
    for it in demo.items:
        r = parse_json(it.canonical_record)
        if r["type"] != "decision" or r["platform"] != "demo-chirp" or r["rule"]["id"] != "violent-speech/threats":
            continue
        hours = (datetime.fromisoformat(r["decided_at"]) - datetime.fromisoformat(r["flagged_at"])).total_seconds()
        times.setdefault((r["target"]["class"], r["severity"]), []).append(hours / 3600)
    compared = 0
    for severity in ("low", "medium", "high", "critical"):
        ew, ou = times.get(("election_worker", severity), []), times.get(("ordinary_user", severity), [])
        if min(len(ew), len(ou)) >= 3:
            compared += 1
            assert median(ew) > 1.5 * median(ou), severity
    assert compared >= 3
    n_ew = {s: len(times.get(("election_worker", s), [])) for s in ("low", "medium", "high", "critical")}
    n_ou = {s: len(times.get(("ordinary_user", s), [])) for s in ("low", "medium", "high", "critical")}
    for s in n_ew:
        assert abs(n_ew[s] / sum(n_ew.values()) - n_ou[s] / sum(n_ou.values())) < 0.15, s


def test_version_1_is_unchanged_by_the_protection_fields(
    document: dict[str, Any], protection_document: dict[str, Any]
) -> None:
    rest = {k: v for k, v in protection_document.items() if k not in ("protection", "coverage")}
    assert rest == document | {"method": document["method"] | {"version": 2}}
