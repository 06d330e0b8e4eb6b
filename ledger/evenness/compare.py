"""Comparing a group with the reference: the second, pure half of the statistics.

Each ``compare_*`` function takes tallies by stratum and returns the
comparison's JSON (numbers as floats, ``math.inf`` included) with its
primary p-value (``primary.p_value``) and whether its effect is practically
large (``effect.practically_large``). The caller adjusts all primary
p-values of a response together (Benjamini-Hochberg) and only then decides
which comparisons are flagged and words them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.evenness.facts import Tally, merged
from ledger.records.vocab import ACTIONS, SEVERITIES
from ledger.stats import (
    PERCENTILES,
    Estimate,
    MannWhitney,
    Significance,
    Table2x2,
    compare_strata,
    fisher_exact,
    katz_risk_ratio,
    newcombe_difference,
    pearson_chi2,
    percentile,
    ranks,
    wilson_interval,
)

#: Method version 1's thresholds (issue 5).
MIN_RATE_CASES = 10  # below: a rate is "k of n" only, and not tested
LOW_CASES = 30  # below: marked low
MIN_TIMES = 20  # per group, for the time test
MIN_RESOLVED_APPEALS = 10  # per group, for the reversal test
MIN_SUBJECTS = 5  # below: a warning
Q_LEVEL = 0.05
ODDS_RATIO_RANGE = (0.67, 1.5)
RISK_DIFFERENCE = 0.05
CLES_DISTANCE = 0.06
CRAMERS_V = 0.10

#: A stratum's key: (severity,) within a rule, (rule id, severity) for a platform.
Stratum = tuple[str, ...]


def estimate_json(e: Estimate) -> dict[str, Any]:
    return {"estimate": e.estimate, "lower": e.lower, "upper": e.upper, "notes": list(e.notes)}


def significance_json(s: Significance) -> dict[str, Any]:
    return {"method": s.method, "statistic": s.statistic, "p_value": s.p_value, "df": s.df, "notes": list(s.notes)}


def size_label(n: int) -> str:
    return "count_only" if n < MIN_RATE_CASES else "low" if n < LOW_CASES else "ok"


def rate_json(k: int, n: int) -> dict[str, Any]:
    """k of n; with at least 10 cases also the rate and its Wilson interval."""
    out: dict[str, Any] = {"events": k, "cases": n, "size": size_label(n)}
    if n < MIN_RATE_CASES:
        return out | {"estimate": None, "lower": None, "upper": None}
    w = wilson_interval(k, n)
    return out | {"estimate": w.estimate, "lower": w.lower, "upper": w.upper}


def time_summary(ordered: Sequence[int]) -> dict[str, Any]:
    """Quantiles and a median interval of sorted times, with at least 10 of them."""
    n = len(ordered)
    out: dict[str, Any] = {"n": n, "size": size_label(n)}
    if n < MIN_RATE_CASES:
        return out | {"quantiles": None, "median": None}
    m = ranks.median_interval_sorted(ordered)
    return out | {
        "quantiles": {f"p{p}": percentile(ordered, p) for p in PERCENTILES},
        "median": {
            "estimate": m.estimate,
            "lower": m.lower,
            "upper": m.upper,
            "coverage": m.coverage,
            "notes": list(m.notes),
        },
    }


def rate_counts(metric: str, t: Tally) -> tuple[int, int]:
    """(events, cases) of a rate metric."""
    if metric == "exemption_rate":
        return t.exemptions, t.violations
    if metric == "adverse_action_rate":
        return t.adverse, t.violations
    if metric == "appeal_reversal_rate":
        return t.reversed, t.upheld + t.reversed
    raise AssertionError(f"not a rate metric: {metric}")


def _stratum_json(names: Sequence[str], key: Stratum) -> dict[str, str]:
    return dict(zip(names, key, strict=True))


def _subject_warnings(subjects: Mapping[str, int]) -> list[str]:
    return [
        f"{who}: only {n} distinct accounts; a few accounts can drive this comparison"
        for who, n in subjects.items()
        if n < MIN_SUBJECTS
    ]


def compare_rates(
    metric: str,
    names: Sequence[str],
    strata: Sequence[tuple[Stratum, Tally, Tally]],
    subjects: Mapping[str, int],
) -> dict[str, Any]:
    """Compare a rate of group (first tally) and reference (second) across strata.

    Primary test: CMH or the exact conditional test (by the Mantel-Fleiss
    criterion) on the strata; effect: the Mantel-Haenszel odds ratio, or
    for reversals the pooled risk difference. Tested only with at least
    :data:`MIN_RATE_CASES` cases in each group.
    """
    tables = [Table2x2.from_rates(*rate_counts(metric, g), *rate_counts(metric, r)) for _, g, r in strata]
    k1, n1 = sum(t.a for t in tables), sum(t.n1 for t in tables)
    k2, n2 = sum(t.c for t in tables), sum(t.n2 for t in tables)
    body: dict[str, Any] = {
        "stratified_by": list(names),
        "group_rate": rate_json(k1, n1),
        "reference_rate": rate_json(k2, n2),
        "distinct_subjects": dict(subjects),
        "warnings": _subject_warnings(subjects),
    }
    reason = None
    if min(n1, n2) < MIN_RATE_CASES:
        what = "resolved appeals" if metric == "appeal_reversal_rate" else "violations found"
        reason = f"fewer than {MIN_RATE_CASES} {what} in a group"
    result = None if reason else compare_strata(tables)
    used = set(range(len(tables))) - set(result.dropped) if result else set()
    body["strata"] = [
        {
            "stratum": _stratum_json(names, key),
            "group": {"events": t.a, "cases": t.n1},
            "reference": {"events": t.c, "cases": t.n2},
            "used": i in used,
        }
        for i, ((key, _, _), t) in enumerate(zip(strata, tables, strict=True))
    ]
    if result is None:
        body |= dict.fromkeys(("risk_difference", "risk_ratio", "fisher_exact", "mantel_fleiss"))
        body |= dict.fromkeys(("association", "odds_ratio", "breslow_day"))
        return body | _not_tested(reason or "", _effect_measure(metric))
    pooled = Table2x2(k1, n1 - k1, k2, n2 - k2)
    rd = newcombe_difference(pooled)
    body |= {
        "tested": result.association.computed,
        "not_tested": None if result.association.computed else "; ".join(result.association.notes),
        "risk_difference": estimate_json(rd),
        "risk_ratio": estimate_json(katz_risk_ratio(pooled)),
        "fisher_exact": significance_json(fisher_exact(pooled)),
        "mantel_fleiss": result.mantel_fleiss,
        "association": significance_json(result.association),
        "odds_ratio": estimate_json(result.odds_ratio),
        "breslow_day": significance_json(result.heterogeneity),
    }
    body["primary"] = primary_json(result.association)
    large = _rate_large(metric, result.odds_ratio.estimate, rd.estimate)
    value = rd.estimate if metric == "appeal_reversal_rate" else result.odds_ratio.estimate
    body["effect"] = {"measure": _effect_measure(metric), "value": value, "practically_large": large}
    return body


def primary_json(s: Significance) -> dict[str, Any]:
    """The primary test and its p-value; a test that was not computed names
    no test (its attempt, with the reason, is in its own block), so that
    ``primary.test`` is null exactly when ``tested`` is false."""
    if not s.computed:
        return {"test": None, "p_value": None}
    return {"test": s.method, "p_value": s.p_value}


def _not_tested(reason: str, measure: str) -> dict[str, Any]:
    return {
        "tested": False,
        "not_tested": reason,
        "primary": {"test": None, "p_value": None},
        "effect": {"measure": measure, "value": None, "practically_large": None},
    }


def _effect_measure(metric: str) -> str:
    return "risk_difference" if metric == "appeal_reversal_rate" else "mantel_haenszel_odds_ratio"


def _rate_large(metric: str, odds_ratio: float | None, difference: float | None) -> bool | None:
    """Issue 5's practical size: OR outside [0.67, 1.5] (|RD| ≥ 5 points when
    the OR is 0 or infinite); for reversals |RD| ≥ 5 points."""
    if metric != "appeal_reversal_rate" and odds_ratio is not None and 0.0 < odds_ratio < math.inf:
        return odds_ratio < ODDS_RATIO_RANGE[0] or odds_ratio > ODDS_RATIO_RANGE[1]
    if metric != "appeal_reversal_rate" and odds_ratio is None:
        return None
    return None if difference is None else abs(difference) >= RISK_DIFFERENCE


def compare_actions(
    names: Sequence[str], strata: Sequence[tuple[Stratum, Tally, Tally]], subjects: Mapping[str, int]
) -> dict[str, Any]:
    """Pearson's chi-square of the action distribution among violations found,
    pooled over the strata (shown, not tested, per stratum); effect Cramér's V."""
    group, reference = merged(g for _, g, _ in strata), merged(r for _, _, r in strata)
    row1 = [group.actions.get(a, 0) for a in ACTIONS]
    row2 = [reference.actions.get(a, 0) for a in ACTIONS]
    body: dict[str, Any] = {
        "stratified_by": [],
        "shown_by": list(names),
        "cases": {"group": group.violations, "reference": reference.violations},
        "group_actions": _nonzero(group.actions),
        "reference_actions": _nonzero(reference.actions),
        "strata": [
            {"stratum": _stratum_json(names, key), "group": _nonzero(g.actions), "reference": _nonzero(r.actions)}
            for key, g, r in strata
        ],
        "distinct_subjects": dict(subjects),
        "warnings": _subject_warnings(subjects),
    }
    if min(group.violations, reference.violations) < MIN_RATE_CASES:
        body |= {"pearson_chi2": None, "cramers_v": None, "columns": None}
        return body | _not_tested(f"fewer than {MIN_RATE_CASES} violations found in a group", "cramers_v")
    c = pearson_chi2(row1, row2)
    large = None if c.cramers_v is None else c.cramers_v >= CRAMERS_V
    body |= {
        "tested": c.test.computed,
        "not_tested": None if c.test.computed else "; ".join(c.test.notes),
        "pearson_chi2": significance_json(c.test),
        "cramers_v": c.cramers_v,
        "columns": [ACTIONS[i] for i in c.columns],
        "primary": primary_json(c.test),
        "effect": {"measure": "cramers_v", "value": c.cramers_v, "practically_large": large},
    }
    return body


