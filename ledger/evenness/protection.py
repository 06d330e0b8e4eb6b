"""Method version 2's protection section: whom moderated content targeted, and who reported it.

The account comparisons of version 1 ask whether the people who posted were
treated alike. This section asks the other half (issue 19): was content
aimed at candidates, election workers, journalists or groups handled as
fast and as firmly as content aimed at ordinary users, and were reports
filed by some kinds of reporter decided faster than ordinary users'? It
reads three more index columns per record (:data:`PROTECTION_COLUMNS`:
``target_class``, ``reporter_class``, ``abuse_kind``), counts them with the
very fold and tallies of :mod:`ledger.evenness.facts` (the latest amendment
replaces a decision, the latest appeal gives its outcome), and compares with
the functions of :mod:`ledger.evenness.compare`:

- per (platform, rule id), each target class against ``ordinary_user``
  targets: the adverse-action rate and the appeal reversal rate, stratified
  by severity (Cochran-Mantel-Haenszel or exact, as version 1), and the time
  from flag to decision, **stratified by severity** with the van Elteren test
  (version 1 pools times over severity; here a class of target whose abuse is
  mostly of a slower severity must not look slower for that alone);
- per (platform, rule id), each reporter class against ``ordinary_user``
  reporters: the time from flag to decision, the same way.

Benjamini-Hochberg runs over this section's primary p-values as one family
(the version 1 part of the document keeps its own), flags need q < 0.05 and
a practically large effect as in version 1, and the sentences follow version
1's rules (:mod:`ledger.evenness.protection_words`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ledger.errors import InvalidInput
from ledger.evenness.compare import (
    CLES_DISTANCE,
    MIN_SUBJECTS,
    MIN_TIMES,
    Q_LEVEL,
    Stratum,
    compare_rates,
    group_strata,
    paired,
    rate_json,
    time_summary,
)
from ledger.evenness.facts import FACT_COLUMNS, Filters, Tally, index_rows_from_entries, merged, tally
from ledger.evenness.protection_words import DEFINITIONS, flagged_sentence, unflagged_sentence
from ledger.records.vocab import ORDINARY_USER, REPORTER_CLASSES, SEVERITIES, TARGET_CLASSES
from ledger.stats import benjamini_hochberg
from ledger.stats.ranks import van_elteren

#: The index columns a protection fact holds: a fact's, then the three of issue 19.
PROTECTION_COLUMNS = FACT_COLUMNS + ("target_class", "reporter_class", "abuse_kind")
_CLASS = FACT_COLUMNS.index("account_class")
_TYPE = FACT_COLUMNS.index("type")
_TARGET, _REPORTER, _ABUSE = range(len(FACT_COLUMNS), len(PROTECTION_COLUMNS))
_PLATFORM, _RULE = FACT_COLUMNS.index("platform"), FACT_COLUMNS.index("rule_id")
#: Stands for "no class given" in the tallies (sorts before every class).
_NONE = ""
REFERENCE = ORDINARY_USER
TARGET_GROUPS = tuple(c for c in TARGET_CLASSES if c != REFERENCE)
REPORTER_GROUPS = tuple(c for c in REPORTER_CLASSES if c != REFERENCE)
TARGET_METRICS = ("adverse_action_rate", "time_to_decision", "appeal_reversal_rate")


def protection_facts_from_entries(entries: Iterable[tuple[int, bytes]], tree_size: int) -> Iterator[tuple[Any, ...]]:
    """Yield the protection facts of the record entries below ``tree_size``, as
    :func:`ledger.evenness.facts.facts_from_entries` does for facts (the same
    rules on order), through the very function that fills the index."""
    for row in index_rows_from_entries(entries, tree_size):
        yield tuple(row[c] for c in PROTECTION_COLUMNS)


def protection_section(facts: Iterable[Sequence[Any]], filters: Filters, cp: dict[str, Any]) -> dict[str, Any]:
    """Return the protection section of ``facts`` (every record below the
    checkpoint, in log order, as :data:`PROTECTION_COLUMNS` rows).

    ``filters`` narrow it by platform, rule and decision time as they narrow
    the rest of the document; its group and metric name account groups and
    version 1's metrics, so they leave this section whole.
    """
    facts = list(facts)
    scope = Filters(
        platform=filters.platform,
        rule_id=filters.rule_id,
        decided_from_ms=filters.decided_from_ms,
        decided_to_ms=filters.decided_to_ms,
    )
    targets, reporters = tally(_as_class(facts, _TARGET), scope), tally(_as_class(facts, _REPORTER), scope)
    by_target, by_reporter = _by_class(targets.cells), _by_class(reporters.cells)
    kinds = _abuse_kinds(facts)
    cells = _cells(by_target, kinds, targets.subjects)
    comparisons = list(_target_comparisons(by_target, kinds, targets.subjects))
    comparisons += _reporter_comparisons(by_reporter, kinds, reporters.subjects)
    flagged = _adjust_and_word(comparisons, cp)
    return {
        "definitions": DEFINITIONS,
        "reference": REFERENCE,
        "target_cells": cells,
        "comparisons": comparisons,
        "multiple_comparisons": {
            "method": "benjamini_hochberg",
            "family": "this section",
            "tests": sum(1 for c in comparisons if c["primary"]["p_value"] is not None),
        },
        "flagged": flagged,
    }


def _as_class(facts: list[Sequence[Any]], column: int) -> list[tuple[Any, ...]]:
    """The facts with the account class replaced by the target's (or the reporter's) class."""
    out = []
    for f in facts:
        row = list(f[: len(FACT_COLUMNS)])
        if f[_TYPE] != "appeal":
            row[_CLASS] = f[column] or _NONE
        out.append(tuple(row))
    return out


#: (platform, rule id) -> class -> (severity,) -> tally
ByClass = dict[tuple[str, str], dict[str, dict[Stratum, Tally]]]


def _by_class(cells: dict[tuple[str, str, str, str], Tally]) -> ByClass:
    out: ByClass = {}
    for (p, r, c, s), t in sorted(cells.items()):
        if c != _NONE:
            out.setdefault((p, r), {}).setdefault(c, {})[(s,)] = t
    return out


def _abuse_kinds(facts: list[Sequence[Any]]) -> dict[tuple[str, str], str | None]:
    """(platform, rule id) -> the abuse kind its records mark, if exactly one (else None)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for f in facts:
        if f[_TYPE] != "appeal" and f[_RULE] is not None:
            kinds = seen.setdefault((f[_PLATFORM], f[_RULE]), set())
            if f[_ABUSE] is not None:
                kinds.add(f[_ABUSE])
    return {k: next(iter(v)) if len(v) == 1 else None for k, v in seen.items()}


