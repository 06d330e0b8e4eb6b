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