def _nonzero(actions: Mapping[str, int]) -> dict[str, int]:
    return {a: actions[a] for a in ACTIONS if actions.get(a)}


@dataclass(frozen=True)
class Times:
    """One group's times to decision, sorted, with what the rank test needs."""

    ordered: list[int]
    tie_term: int

    @classmethod
    def of(cls, values: Sequence[int]) -> Times:
        ordered = sorted(values)
        return cls(ordered, ranks.tie_term(ordered))


def compare_times(
    names: Sequence[str],
    strata: Sequence[tuple[Stratum, Tally, Tally]],
    group: Times,
    reference: Times,
    summaries: tuple[dict[str, Any], dict[str, Any]],
    subjects: Mapping[str, int],
) -> dict[str, Any]:
    """Mann-Whitney U on the times to decision, pooled over the strata (method
    version 1 has no stratified rank test; medians per stratum are shown)."""
    body: dict[str, Any] = {
        "stratified_by": [],
        "shown_by": list(names),
        "group_time": summaries[0],
        "reference_time": summaries[1],
        "strata": [
            {"stratum": _stratum_json(names, key), "group": _median(g.times), "reference": _median(r.times)}
            for key, g, r in strata
        ],
        "distinct_subjects": dict(subjects),
        "warnings": _subject_warnings(subjects),
    }
    if min(len(group.ordered), len(reference.ordered)) < MIN_TIMES:
        body["mann_whitney"] = None
        return body | _not_tested(f"fewer than {MIN_TIMES} decisions in a group", "cles")
    mw = mann_whitney_sorted(group, reference)
    large = abs(mw.cles - 0.5) >= CLES_DISTANCE
    body |= {
        "tested": True,
        "not_tested": None,
        "mann_whitney": {"u1": mw.u1, "cles": mw.cles, "z": mw.z, "test": significance_json(mw.test)},
        "primary": primary_json(mw.test),
        "effect": {"measure": "cles", "value": mw.cles, "practically_large": large},
    }
    return body


