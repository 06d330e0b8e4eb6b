"""The evenness statistics in plain words: one template per kind of sentence.

Issue 5's rules for the wording: a flagged comparison states its
denominators, its intervals and the checkpoint, and that it describes
recorded decisions only and says nothing of why; a comparison that is not
flagged says the recorded data cannot distinguish the groups, never that
there is no difference; nothing says bias, favouritism or proves (the tests
search every sentence for those words).

Sentences are built from the comparison's own JSON, so anyone holding the
document can check that a sentence says what the numbers say.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ledger.records.vocab import ACTIONS
from ledger.stats import wilson_interval

#: Method version 1, in words: the document states these with its numbers.
DEFINITIONS = {
    "records": "Decisions whose log entries lie inside the checkpoint's tree. The latest amendment (by log position) "
    "of a decision replaces it: its platform, rule, account, severity, outcome and times are the decision's. "
    "Filters select decisions after amendments.",
    "appeals": "A decision's appeal outcome is that of the latest appeal record referring to it. The reversal rate "
    "is reversed / (upheld + reversed); pending appeals and appeals whose outcome is modified are left out of both "
    "and counted separately in each cell.",
    "exemption_rate": "Exemptions applied / violations found.",
    "adverse_action_rate": "Actions remove_content, temporary_suspension, permanent_ban or geo_block / violations "
    "found.",
    "action_distribution": "The actions among violations found.",
    "time_to_decision": "decided_at - flagged_at of every decision, in whole seconds (the millisecond difference "
    "divided by 1000, rounded down).",
    "comparisons": "Each public account class, and political_any (head_of_state, legislator, candidate, "
    "government_official, party_account), against ordinary_user within (platform, rule id). Rates are stratified "
    "by severity: strata with a zero margin are dropped; the Cochran-Mantel-Haenszel chi-square (1 df, no "
    "continuity correction) is the primary test when the Mantel-Fleiss criterion is at least 5, otherwise the "
    "exact conditional test; the Mantel-Haenszel odds ratio has the Robins-Breslow-Greenland interval; Breslow-Day "
    "tests heterogeneity. Pooled counts also get Newcombe's risk difference, Katz's risk ratio and Fisher's exact "
    "test. Times (Mann-Whitney U, normal approximation with tie and continuity corrections) and action "
    "distributions (Pearson chi-square on the 2 x k table when Cochran's rule holds, Cramer's V) are compared "
    "pooled over severity, as version 1 has no stratified test for them; their strata tables show each severity.",
    "platform_summaries": "political_any against ordinary_user on each platform, for the three rates, stratified "
    "by (rule id, severity) as above.",
    "multiple_comparisons": "Benjamini-Hochberg over the primary p-value of every comparison and platform summary "
    "in this document (a filtered document adjusts over its own comparisons only).",
    "flagged": "q < 0.05 and a practically large effect: the Mantel-Haenszel odds ratio outside [0.67, 1.5] for the "
    "exemption and adverse-action rates (pooled risk difference at least 5 points when the odds ratio is 0 or "
    "infinite); pooled risk difference at least 5 points for reversals; |CLES - 0.5| >= 0.06 for times; Cramer's V "
    ">= 0.10 for actions.",
    "minimum_sizes": "A rate of fewer than 10 cases is given as k of n only (size count_only) and not tested; below "
    "30 cases its size is low. A time comparison needs 20 decisions per group, a reversal comparison 10 resolved "
    "appeals per group, other rate and action comparisons 10 violations found per group. Time quantiles need 10 "
    "decisions. Fewer than 5 distinct accounts in a group gives a warning.",
    "numbers": "Counts are exact integers. Every other number is computed in IEEE 754 double precision and written "
    "correctly rounded to 10 significant digits (ties to even), and as 0 when its magnitude is below 1e-300, so that "
    "the last bits of a platform's exp, log, lgamma or erfc do not change the document: it changes only where such a "
    "difference carries a value across a rounding boundary, about once in 500 documents of the demo's size for "
    "differences of one unit in the last place. Infinite values are the strings "
    '"Infinity" and "-Infinity" (RFC 8785 JSON has no infinity); what cannot be computed is null, with the reason in '
    "notes or not_tested.",
    "checkpoint": "signed_note is the checkpoint with the log's own signature only: witness cosignatures, which "
    "arrive later, are left out so that the document never changes.",
}


CLASS_LABELS = {
    "head_of_state": "heads of state",
    "legislator": "legislators",
    "candidate": "candidates",
    "government_official": "government officials",
    "party_account": "party accounts",
    "journalist": "journalists",
    "other_public_figure": "other public figures",
    "election_worker": "election workers",
    "ordinary_user": "ordinary users",
    "group": "groups of people",
    "political_any": "political accounts",
}
_POLITICAL_LONG = (
    "political accounts (heads of state, legislators, candidates, government officials and party accounts together)"
)
METRIC_LABELS = {
    "exemption_rate": ("exemption rate", "violations found"),
    "adverse_action_rate": (
        "adverse-action rate (content removed, temporary suspension, permanent ban or geo-block)",
        "violations found",
    ),
    "appeal_reversal_rate": ("appeal reversal rate", "appeals decided as upheld or reversed"),
}
TEST_LABELS = {
    "cmh_chi2": "Cochran–Mantel–Haenszel test",
    "exact_conditional": "exact conditional test",
    "mann_whitney": "Mann–Whitney test",
    "pearson_chi2": "Pearson chi-square test",
}

CHECKPOINT = "Computed from the log {origin} at tree size {size} (root hash {root})."
DISCLAIMER = "This describes recorded decisions only, and says nothing of why they differ."

RATE_FLAGGED = (
    "{scope}, the recorded {metric} of {group} was {rate1} ({k1} of {n1} {denominator}; 95% interval {lo1} to "
    "{hi1}), against {rate2} for ordinary users ({k2} of {n2}; 95% interval {lo2} to {hi2}). Compared within "
    "{strata}, the Mantel–Haenszel odds ratio is {odds} ({odds_interval}; {test} p = {p}, "
    "Benjamini–Hochberg q = {q}). {checkpoint} {disclaimer}"
)
REVERSAL_FLAGGED = (
    "{scope}, of the appeals decided as upheld or reversed, the recorded share reversed for {group} was {rate1} "
    "({k1} of {n1}; 95% interval {lo1} to {hi1}), against {rate2} for ordinary users ({k2} of {n2}; 95% interval "
    "{lo2} to {hi2}): a difference of {rd} percentage points (95% interval {rd_lo} to {rd_hi}; {test} within "
    "{strata} p = {p}, Benjamini–Hochberg q = {q}). Pending appeals and appeals that modified the decision are not "
    "counted. {checkpoint} {disclaimer}"
)
TIME_FLAGGED = (
    "{scope}, the recorded time from flag to decision for {group} had a median of {median1} (95% interval {m_lo1} "
    "to {m_hi1}; {n1} decisions), against {median2} for ordinary users (95% interval {m_lo2} to {m_hi2}; {n2} "
    "decisions). A randomly chosen decision about {short} took longer than a randomly chosen one about an "
    "ordinary user with probability {cles} (ties counted half; all severities together; Mann–Whitney p = {p}, "
    "Benjamini–Hochberg q = {q}). {checkpoint} {disclaimer}"
)
ACTIONS_FLAGGED = (
    "{scope}, the actions recorded for violations found were distributed differently for {group} ({n1} violations "
    "found) than for ordinary users ({n2}): Cramér's V = {v} (all severities together; Pearson chi-square p = {p}, "
    "Benjamini–Hochberg q = {q}). The largest gap is in {action}: {share1} for {short} ({c1} of {n1}; 95% interval "
    "{s_lo1} to {s_hi1}) against {share2} for ordinary users ({c2} of {n2}; 95% interval {s_lo2} to {s_hi2}). "
    "{checkpoint} {disclaimer}"
)
UNFLAGGED = (
    "{scope}, {subject}the recorded data cannot distinguish the {what} of {group} and ordinary users by this "
    "method's standard: {reason}."
)
_WHAT = {"time_to_decision": "times to decision", "action_distribution": "action distributions"}
_SHORT = {
    "exemption_rate": "exemption rate",
    "adverse_action_rate": "adverse-action rate",
    "appeal_reversal_rate": "appeal reversal rate",
}


def scope(c: Mapping[str, Any]) -> str:
    if c.get("rule_id") is None:
        return f"On {c['platform']}, across its rules"
    return f"On {c['platform']}, under rule {c['rule_id']}"


def percent(x: float | None) -> str:
    return "not computed" if x is None else f"{100 * x:.1f}%"


def ratio(x: float | None) -> str:
    if x is None:
        return "not computed"
    return "unbounded" if math.isinf(x) else f"{x:.2f}"


def p_text(p: float | None) -> str:
    if p is None:
        return "not computed"
    if p < 1e-300:  # written as 0 (ledger.evenness.document.SMALLEST_WRITTEN)
        return "below 1e-300"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "not computed"
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.1f} minutes"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86_400:.1f} days"


def checkpoint_sentence(cp: Mapping[str, Any]) -> str:
    return CHECKPOINT.format(origin=cp["origin"], size=cp["tree_size"], root=cp["root_hash"])


def _strata(c: Mapping[str, Any]) -> str:
    return "each rule and severity level" if "rule_id" in c["stratified_by"] else "each severity level"


def _rate_fields(c: Mapping[str, Any]) -> dict[str, Any]:
    g, r = c["group_rate"], c["reference_rate"]
    return {
        "rate1": percent(g["estimate"]),
        "k1": g["events"],
        "n1": g["cases"],
        "lo1": percent(g["lower"]),
        "hi1": percent(g["upper"]),
        "rate2": percent(r["estimate"]),
        "k2": r["events"],
        "n2": r["cases"],
        "lo2": percent(r["lower"]),
        "hi2": percent(r["upper"]),
    }


def flagged_sentence(c: Mapping[str, Any], cp: Mapping[str, Any]) -> str:
    """The sentence of a flagged comparison (its JSON, q-value included)."""
    common = {
        "scope": scope(c),
        "group": _POLITICAL_LONG if c["group"] == "political_any" else CLASS_LABELS[c["group"]],
        "short": CLASS_LABELS[c["group"]],
        "p": p_text(c["primary"]["p_value"]),
        "q": p_text(c["primary"]["q_value"]),
        "checkpoint": checkpoint_sentence(cp),
        "disclaimer": DISCLAIMER,
    }
    metric = c["metric"]
    if metric == "time_to_decision":
        g, r = c["group_time"], c["reference_time"]
        return TIME_FLAGGED.format(
            **common,
            median1=duration(g["median"]["estimate"]),
            m_lo1=duration(g["median"]["lower"]),
            m_hi1=duration(g["median"]["upper"]),
            n1=g["n"],
            median2=duration(r["median"]["estimate"]),
            m_lo2=duration(r["median"]["lower"]),
            m_hi2=duration(r["median"]["upper"]),
            n2=r["n"],
            cles=f"{c['mann_whitney']['cles']:.2f}",
        )
    if metric == "action_distribution":
        return ACTIONS_FLAGGED.format(**common, **_largest_gap(c), v=f"{c['cramers_v']:.2f}")
    test = c["primary"]["test"]
    if test is None:  # flagged means q < 0.05, so there was a test
        raise AssertionError("a flagged comparison names no test")
    fields = {**common, **_rate_fields(c), "strata": _strata(c), "test": TEST_LABELS[test]}
    if metric == "appeal_reversal_rate":
        rd = c["risk_difference"]
        return REVERSAL_FLAGGED.format(
            **fields, rd=_points(rd["estimate"]), rd_lo=_points(rd["lower"]), rd_hi=_points(rd["upper"])
        )
    label, denominator = METRIC_LABELS[metric]
    odds = c["odds_ratio"]
    return RATE_FLAGGED.format(
        **fields,
        metric=label,
        denominator=denominator,
        odds=ratio(odds["estimate"]),
        odds_interval=_ratio_interval(odds["lower"], odds["upper"]),
    )


def _ratio_interval(lower: float | None, upper: float | None) -> str:
    if lower is None or upper is None or math.isinf(upper):
        return "its 95% interval has no finite bounds on the log scale"
    return f"95% interval {ratio(lower)} to {ratio(upper)}"


def _points(x: float | None) -> str:
    return "not computed" if x is None else f"{100 * x:+.1f}"


def _largest_gap(c: Mapping[str, Any]) -> dict[str, Any]:
    """The action whose share differs most between the groups, with Wilson intervals."""
    n1: int = c["cases"]["group"]
    n2: int = c["cases"]["reference"]
    g: Mapping[str, int] = c["group_actions"]
    r: Mapping[str, int] = c["reference_actions"]

    def gap(a: str) -> float:
        return abs(g.get(a, 0) / n1 - r.get(a, 0) / n2)

    action = max((a for a in ACTIONS if a in g or a in r), key=lambda a: (gap(a), -ACTIONS.index(a)))
    w1, w2 = wilson_interval(g.get(action, 0), n1), wilson_interval(r.get(action, 0), n2)
    return {
        "action": action.replace("_", " "),
        "share1": percent(w1.estimate),
        "s_lo1": percent(w1.lower),
        "s_hi1": percent(w1.upper),
        "c1": g.get(action, 0),
        "n1": n1,
        "share2": percent(w2.estimate),
        "s_lo2": percent(w2.lower),
        "s_hi2": percent(w2.upper),
        "c2": r.get(action, 0),
        "n2": n2,
    }


def unflagged_sentence(c: Mapping[str, Any]) -> str:
    """The sentence of a comparison that is not flagged, with the reason."""
    metric = c["metric"]
    subject, what = (f"for the {_SHORT[metric]}, ", "rates") if metric in _SHORT else ("", _WHAT[metric])
    return UNFLAGGED.format(
        scope=scope(c), subject=subject, what=what, group=CLASS_LABELS[c["group"]], reason=_reason(c)
    )


def reason(c: Mapping[str, Any]) -> str:
    """Why a comparison is not flagged, in words (its JSON, q-value included)."""
    return _reason(c)


def _reason(c: Mapping[str, Any]) -> str:
    if not c["tested"]:
        return f"not tested, {c['not_tested']}"
    q = c["primary"]["q_value"]
    if q is None or q >= 0.05:
        return f"Benjamini–Hochberg q = {p_text(q)}, not below 0.05"
    effect = c["effect"]
    value = effect["value"]
    if value is None:
        return "the size of the effect is undefined"
    measure = effect["measure"]
    if measure == "mantel_haenszel_odds_ratio" and 0.0 < value < math.inf:
        return f"the odds ratio {ratio(value)} lies within 0.67 to 1.5, below the size this method reports"
    if measure in ("mantel_haenszel_odds_ratio", "risk_difference"):
        rd = c["risk_difference"]["estimate"]
        return f"the difference of {_points(rd)} percentage points is smaller than 5"
    if measure in ("cles", "stratified_cles"):
        return f"the probability {value:.2f} lies within 0.06 of one half"
    return f"Cramér's V = {value:.2f} is below 0.10"
