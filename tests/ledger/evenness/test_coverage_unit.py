"""Coverage arithmetic, checked against enumeration of every possible set of missing decisions (issue 16)."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations_with_replacement, product

import pytest

from ledger.errors import InvalidInput
from ledger.evenness.coverage import compare, could_reverse, in_force, logged_counts, rate_bounds, whole_months
from ledger.records.coverage import Statement, build_statement, counts_of

# A missing decision is one of: a case with the event (a violation found and
# exempted), a case without it (a violation, not exempted), or no case at all
# (no violation found, so outside the rate's denominator).
KINDS = ("event", "case", "none")


def _rates(k: int, n: int, missing: int) -> set[Fraction]:
    """Every value the rate can take, whatever the ``missing`` decisions are."""
    out = set()
    for kinds in combinations_with_replacement(KINDS, missing):
        events = k + kinds.count("event")
        cases = n + kinds.count("event") + kinds.count("case")
        if cases:
            out.add(Fraction(events, cases))
    return out


SMALL = [(k, n, m) for n in range(0, 6) for k in range(0, n + 1) for m in range(0, 5)]


@pytest.mark.parametrize(("k", "n", "missing"), SMALL)
def test_bounds_are_exactly_the_extremes_of_every_completion(k: int, n: int, missing: int) -> None:
    rates = _rates(k, n, missing)
    bounds = rate_bounds(k, n, missing)
    if not rates:
        assert bounds is None
        return
    assert bounds == (min(rates), max(rates))
    # The form: k/N .. (k + N - n)/N with N = n + missing.
    big_n = n + missing
    assert bounds == (Fraction(k, big_n), Fraction(k + big_n - n, big_n))
    if missing == 0:
        assert bounds == (Fraction(k, n), Fraction(k, n))


def test_bounds_refuse_impossible_counts() -> None:
    with pytest.raises(AssertionError):
        rate_bounds(3, 2, 0)
    with pytest.raises(AssertionError):
        rate_bounds(0, 2, -1)


CASES = [
    (kg, ng, mg, kr, nr, mr)
    for ng in (1, 3)
    for kg in range(ng + 1)
    for mg in (0, 1, 2)
    for nr in (2, 3)
    for kr in range(nr + 1)
    for mr in (0, 2)
]


@pytest.mark.parametrize(("kg", "ng", "mg", "kr", "nr", "mr"), CASES)
def test_reversal_matches_enumeration(kg: int, ng: int, mg: int, kr: int, nr: int, mr: int) -> None:
    g, r = Fraction(kg, ng), Fraction(kr, nr)
    pairs = list(product(_rates(kg, ng, mg), _rates(kr, nr, mr)))
    if g > r:
        brute = any(x <= y for x, y in pairs)
    elif g < r:
        brute = any(x >= y for x, y in pairs)
    else:
        brute = any(x != y for x, y in pairs)
    gb, rb = rate_bounds(kg, ng, mg), rate_bounds(kr, nr, mr)
    assert gb is not None
    assert rb is not None
    assert could_reverse(gb, rb, g, r) == brute


def _statement(record_id: str, leaf: int, counts: dict, **kw: object) -> Statement:
    fields = {"platform": "p", "period": "2026-11", "rule_id": "r", "criterion": "listed_classes"} | kw
    return Statement(record_id=record_id, leaf_index=leaf, counts=counts_of(counts), **fields)  # type: ignore[arg-type]


NOV = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def test_planted_gap_and_contradiction_are_found_and_nothing_else() -> None:
    rows = (
        [("p", "r", "legislator", "label", True, NOV + i) for i in range(8)]  # 8 of 10 exemptions logged
        + [("p", "r", "legislator", "remove_content", False, NOV + i) for i in range(5)]
        + [("p", "r", "ordinary_user", "remove_content", False, NOV + i) for i in range(7)]  # 7 > 6 declared
        + [("p", "r", "journalist", "none", False, NOV)]  # a class the statement does not list
        + [("p", "r", "legislator", "label", True, NOV - 1)]  # October: no statement
    )
    s = _statement(
        "c1",
        5,
        {
            "legislator": {"label": {"exempted": 10}, "remove_content": {"not_exempted": 5}},
            "ordinary_user": {"remove_content": {"not_exempted": 6}},
        },
    )
    found = compare(in_force([s]), logged_counts(rows))
    assert [(c["account_class"], c["status"], c["declared"], c["logged"], c["missing"]) for c in found] == [
        ("legislator", "incomplete", 15, 13, 2),
        ("ordinary_user", "contradicted", 6, 7, 0),
    ]
    assert [(x["action"], x["exempted"], x["status"]) for x in found[0]["cells"]] == [
        ("label", True, "incomplete"),
        ("remove_content", False, "complete"),
    ]


def test_supersession_needs_a_reference() -> None:
    first = _statement("c1", 1, {"legislator": {"label": {"exempted": 1}}})
    fixed = _statement("c2", 2, {"legislator": {"label": {"exempted": 2}}}, supersedes="c1")
    stray = _statement("c3", 3, {"legislator": {"label": {"exempted": 9}}})
    force = in_force([stray, fixed, first])
    assert force.statements[("p", "2026-11", "r")].record_id == "c2"
    assert [s.record_id for s in force.superseded] == ["c1"]
    assert [s.record_id for s in force.conflicting] == ["c3"]


def test_all_decisions_declares_every_class() -> None:
    s = _statement("c1", 1, {"legislator": {"label": {"exempted": 1}}}, criterion="all_decisions")
    rows = [("p", "r", "legislator", "label", True, NOV), ("p", "r", "candidate", "none", False, NOV)]
    found = compare(in_force([s]), logged_counts(rows))
    assert [(c["account_class"], c["status"]) for c in found] == [
        ("legislator", "complete"),
        ("candidate", "contradicted"),
    ]


def test_whole_months() -> None:
    assert whole_months(None, None) == (None, None)
    assert whole_months(NOV, NOV + 31 * 86_400_000) == ("2026-11", "2026-11")
    assert whole_months(NOV + 1, NOV + 29 * 86_400_000) == ("2026-12", "2026-10")  # no whole month
    assert whole_months(NOV + 1, NOV + 30 * 86_400_000) == ("2026-12", "2026-11")  # ends with November
    assert whole_months(NOV - 1, None) == ("2026-11", None)


def test_build_statement_refuses_totals_below_the_records() -> None:
    rec = {
        "type": "decision",
        "platform": "p",
        "record_id": "d1",
        "decided_at": "2026-11-03T10:00:00Z",
        "rule": {"id": "r", "version": "1"},
        "account": {"class": "legislator"},
        "action": "label",
        "exemption": {"applied": True, "type": "newsworthiness"},
    }
    built = build_statement(
        [rec],
        platform="p",
        record_id="c1",
        period="2026-11",
        rule_id="r",
        submitted_at="2026-12-01T00:00:00Z",
        description="all",
        totals={("legislator", "label", True): 3},
    )
    assert built["counts"] == {"legislator": {"label": {"exempted": 3}}}
    own = build_statement(
        [rec],
        platform="p",
        record_id="c1",
        period="2026-11",
        rule_id="r",
        submitted_at="2026-12-01T00:00:00Z",
        description="all",
    )
    assert own["counts"] == {"legislator": {"label": {"exempted": 1}}}
    with pytest.raises(InvalidInput, match="would be contradicted"):
        build_statement(
            [rec],
            platform="p",
            record_id="c1",
            period="2026-11",
            rule_id="r",
            submitted_at="2026-12-01T00:00:00Z",
            description="all",
            totals={("legislator", "label", False): 3},
        )