def _cells(
    by_target: ByClass, kinds: dict[tuple[str, str], str | None], subjects: dict[tuple[str, str, str], set[str]]
) -> list[dict[str, Any]]:
    out = []
    for (p, r), by_class in by_target.items():
        for c in TARGET_CLASSES:
            if c not in by_class:
                continue
            t = merged(by_class[c].values())
            out.append(
                {
                    "platform": p,
                    "rule_id": r,
                    "abuse": kinds.get((p, r)),
                    "target_class": c,
                    "decisions": t.decisions,
                    "distinct_subjects": len(subjects.get((p, r, c), ())),
                    "violations_found": t.violations,
                    "adverse_action_rate": rate_json(t.adverse, t.violations),
                    "time_to_decision": time_summary(sorted(t.times)),
                    "appeals": {
                        "upheld": t.upheld,
                        "reversed": t.reversed,
                        "modified": t.modified,
                        "pending": t.pending,
                    }
                    | {"reversal_rate": rate_json(t.reversed, t.upheld + t.reversed)},
                }
            )
    return out


def _target_comparisons(
    by_target: ByClass, kinds: dict[tuple[str, str], str | None], subjects: dict[tuple[str, str, str], set[str]]
) -> Iterator[dict[str, Any]]:
    for (p, r), by_class in by_target.items():
        if REFERENCE not in by_class:
            continue
        reference = by_class[REFERENCE]
        for group in TARGET_GROUPS:
            if group not in by_class:
                continue
            strata = paired(group_strata(by_class, (group,)), reference)
            counts = {group: len(subjects.get((p, r, group), ())), REFERENCE: len(subjects.get((p, r, REFERENCE), ()))}
            head: dict[str, Any] = {"section": "target", "platform": p, "rule_id": r, "abuse": kinds.get((p, r))}
            head |= {"group": group, "reference": REFERENCE}
            for metric in TARGET_METRICS:
                if metric == "time_to_decision":
                    body = compare_times_stratified(strata, counts)
                else:
                    body = compare_rates(metric, ("severity",), strata, counts)
                yield {"metric": metric} | head | body


