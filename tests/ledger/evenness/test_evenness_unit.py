"""The pure core of the evenness statistics, on small hand-made facts.

What a record counts as (amendments, appeals, filters), the minimum sizes,
the JSON mapping of infinities, the checkpoint reference, the fast
Mann-Whitney against ledger.stats', and the wording rules.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

import pytest

from keys.note import Signer
from ledger.errors import InvalidInput
from ledger.evenness.compare import Times, _rate_large, mann_whitney_sorted
from ledger.evenness.document import written
from ledger.evenness.facts import tally
from ledger.evenness.words import (
    ACTIONS_FLAGGED,
    CHECKPOINT,
    DISCLAIMER,
    RATE_FLAGGED,
    REVERSAL_FLAGGED,
    TIME_FLAGGED,
    UNFLAGGED,
    p_text,
    ratio,
)
from ledger.evenness_store import FACT_COLUMNS, CheckpointRef, Filters, compute_document, facts_from_entries
from ledger.records.entries import canonical, entry_bytes
from ledger.stats import mann_whitney
from ledger.tlog.checkpoint import Checkpoint

SIGNER = Signer.from_seed("example.org/log", bytes(range(32)))
DAY = 86_400_000
T0 = 1_772_323_200_000  # 2026-03-01T00:00:00Z


def checkpoint(size: int = 100) -> CheckpointRef:
    return CheckpointRef.from_note(Checkpoint(SIGNER.name, size, bytes(32)).sign(SIGNER))


def fact(index: int, **kw: Any) -> tuple[Any, ...]:
    row: dict[str, Any] = dict.fromkeys(FACT_COLUMNS)
    row.update(
        leaf_index=index,
        platform="p",
        type="decision",
        record_id=f"d{index}",
        rule_id="r",
        account_class="ordinary_user",
        subject_key=f"s{index % 7}",
        severity="low",
        violation_found=True,
        exemption_applied=False,
        action="label",
        flagged_at_ms=T0,
        decided_at_ms=T0 + 60_000,
    )
    row.update(kw)
    return tuple(row[c] for c in FACT_COLUMNS)


def appeal(index: int, ref: str, outcome: str) -> tuple[Any, ...]:
    return fact(
        index,
        type="appeal",
        ref_record_id=ref,
        rule_id=None,
        account_class=None,
        subject_key=None,
        severity=None,
        violation_found=None,
        exemption_applied=None,
        action=None,
        flagged_at_ms=None,
        appeal_outcome=outcome,
    )


def test_the_latest_amendment_replaces_the_decision_and_the_latest_appeal_counts() -> None:
    facts = [
        fact(0, account_class="legislator", rule_id="a"),
        fact(1, type="amendment", record_id="m1", ref_record_id="d0", account_class="legislator", rule_id="b",
             exemption_applied=True),
        appeal(2, "d0", "pending"),
        fact(3, type="amendment", record_id="m2", ref_record_id="d0", account_class="legislator", rule_id="b",
             severity="high", decided_at_ms=T0 + 40 * DAY, flagged_at_ms=T0 + 40 * DAY - 5_000),
        appeal(4, "d0", "reversed"),
        fact(5),
        appeal(6, "d5", "modified"),
    ]  # fmt: skip
    counted = tally(facts, Filters())
    assert set(counted.cells) == {("p", "b", "legislator", "high"), ("p", "r", "ordinary_user", "low")}
    amended = counted.cells[("p", "b", "legislator", "high")]
    assert (amended.decisions, amended.violations, amended.exemptions) == (1, 1, 0)
    assert (amended.reversed, amended.pending, amended.times) == (1, 0, [5])
    assert counted.cells[("p", "r", "ordinary_user", "low")].modified == 1
    assert (counted.decisions, counted.amended, counted.appealed) == (2, 1, 2)
    # Filters select decisions as amended: by the new rule, at the new time.
    assert tally(facts, Filters(rule_id="a")).decisions == 0
    assert tally(facts, Filters(rule_id="b")).decisions == 1
    assert tally(facts, Filters(decided_from_ms=T0 + 30 * DAY)).decisions == 1
    assert tally(facts, Filters(decided_to_ms=T0 + 30 * DAY, platform="p")).decisions == 1


def test_time_to_decision_is_whole_seconds_rounded_down() -> None:
    facts = [fact(0, flagged_at_ms=T0, decided_at_ms=T0 + 1_999), fact(1, flagged_at_ms=T0, decided_at_ms=T0)]
    assert tally(facts, Filters()).cells[("p", "r", "ordinary_user", "low")].times == [1, 0]


def test_the_order_of_decisions_does_not_matter() -> None:
    rng = random.Random(5)
    classes = ["ordinary_user", "legislator", "journalist"]
    facts = [
        fact(
            i,
            account_class=rng.choice(classes),
            severity=rng.choice(["low", "high"]),
            exemption_applied=rng.random() < 0.3,
            decided_at_ms=T0 + rng.randrange(1, 90 * DAY),
            subject_key=f"s{rng.randrange(40)}",
        )
        for i in range(600)
    ]
    first = compute_document(facts, checkpoint()).data
    rng.shuffle(facts)
    assert compute_document(facts, checkpoint()).data == first


def _cell(doc: dict[str, Any], cls: str) -> dict[str, Any]:
    (cell,) = [c for c in doc["cells"] if c["account_class"] == cls]
    return cell


def test_minimum_sizes_and_warnings() -> None:
    facts = [fact(i, account_class="legislator", subject_key="only-one") for i in range(9)]
    facts += [fact(100 + i, account_class="journalist", exemption_applied=i < 3) for i in range(12)]
    facts += [fact(200 + i) for i in range(40)]
    doc = compute_document(facts, checkpoint()).document
    legislator = _cell(doc, "legislator")
    assert legislator["exemption_rate"] == {
        "events": 0, "cases": 9, "size": "count_only", "estimate": None, "lower": None, "upper": None
    }  # fmt: skip
    assert legislator["time_to_decision"]["quantiles"] is None
    assert legislator["warnings"] == ["only 1 distinct accounts; a few accounts can drive this cell"]
    journalist = _cell(doc, "journalist")
    assert journalist["exemption_rate"]["size"] == "low"
    assert journalist["exemption_rate"]["estimate"] == 0.25
    assert _cell(doc, "ordinary_user")["exemption_rate"]["size"] == "ok"
    by = {(c["group"], c["metric"]): c for c in doc["comparisons"]}
    assert by[("legislator", "exemption_rate")]["not_tested"] == "fewer than 10 violations found in a group"
    assert by[("journalist", "exemption_rate")]["tested"]
    assert by[("journalist", "time_to_decision")]["not_tested"] == "fewer than 20 decisions in a group"
    assert by[("legislator", "exemption_rate")]["warnings"] == [
        "legislator: only 1 distinct accounts; a few accounts can drive this comparison"
    ]
    assert by[("journalist", "appeal_reversal_rate")]["not_tested"] == "fewer than 10 resolved appeals in a group"


def test_infinite_odds_ratios_are_strings_and_judged_by_the_risk_difference() -> None:
    # Politicians exempted 10 of 20 times, ordinary users never: OR = inf.
    facts = [fact(i, account_class="legislator", exemption_applied=i < 10, subject_key=f"l{i}") for i in range(20)]
    facts += [fact(100 + i) for i in range(200)]
    doc = compute_document(facts, checkpoint()).document
    (c,) = [x for x in doc["comparisons"] if x["group"] == "legislator" and x["metric"] == "exemption_rate"]
    assert c["odds_ratio"]["estimate"] == "Infinity"
    assert c["odds_ratio"]["upper"] == "Infinity"
    assert c["effect"]["practically_large"] is True
    assert c["flagged"]
    assert "odds ratio is unbounded" in c["wording"]
    assert _rate_large("exemption_rate", math.inf, 0.04) is False
    assert _rate_large("exemption_rate", 0.0, -0.05) is True
    assert _rate_large("exemption_rate", 1.49, 0.3) is False
    assert _rate_large("exemption_rate", 0.66, 0.0) is True
    assert _rate_large("exemption_rate", None, 0.3) is None
    assert _rate_large("appeal_reversal_rate", 9.0, 0.049) is False


def test_untested_comparisons_name_no_test() -> None:
    # Enough cases to test, but nothing to test on: no one exempted, every
    # action a label (every stratum has a zero margin; one column of actions).
    facts = [fact(i, account_class="legislator", subject_key=f"l{i}") for i in range(20)]
    facts += [fact(100 + i) for i in range(40)]
    doc = compute_document(facts, checkpoint()).document
    by = {c["metric"]: c for c in doc["comparisons"] if c["group"] == "legislator"}
    exemption, actions = by["exemption_rate"], by["action_distribution"]
    assert exemption["primary"] == {"test": None, "p_value": None, "q_value": None}
    assert exemption["association"]["method"] == "cmh_chi2"  # what was tried, and why it could not be
    assert exemption["not_tested"] == "no stratum has both groups and both outcomes"
    assert exemption["association"]["notes"] == [exemption["not_tested"]]
    assert "not tested, no stratum has both groups and both outcomes" in exemption["wording"]
    assert actions["primary"] == {"test": None, "p_value": None, "q_value": None}
    assert actions["pearson_chi2"]["method"] == "pearson_chi2"
    assert actions["not_tested"] == "fewer than two columns have counts"
    assert by["time_to_decision"]["primary"]["test"] == "mann_whitney"  # all tied: tested, p = 1
    assert by["time_to_decision"]["primary"]["p_value"] == 1
    for c in doc["comparisons"] + doc["platform_summaries"]:
        assert (c["primary"]["test"] is None) == (c["primary"]["p_value"] is None) == (not c["tested"]), c
    assert doc["multiple_comparisons"]["tests"] == 2  # times, here and on the platform: nothing else


def test_written_infinities_and_nan() -> None:
    # The rest of the numeric contract: tests/ledger/evenness/test_evenness_numbers.py.
    assert written({"a": [math.inf, -math.inf, 1.5, None, (2, "x")]}) == {
        "a": ["Infinity", "-Infinity", 1.5, None, [2, "x"]]
    }
    with pytest.raises(AssertionError):
        written([math.nan])


def test_checkpoint_reference_keeps_only_the_logs_signature() -> None:
    note = Checkpoint(SIGNER.name, 5, bytes(range(32))).sign(SIGNER)
    witness = Signer.from_seed("witness.example/w1", bytes(32))
    cosigned = note + f"— {witness.name} AAAAAAAA\n".encode()
    ref = CheckpointRef.from_note(cosigned)
    assert ref.note == note
    assert (ref.origin, ref.size, ref.root) == (SIGNER.name, 5, bytes(range(32)))
    with pytest.raises(InvalidInput, match="no signature of its origin"):
        CheckpointRef.from_note(note.split(b"\n\n")[0] + b"\n\n" + f"— {witness.name} AAAAAAAA\n".encode())


def test_facts_from_entries() -> None:
    from tests.recordkit import decision

    rec = decision("d-1")
    record = entry_bytes(T0, "record", canonical(rec), {"key_id": "k", "alg": "ed25519", "value": "v"})
    registry = entry_bytes(T0, "registry", canonical({"event": "x"}), {"key_id": "k", "alg": "ed25519", "value": "v"})
    facts = list(facts_from_entries([(0, registry), (1, record), (2, record)], 2))
    assert len(facts) == 1
    assert dict(zip(FACT_COLUMNS, facts[0], strict=True))["flagged_at_ms"] == 1776233560000  # 2026-04-15T06:12:40Z
    with pytest.raises(InvalidInput, match="increasing index order"):
        list(facts_from_entries([(1, record), (0, registry)], 5))


@pytest.mark.parametrize(
    "kwargs, path",
    [
        ({"group": "ordinary_user"}, "group"),
        ({"metric": "x"}, "metric"),
        ({"platform": "A"}, "platform"),
        ({"rule_id": "a b"}, "rule_id"),
        ({"decided_from_ms": 5, "decided_to_ms": 5}, "decided_to"),
    ],
)
def test_filters_check_themselves(kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as e:
        Filters(**kwargs)
    assert [x["path"] for x in e.value.errors] == [path]


def test_fast_mann_whitney_is_exactly_ledger_stats() -> None:
    rng = random.Random(11)
    for _ in range(300):
        n1, n2 = rng.randrange(1, 40), rng.randrange(2, 60)
        spread = rng.choice([1, 3, 10, 1000])
        x = [rng.randrange(spread) for _ in range(n1)]
        y = [rng.randrange(spread) for _ in range(n2)]
        assert mann_whitney_sorted(Times.of(x), Times.of(y)) == mann_whitney(x, y)
    tied = [7] * 25
    assert mann_whitney_sorted(Times.of(tied), Times.of(tied)) == mann_whitney(tied, tied)


def test_wording_templates_never_overstate() -> None:
    forbidden = ("bias", "favouritism", "favoritism", "prove", "no difference")
    for template in (RATE_FLAGGED, REVERSAL_FLAGGED, TIME_FLAGGED, ACTIONS_FLAGGED, UNFLAGGED, CHECKPOINT, DISCLAIMER):
        assert not [w for w in forbidden if w in template.lower()]
    for template in (RATE_FLAGGED, REVERSAL_FLAGGED, TIME_FLAGGED, ACTIONS_FLAGGED):
        assert "{checkpoint} {disclaimer}" in template
        assert "95% interval" in template
    assert "cannot distinguish" in UNFLAGGED
    assert (p_text(0.0), p_text(3.2e-7), p_text(0.04321), p_text(None)) == (
        "below 1e-300", "3.2e-07", "0.043", "not computed"
    )  # fmt: skip
    assert (ratio(math.inf), ratio(1.23456)) == ("unbounded", "1.23")


def test_flagged_actions_and_reversals_are_worded() -> None:
    acts = ["remove_content", "label", "geo_block", "reduce_reach"]
    facts = [fact(i, account_class="legislator", action="remove_content", subject_key=f"l{i}") for i in range(60)]
    facts += [fact(100 + i, action=acts[i % 4]) for i in range(240)]
    facts += [appeal(1000 + i, f"d{i}", "reversed" if i < 40 else "upheld") for i in range(60)]
    facts += [appeal(2000 + i, f"d{100 + i}", "reversed" if i < 24 else "upheld") for i in range(240)]
    doc = compute_document(facts, checkpoint(3000)).document
    flagged = {(f["metric"], f["group"]): f["sentence"] for f in doc["flagged"]}
    actions = flagged[("action_distribution", "legislator")]
    assert "(60 violations found) than for ordinary users (240): Cramér's V = " in actions
    assert "The largest gap is in remove content: 100.0% for legislators (60 of 60; 95% interval" in actions
    assert "against 25.0% for ordinary users (60 of 240; 95% interval" in actions
    reversal = flagged[("appeal_reversal_rate", "legislator")]
    assert "the recorded share reversed for legislators was 66.7% (40 of 60; 95% interval" in reversal
    assert "against 10.0% for ordinary users (24 of 240; 95% interval" in reversal
    assert "a difference of +56.7 percentage points (95% interval" in reversal
    for sentence in flagged.values():
        assert not FORBIDDEN.search(sentence)
        assert sentence.endswith(DISCLAIMER)
        assert "at tree size 3000 (root hash AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=)" in sentence


FORBIDDEN = re.compile(r"bias|favou?rit|prove|no difference", re.IGNORECASE)


def test_documents_are_computed_one_at_a_time() -> None:
    import threading

    from api.stats import Documents
    from ledger.errors import RateLimited

    docs = Documents(entries=2, wait=1.0)
    started, release, calls = threading.Event(), threading.Event(), []

    def slow() -> Any:
        calls.append("slow")
        started.set()
        release.wait(5)
        return compute_document([fact(0)], checkpoint())

    results: list[tuple[bytes, str]] = []
    first = threading.Thread(target=lambda: results.append(docs.get_or_compute(("a",), slow)))
    first.start()
    started.wait(5)
    with pytest.raises(RateLimited) as e:
        docs.get_or_compute(("b",), slow)
    assert e.value.retry_after == 5
    waiter = threading.Thread(target=lambda: results.append(docs.get_or_compute(("a",), slow)))
    waiter.start()
    release.set()
    first.join(5)
    waiter.join(5)
    assert calls == ["slow"]  # the waiter found the first request's document
    assert results[0] == results[1] == docs.get(("a",))
    for key in ("b", "c"):
        docs.get_or_compute((key,), lambda: compute_document([], checkpoint()))
    assert docs.get(("a",)) is None  # least recently used, beyond two entries
