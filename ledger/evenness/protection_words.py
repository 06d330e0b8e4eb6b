"""The protection section in plain words (method version 2), under version 1's rules.

A flagged comparison states its denominators, intervals, test, q-value and
the checkpoint, and that it describes recorded decisions only and says
nothing of why; one that is not flagged says the recorded data cannot
distinguish the groups, never that there is no difference. Sentences name
the content by the rule's abuse kind where its records mark exactly one
("threats aimed at election workers"), and otherwise say "content".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.evenness.words import (
    CLASS_LABELS,
    DISCLAIMER,
    TEST_LABELS,
    checkpoint_sentence,
    duration,
    p_text,
    percent,
    ratio,
    reason,
    scope,
)

DEFINITIONS = {
    "target": "target.class of a decision (of the latest amendment, as everywhere in this document): whom the "
    "content was aimed at. Decisions without a target are left out of this section.",
    "reporter": "reporter_class of a decision: who reported the content. Decisions without one are left out of the "
    "reporter comparisons.",
    "comparisons": "Within (platform, rule id), each target class against content aimed at ordinary users: the "
    "adverse-action rate and the appeal reversal rate stratified by severity exactly as the account comparisons "
    "(Cochran-Mantel-Haenszel or exact conditional test, Mantel-Haenszel odds ratio, pooled risk difference for "
    "reversals), and the time from flag to decision stratified by severity with the van Elteren test (weights "
    "1/(n + 1), tie-corrected, no continuity correction; effect: the share of same-severity pairs in which the "
    "group's decision took longer, ties half). Each reporter class against ordinary users as reporters, for the "
    "time to decision, the same way. Minimum sizes, flags and wording are version 1's.",
    "multiple_comparisons": "Benjamini-Hochberg over the primary p-value of every comparison of this section, as "
    "one family; the account comparisons keep their own adjustment.",
    "limits": "Only decisions are recorded: content aimed at someone that no one reported and the platform never "
    "found is in no record, nor is the harm done while a report waited. The platform assigns the target and "
    "reporter classes; the ledger cannot check them.",
}

_KINDS = {"threat": "threats", "harassment": "harassment", "incitement": "incitement"}

TIME_FLAGGED = (
    "{scope}, {kind} aimed at {group} were decided in a median of {median1} (95% interval {m_lo1} to {m_hi1}; "
    "{n1} decisions) against {median2} for {kind} aimed at ordinary users (95% interval {m_lo2} to {m_hi2}; {n2} "
    "decisions). Compared within each severity level, a decision about {kind} aimed at {group} took longer than one "
    "about {kind} aimed at an ordinary user with probability {cles} (ties counted half; van Elteren p = {p}, "
    "Benjamini–Hochberg q = {q}). {checkpoint} {disclaimer}"
)
REPORTER_FLAGGED = (
    "{scope}, {kind} reported by {group} were decided in a median of {median1} (95% interval {m_lo1} to {m_hi1}; "
    "{n1} decisions) against {median2} for {kind} reported by ordinary users (95% interval {m_lo2} to {m_hi2}; {n2} "
    "decisions). Compared within each severity level, a report by {group} took longer to decide than one by an "
    "ordinary user with probability {cles} (ties counted half; van Elteren p = {p}, Benjamini–Hochberg q = {q}). "
    "{checkpoint} {disclaimer}"
)
RATE_FLAGGED = (
    "{scope}, the recorded {metric} for {kind} aimed at {group} was {rate1} ({k1} of {n1} {denominator}; 95% "
    "interval {lo1} to {hi1}), against {rate2} for {kind} aimed at ordinary users ({k2} of {n2}; 95% interval {lo2} "
    "to {hi2}). Compared within each severity level, the Mantel–Haenszel odds ratio is {odds} ({test} p = {p}, "
    "Benjamini–Hochberg q = {q}). {checkpoint} {disclaimer}"
)
UNFLAGGED = (
    "{scope}, the recorded data cannot distinguish the {what} of {kind} {relation} {group} and {relation} ordinary "
    "users by this method's standard: {reason}."
)
_RATE_LABELS = {
    "adverse_action_rate": ("adverse-action rate (removed, suspended, banned or geo-blocked)", "violations found"),
    "appeal_reversal_rate": ("appeal reversal rate", "appeals decided as upheld or reversed"),
}
_WHAT = {
    "adverse_action_rate": "adverse-action rates",
    "appeal_reversal_rate": "appeal reversal rates",
    "time_to_decision": "times to decision",
}
#: Reporter classes in words, as a sentence names them.
REPORTER_LABELS = {
    "target_self": "the people targeted themselves",
    "public_account": "public-class accounts",
    "ordinary_user": "ordinary users",
    "trusted_flagger": "trusted flaggers",
    "government_body": "government bodies",
}


def kind(c: Mapping[str, Any]) -> str:
    """What the rule's records are, in words: "threats", "harassment", "incitement" or "content"."""
    return _KINDS.get(c.get("abuse") or "", "content")


def _group(c: Mapping[str, Any]) -> str:
    return REPORTER_LABELS[c["group"]] if c["section"] == "reporter" else CLASS_LABELS[c["group"]]


def flagged_sentence(c: Mapping[str, Any], cp: Mapping[str, Any]) -> str:
    """The sentence of a flagged comparison of the protection section."""
    common = {
        "scope": scope(c),
        "kind": kind(c),
        "group": _group(c),
        "p": p_text(c["primary"]["p_value"]),
        "q": p_text(c["primary"]["q_value"]),
        "checkpoint": checkpoint_sentence(cp),
        "disclaimer": DISCLAIMER,
    }
    if c["metric"] == "time_to_decision":
        g, r = c["group_time"]["median"], c["reference_time"]["median"]
        template = REPORTER_FLAGGED if c["section"] == "reporter" else TIME_FLAGGED
        return template.format(
            **common,
            median1=duration(g["estimate"]),
            m_lo1=duration(g["lower"]),
            m_hi1=duration(g["upper"]),
            n1=c["group_time"]["n"],
            median2=duration(r["estimate"]),
            m_lo2=duration(r["lower"]),
            m_hi2=duration(r["upper"]),
            n2=c["reference_time"]["n"],
            cles=f"{c['van_elteren']['cles']:.2f}",
        )
    g, r = c["group_rate"], c["reference_rate"]
    label, denominator = _RATE_LABELS[c["metric"]]
    test = c["primary"]["test"]
    if test is None:
        raise AssertionError("a flagged comparison names no test")
    return RATE_FLAGGED.format(
        **common,
        metric=label,
        denominator=denominator,
        rate1=percent(g["estimate"]),
        k1=g["events"],
        n1=g["cases"],
        lo1=percent(g["lower"]),
        hi1=percent(g["upper"]),
        rate2=percent(r["estimate"]),
        k2=r["events"],
        n2=r["cases"],
        lo2=percent(r["lower"]),
        hi2=percent(r["upper"]),
        odds=ratio(c["odds_ratio"]["estimate"]),
        test=TEST_LABELS[test],
    )


def unflagged_sentence(c: Mapping[str, Any]) -> str:
    """The sentence of a comparison of the protection section that is not flagged."""
    relation = "reported by" if c["section"] == "reporter" else "aimed at"
    return UNFLAGGED.format(
        scope=scope(c), what=_WHAT[c["metric"]], kind=kind(c), relation=relation, group=_group(c), reason=reason(c)
    )