def _reporter_comparisons(
    by_reporter: ByClass, kinds: dict[tuple[str, str], str | None], subjects: dict[tuple[str, str, str], set[str]]
) -> list[dict[str, Any]]:
    out = []
    for (p, r), by_class in by_reporter.items():
        if REFERENCE not in by_class:
            continue
        for group in REPORTER_GROUPS:
            if group not in by_class:
                continue
            strata = paired(group_strata(by_class, (group,)), by_class[REFERENCE])
            counts = {group: len(subjects.get((p, r, group), ())), REFERENCE: len(subjects.get((p, r, REFERENCE), ()))}
            head: dict[str, Any] = {"metric": "time_to_decision", "section": "reporter", "platform": p, "rule_id": r}
            head |= {"abuse": kinds.get((p, r)), "group": group, "reference": REFERENCE}
            out.append(head | compare_times_stratified(strata, counts))
    return out


def compare_times_stratified(
    strata: Sequence[tuple[Stratum, Tally, Tally]], subjects: dict[str, int]
) -> dict[str, Any]:
    """Times to decision of group against reference, by the van Elteren test within severity.

    Tested with at least :data:`~ledger.evenness.compare.MIN_TIMES` times in
    each group; the effect is the within-stratum CLES, practically large at
    ``|CLES - 0.5| >= 0.06`` as version 1's. The pooled quantiles are shown
    for reading, with each severity's median.
    """
    group = sorted(t for _, g, _ in strata for t in g.times)
    reference = sorted(t for _, _, r in strata for t in r.times)
    body: dict[str, Any] = {
        "stratified_by": ["severity"],
        "group_time": time_summary(group),
        "reference_time": time_summary(reference),
        "strata": [
            {
                "stratum": {"severity": key[-1]},
                "group": time_summary(sorted(g.times)),
                "reference": time_summary(sorted(r.times)),
            }
            for key, g, r in sorted(strata, key=lambda s: SEVERITIES.index(s[0][-1]))
        ],
        "distinct_subjects": dict(subjects),
        "warnings": [
            f"{who}: only {n} distinct accounts; a few accounts can drive this comparison"
            for who, n in subjects.items()
            if n < MIN_SUBJECTS
        ],
    }
    if min(len(group), len(reference)) < MIN_TIMES:
        return body | _not_tested(f"fewer than {MIN_TIMES} decisions in a group")
    try:
        ve = van_elteren([(g.times, r.times) for _, g, r in strata])
    except InvalidInput:
        return body | _not_tested("no severity level holds decisions of both groups")
    large = abs(ve.cles - 0.5) >= CLES_DISTANCE
    test = {"method": ve.test.method, "statistic": ve.test.statistic, "p_value": ve.test.p_value}
    return body | {
        "tested": True,
        "not_tested": None,
        "van_elteren": {"cles": ve.cles, "z": ve.z, "strata_compared": ve.strata, "test": test},
        "primary": {"test": "van_elteren", "p_value": ve.test.p_value},
        "effect": {"measure": "stratified_cles", "value": ve.cles, "practically_large": large},
    }


def _not_tested(reason: str) -> dict[str, Any]:
    return {
        "tested": False,
        "not_tested": reason,
        "van_elteren": None,
        "primary": {"test": None, "p_value": None},
        "effect": {"measure": "stratified_cles", "value": None, "practically_large": None},
    }


def _adjust_and_word(comparisons: list[dict[str, Any]], cp: dict[str, Any]) -> list[dict[str, Any]]:
    q_values = benjamini_hochberg([c["primary"]["p_value"] for c in comparisons])
    flagged = []
    for i, (c, q) in enumerate(zip(comparisons, q_values, strict=True)):
        c["primary"]["q_value"] = q
        c["flagged"] = q is not None and q < Q_LEVEL and c["effect"]["practically_large"] is True
        c["wording"] = flagged_sentence(c, cp) if c["flagged"] else unflagged_sentence(c)
        if c["flagged"]:
            keys = ("section", "metric", "platform", "rule_id", "group")
            flagged.append({"index": i} | {k: c[k] for k in keys} | {"sentence": c["wording"]})
    return flagged