def _median(values: list[int]) -> dict[str, Any]:
    """The median of a stratum's times, sorting them in place (their order
    means nothing, and the reference's strata recur for every group)."""
    n = len(values)
    if n < MIN_RATE_CASES:
        return {"n": n, "median": None}
    values.sort()
    return {"n": n, "median": percentile(values, 50)}


def mann_whitney_sorted(x: Times, y: Times) -> MannWhitney:
    """Return exactly ``ledger.stats.mann_whitney(x, y)`` without sorting
    again or ranking the pooled sample (:func:`ledger.stats.ranks.mann_whitney_sorted`)."""
    return ranks.mann_whitney_sorted(x.ordered, y.ordered, y.tie_term)


def group_strata(by_class: Mapping[str, Mapping[Stratum, Tally]], classes: Sequence[str]) -> dict[Stratum, Tally]:
    """Sum the tallies of ``classes`` per stratum."""
    out: dict[Stratum, Tally] = {}
    for c in classes:
        for key, t in by_class.get(c, {}).items():
            if key not in out:
                out[key] = Tally()
            out[key].add(t)
    return out


def paired(group: Mapping[Stratum, Tally], reference: Mapping[Stratum, Tally]) -> list[tuple[Stratum, Tally, Tally]]:
    """The strata either side has, each with both sides' tallies (empty where
    a side has none), ordered by rule id and then by severity (the last part
    of every stratum key)."""
    keys = sorted(set(group) | set(reference), key=lambda k: (k[:-1], SEVERITIES.index(k[-1])))
    return [(k, group.get(k, Tally()), reference.get(k, Tally())) for k in keys]
