"""Coverage: what platforms declared against what the log holds, and what the gap can change.

Three pure parts, each a function of the facts and statements below one
checkpoint (so every figure is "as of" that checkpoint: a statement or a
record logged later changes the next checkpoint's figures, never this one's):

* :func:`in_force` reads supersession: a statement whose ``refs`` names an
  earlier statement replaces it wholly; of two statements for the same
  (platform, month, rule) where neither supersedes the other, the earlier
  stays in force and the later is reported as conflicting, since a
  correction must say what it corrects (docs/records.md, "Coverage fields").
* :func:`compare` sets each statement in force against the log's count of
  decisions (as last amended), per (platform, month, rule, class) and per
  (action, exempted): ``complete`` (equal everywhere), ``incomplete``
  (fewer logged somewhere, never more), ``contradicted`` (more logged than
  declared somewhere).
* :func:`rate_bounds` and :func:`could_reverse`: where M declared decisions
  are missing, a rate of k events in n logged cases lies, whatever the
  missing decisions were, between k/(n+M) and (k+M)/(n+M), the issue's
  k/N .. (k+N-n)/N with N = n + M (each missing decision may or may not be
  a case, and may or may not be an event). Tested against enumeration of
  every possible set of missing decisions (tests/ledger/evenness).

:func:`coverage_section` is method version 2's coverage section of the
evenness document. Pure: no I/O, no database, no Flask or marshmallow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from ledger.evenness.facts import GROUPS, REFERENCE
from ledger.records.coverage import Statement, month_of
from ledger.records.vocab import ACCOUNT_CLASSES, ACTIONS

#: (platform, month, rule, class, action, exempted) -> decisions the log holds
Logged = Mapping[tuple[str, str, str, str, str, bool], int]
STATUSES = ("complete", "incomplete", "contradicted")
NOT_DECLARED = "coverage not declared"


@dataclass(frozen=True)
class Supersession:
    """Statements in force by (platform, month, rule); the superseded and
    the conflicting ones (record ids), in log order."""

    statements: dict[tuple[str, str, str], Statement]
    superseded: list[Statement]
    conflicting: list[Statement]


def in_force(statements: Iterable[Statement]) -> Supersession:
    """Read supersession among ``statements`` (any order; read in log order)."""
    ordered = sorted(statements, key=lambda s: s.leaf_index)
    named = {(s.platform, s.supersedes) for s in ordered if s.supersedes is not None}
    standing = [s for s in ordered if (s.platform, s.record_id) not in named]
    out: dict[tuple[str, str, str], Statement] = {}
    conflicting = []
    for s in standing:
        key = (s.platform, s.period, s.rule_id)
        if key in out:
            conflicting.append(s)
        else:
            out[key] = s
    superseded = [s for s in ordered if (s.platform, s.record_id) in named]
    return Supersession(out, superseded, conflicting)


def logged_counts(rows: Iterable[tuple[str, str, str, str, bool, int]]) -> Logged:
    """Count decisions given as (platform, rule, class, action, exempted, decided_at_ms) by month (UTC)."""
    by_day = Counter((p, r, c, a, bool(e), ms // 86_400_000) for p, r, c, a, e, ms in rows)
    out: Counter[tuple[str, str, str, str, str, bool]] = Counter()
    months: dict[int, str] = {}
    for (p, r, c, a, e, day), n in by_day.items():
        month = months.get(day)
        if month is None:
            month = months[day] = month_of(day * 86_400_000)
        out[(p, month, r, c, a, e)] += n
    return out


def _status(declared: int, logged: int) -> str:
    return "complete" if declared == logged else "incomplete" if logged < declared else "contradicted"


def compare(force: Supersession, logged: Logged) -> list[dict[str, Any]]:
    """One comparison per (platform, month, rule, class) a statement in force declares, sorted."""
    by_scope: dict[tuple[str, str, str], dict[tuple[str, str, bool], int]] = {}
    for (p, m, r, c, a, e), n in logged.items():
        by_scope.setdefault((p, m, r), {})[(c, a, e)] = n
    out = []
    for key, s in sorted(force.statements.items()):
        held = by_scope.get(key, {})
        for c in ACCOUNT_CLASSES:
            if not s.covers(c):
                continue
            declared = {k: n for k, n in s.counts.items() if k[0] == c}
            logged_c = {k: n for k, n in held.items() if k[0] == c}
            if not declared and not logged_c and s.criterion == "all_decisions":
                continue  # neither declared nor logged: nothing to report
            out.append(_comparison(s, c, declared, logged_c))
    return out


def _comparison(
    s: Statement, c: str, declared: Mapping[tuple[str, str, bool], int], logged: Mapping[tuple[str, str, bool], int]
) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    missing = 0
    for a in ACTIONS:
        for e in (True, False):
            d, n = declared.get((c, a, e), 0), logged.get((c, a, e), 0)
            if (c, a, e) in declared or n:
                cells.append({"action": a, "exempted": e, "declared": d, "logged": n, "status": _status(d, n)})
                missing += max(0, d - n)
    statuses = {cell["status"] for cell in cells}
    status = next((x for x in ("contradicted", "incomplete") if x in statuses), "complete")
    total_declared, total_logged = sum(declared.values()), sum(logged.values())
    return {
        "platform": s.platform,
        "period": s.period,
        "rule_id": s.rule_id,
        "account_class": c,
        "statement": {"record_id": s.record_id, "leaf_index": s.leaf_index, "criterion": s.criterion},
        "status": status,
        "declared": total_declared,
        "logged": total_logged,
        # Decisions missing, summed over the cells that are short: a cell
        # with more than declared does not make up for another's gap.
        "missing": missing,
        "cells": cells,
    }


def rate_bounds(k: int, n: int, missing: int) -> tuple[Fraction, Fraction] | None:
    """The least and greatest value of a rate of ``k`` events in ``n`` logged
    cases once ``missing`` decisions of unknown kind are added; None if no
    case could exist. The least adds them all as cases without the event,
    the greatest all as cases with it; any mix lies between."""
    if not 0 <= k <= n or missing < 0:
        raise AssertionError(f"rate_bounds: k={k}, n={n}, missing={missing}")
    total = n + missing
    if total == 0:
        return None
    return Fraction(k, total), Fraction(k + missing, total)


def could_reverse(
    group: tuple[Fraction, Fraction], reference: tuple[Fraction, Fraction], group_rate: Fraction, ref_rate: Fraction
) -> bool:
    """Whether some missing decisions could erase or reverse the logged order
    of two rates (equal rates: whether they could come apart). The two
    groups' missing decisions are independent, so each rate can reach its
    bounds whatever the other does."""
    if group_rate > ref_rate:
        return group[0] <= reference[1]
    if group_rate < ref_rate:
        return group[1] >= reference[0]
    return group[0] != group[1] or reference[0] != reference[1]


# --- method version 2's coverage section ---------------------------------------------


@dataclass(frozen=True)
class Extent:
    """What coverage says of a set of decisions (a cell, or a group's cells):
    ``declared`` and ``logged`` over the months with a statement in force,
    ``undeclared`` logged decisions in other months, and the worst status."""

    status: str  # not_declared | partly_declared | contradicted | incomplete | complete
    declared: int = 0
    logged: int = 0
    missing: int = 0
    undeclared: int = 0
    months: tuple[str, ...] = ()


def extent(
    comparisons: Sequence[Mapping[str, Any]], platform: str, rule: str | None, classes: Sequence[str], total: int
) -> Extent:
    """The coverage of ``classes``' ``total`` decisions of ``platform`` (under ``rule``, or all rules)."""
    mine = [
        c
        for c in comparisons
        if c["platform"] == platform and (rule is None or c["rule_id"] == rule) and c["account_class"] in classes
    ]
    if not mine:
        return Extent("not_declared", undeclared=total)
    declared = sum(c["declared"] for c in mine)
    logged = sum(c["logged"] for c in mine)
    missing = sum(c["missing"] for c in mine)
    months = tuple(sorted({c["period"] for c in mine}))
    undeclared = total - logged
    statuses = {c["status"] for c in mine}
    if "contradicted" in statuses:
        status = "contradicted"
    elif undeclared > 0:
        status = "partly_declared"
    else:
        status = "incomplete" if "incomplete" in statuses else "complete"
    return Extent(status, declared, logged, missing, max(0, undeclared), months)


#: The rate metrics whose bounds the section gives; appeals are not declared.
BOUNDED = ("exemption_rate", "adverse_action_rate")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DEFINITIONS_V2 = {
    "coverage": "A coverage statement (a signed record) declares how many decisions a platform took under one rule "
    "in one calendar month (UTC), per account class, action and exemption applied. A later statement that names an "
    "earlier one supersedes it; of two statements for the same month and rule where neither names the other, the "
    "earlier stays in force. Decisions count by their latest amendment and their decided_at month. Per month, "
    "rule and class: complete (as many logged as declared in every action and exemption), incomplete (fewer "
    "somewhere, never more), contradicted (more logged than declared somewhere). Only months that lie wholly "
    "inside the filters' time range count.",
    "coverage_bounds": "Where M declared decisions are missing from the log, a rate of k events in n logged cases "
    "lies, whatever the missing decisions were, between k/(n+M) and (k+M)/(n+M): the rate of k events in n "
    "logged cases out of N = n+M possible, from k/N to (k+N-n)/N. A comparison could be reversed when the bounds "
    "of the two groups overlap. No bound is given where a statement is contradicted, or where some logged "
    "decisions fall in months without a statement (nothing is known of what is missing there). A platform can "
    "under-declare; a statement makes that a signed claim that others can contradict.",
}


def month_words(months: Sequence[str]) -> str:
    if len(months) == 1:
        year, month = months[0].split("-")
        return f"{_MONTH_NAMES[int(month) - 1]} {year}"
    return f"{len(months)} months ({months[0]} to {months[-1]})"


def _percent(x: Fraction) -> str:
    return f"{100 * float(x):.1f}%"


def _extent_json(x: Extent) -> dict[str, Any]:
    return {
        "status": x.status,
        "declared": x.declared,
        "logged": x.logged,
        "missing": x.missing,
        "logged_in_undeclared_months": x.undeclared,
        "months": list(x.months),
    }


def _bounded(x: Extent) -> bool:
    return x.status in ("complete", "incomplete")


def _bounds_json(k: int, n: int, x: Extent) -> dict[str, Any] | None:
    b = rate_bounds(k, n, x.missing) if _bounded(x) else None
    return None if b is None else {"lower": float(b[0]), "upper": float(b[1])}


def _who(who: str, rule: str | None) -> str:
    return f"{who} under this rule" if rule is not None else f"{who} across its rules"


def extent_sentence(x: Extent, who: str, rule: str | None) -> str:
    """The coverage of one cell or group, in words."""
    if x.status == "not_declared":
        return NOT_DECLARED
    scope = f"{_who(who, rule)} in {month_words(x.months)}"
    if x.status == "contradicted":
        return (
            f"the log holds decisions the platform's statement denies for {scope} ({x.logged} logged, "
            f"{x.declared} declared): the statement is contradicted, and no bound is given"
        )
    held = f"the log holds {x.logged} of the {x.declared} decisions the platform declared for {scope}"
    if x.status == "partly_declared":
        return (
            f"{held}; {x.undeclared} logged decisions fall in months without a statement, so nothing is known of "
            "what is missing there and no bound is given"
        )
    if x.status == "complete":
        return f"{held}: every declared decision is logged"
    return f"{held}; {x.missing} declared decisions are missing"


def _rate_words(metric: str, k: int, n: int, x: Extent) -> str:
    b = rate_bounds(k, n, x.missing) if _bounded(x) and x.missing else None
    if b is None:
        return ""
    return f"; whatever they were, the {metric.replace('_', ' ')} lies between {_percent(b[0])} and {_percent(b[1])}"


class _Section:
    def __init__(self, comparisons: list[dict[str, Any]], labels: Mapping[str, str]) -> None:
        self.comparisons = comparisons
        self.labels = labels

    def cell(self, c: Mapping[str, Any]) -> dict[str, Any]:
        p, r, cls = c["platform"], c["rule_id"], c["account_class"]
        x = extent(self.comparisons, p, r, (cls,), c["decisions"])
        out: dict[str, Any] = {"platform": p, "rule_id": r, "account_class": cls} | _extent_json(x)
        sentence = extent_sentence(x, self.labels[cls], r)
        for metric in BOUNDED:
            k, n = c[metric]["events"], c[metric]["cases"]
            out[metric] = _bounds_json(k, n, x)
            if metric == "exemption_rate":
                sentence += _rate_words(metric, k, n, x)
        out["sentence"] = sentence
        return out

    def comparison(
        self, i: int, section: str, c: Mapping[str, Any], totals: Mapping[tuple[str, str | None, str], int]
    ) -> dict[str, Any]:
        p, r, group, metric = c["platform"], c["rule_id"], c["group"], c["metric"]
        sides = {"group": (group, GROUPS[group]), "reference": (REFERENCE, (REFERENCE,))}
        extents = {
            side: extent(self.comparisons, p, r, classes, sum(totals.get((p, r, k), 0) for k in classes))
            for side, (_, classes) in sides.items()
        }
        out: dict[str, Any] = {"section": section, "index": i, "metric": metric, "platform": p, "rule_id": r}
        out |= {"group": group} | {f"{side}_coverage": _extent_json(x) for side, x in extents.items()}
        bounds: dict[str, tuple[Fraction, Fraction] | None] = {}
        rates: dict[str, Fraction] = {}
        if metric in BOUNDED:
            for side, x in extents.items():
                rate = c[f"{side}_rate"]
                k, n = rate["events"], rate["cases"]
                bounds[side] = rate_bounds(k, n, x.missing) if _bounded(x) else None
                rates[side] = Fraction(k, n) if n else Fraction(0)
                out[f"{side}_bounds"] = (
                    None if bounds[side] is None else {"lower": float(bounds[side][0]), "upper": float(bounds[side][1])}  # type: ignore[index]
                )
        out["reversible"] = None
        out["sentence"] = self._comparison_sentence(c, extents, bounds, rates, out, sides)
        return out

    def _comparison_sentence(
        self,
        c: Mapping[str, Any],
        extents: Mapping[str, Extent],
        bounds: Mapping[str, tuple[Fraction, Fraction] | None],
        rates: Mapping[str, Fraction],
        out: dict[str, Any],
        sides: Mapping[str, tuple[str, Sequence[str]]],
    ) -> str:
        names = {side: self.labels[name] for side, (name, _) in sides.items()}
        unknown = [names[s] for s, x in extents.items() if x.status in ("not_declared", "partly_declared")]
        denied = [names[s] for s, x in extents.items() if x.status == "contradicted"]
        if unknown:
            return (
                f"Coverage is not declared for every decision of {' and '.join(unknown)}: decisions missing from "
                "the log could change this comparison by any amount."
            )
        if denied:
            return f"A coverage statement for {' and '.join(denied)} is contradicted by the log: no bound is given."
        if all(x.status == "complete" for x in extents.values()):
            return "The log holds every decision the platforms declared for both groups: coverage cannot change this."
        held = "; ".join(
            f"the log holds {x.logged} of the {x.declared} decisions declared for {names[s]}"
            for s, x in extents.items()
        )
        if c["metric"] not in BOUNDED:
            return f"Coverage: {held}. No bound is computed for this measure."
        g, ref = bounds["group"], bounds["reference"]
        if g is None or ref is None:
            return f"Coverage: {held}. A group has no case to bound."
        reverse = could_reverse(g, ref, rates["group"], rates["reference"])
        out["reversible"] = reverse
        return (
            f"Coverage: {held}. Whatever the missing decisions were, the {c['metric'].replace('_', ' ')} of "
            f"{names['group']} lies between {_percent(g[0])} and {_percent(g[1])}, and of {names['reference']} "
            f"between {_percent(ref[0])} and {_percent(ref[1])}: the missing decisions "
            + ("could reverse this comparison." if reverse else "could not reverse this comparison.")
        )


def coverage_section(
    statements: Iterable[Statement],
    logged: Logged,
    cells: Sequence[Mapping[str, Any]],
    comparisons: Sequence[Mapping[str, Any]],
    summaries: Sequence[Mapping[str, Any]],
    months: tuple[str | None, str | None],
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """Method version 2's coverage section of the evenness document.

    ``logged`` counts every decision below the checkpoint (not filtered);
    ``cells``, ``comparisons`` and ``summaries`` are the document's own;
    ``months`` the first and last month wholly inside the filters' time
    range (None: unbounded). Statements of other months are left out.
    """
    force = in_force(statements)
    lo, hi = months
    shown = {(c["platform"], c["rule_id"]) for c in cells}
    platforms = {p for p, _ in shown}
    compared = [
        x
        for x in compare(force, logged)
        if (lo is None or x["period"] >= lo)
        and (hi is None or x["period"] <= hi)
        and (x["platform"], x["rule_id"]) in shown
    ]
    section = _Section(compared, labels)
    totals: dict[tuple[str, str | None, str], int] = {}
    for c in cells:
        totals[(c["platform"], c["rule_id"], c["account_class"])] = c["decisions"]
        key = (c["platform"], None, c["account_class"])
        totals[key] = totals.get(key, 0) + c["decisions"]
    return {
        "definitions": DEFINITIONS_V2,
        "statements": compared,
        "superseded": [_ref(s) for s in force.superseded if s.platform in platforms],
        "conflicting": [_ref(s) for s in force.conflicting if s.platform in platforms],
        "cells": [section.cell(c) for c in cells],
        "comparisons": [section.comparison(i, "comparisons", c, totals) for i, c in enumerate(comparisons)]
        + [section.comparison(i, "platform_summaries", c, totals) for i, c in enumerate(summaries)],
    }


def _ref(s: Statement) -> dict[str, Any]:
    return {"platform": s.platform, "record_id": s.record_id, "leaf_index": s.leaf_index, "period": s.period}


def whole_months(from_ms: int | None, to_ms: int | None) -> tuple[str | None, str | None]:
    """The first and last month lying wholly inside [from_ms, to_ms) (None: unbounded).

    A month the range cuts is left out: its statement counts decisions the
    filtered document does not, so the two cannot be compared."""
    lo = hi = None
    if from_ms is not None:
        start = datetime.fromtimestamp(from_ms / 1000, UTC)
        first = datetime(start.year, start.month, 1, tzinfo=UTC)
        if first < start:
            first = _next_month(first)
        lo = first.strftime("%Y-%m")
    if to_ms is not None:
        end = datetime.fromtimestamp(to_ms / 1000, UTC)
        last = datetime(end.year, end.month, 1, tzinfo=UTC)  # the month starting at or before `end`
        hi = _previous_month(last).strftime("%Y-%m")  # ends at `last`, which is <= end
    return lo, hi


def _next_month(d: datetime) -> datetime:
    return datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)


def _previous_month(d: datetime) -> datetime:
    return datetime(d.year - (d.month == 1), (d.month - 2) % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CoverageFilters:
    """What ``GET /api/v1/coverage`` narrows the comparisons to; every field optional."""

    platform: str | None = None
    rule_id: str | None = None
    account_class: str | None = None
    period_from: str | None = None  # YYYY-MM, inclusive
    period_to: str | None = None  # YYYY-MM, inclusive
    status: str | None = None

    def keeps(self, c: Mapping[str, Any]) -> bool:
        return (
            (self.platform is None or c["platform"] == self.platform)
            and (self.rule_id is None or c["rule_id"] == self.rule_id)
            and (self.account_class is None or c["account_class"] == self.account_class)
            and (self.period_from is None or c["period"] >= self.period_from)
            and (self.period_to is None or c["period"] <= self.period_to)
            and (self.status is None or c["status"] == self.status)
        )


def coverage_answer(
    statements: Iterable[Statement], logged: Logged, filters: CoverageFilters, checkpoint: Mapping[str, Any]
) -> dict[str, Any]:
    """Every comparison of a statement in force with the log, as of ``checkpoint``, filtered."""
    force = in_force(statements)
    shown = [c for c in compare(force, logged) if filters.keeps(c)]
    platform = filters.platform
    return {
        "checkpoint": dict(checkpoint),
        "comparisons": shown,
        "superseded": [_ref(s) for s in force.superseded if platform is None or s.platform == platform],
        "conflicting": [_ref(s) for s in force.conflicting if platform is None or s.platform == platform],
    }


def logged_of(rows: Sequence[Sequence[Any]]) -> Logged:
    """:func:`logged_counts` of decision rows in ``ledger.evenness.facts.DECISION_COLUMNS`` order."""
    return logged_counts((r[0], r[1], r[2], r[7], bool(r[6]), r[9]) for r in rows)
