"""What the dashboard shows, picked from an evenness document (issue 5).

Pure: functions of the document's JSON (as the API serves it) and of the
platforms' display names, no Flask. The pages, the SVG charts and the CSV
files all take their numbers from here, so the three always agree, and
agree with the document: no number is recomputed, only selected and
formatted. Sentences are the document's own (``wording``, made by the
templates of ``ledger/evenness/words.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.evenness.facts import POLITICAL_ANY, REFERENCE
from ledger.evenness.words import CLASS_LABELS, duration, percent
from ledger.records.vocab import ACCOUNT_CLASSES
from web import charts

Doc = Mapping[str, Any]

#: The rule-level charts and the platform-level one, with their axis words.
RATE_CHARTS = {
    "exemption_rate": ("Exemption rate", "exemptions applied / violations found"),
    "adverse_action_rate": ("Adverse-action rate", "adverse actions / violations found"),
}
#: What the axis words abbreviate, for the chart's description.
RATE_DEFINITIONS = {
    "exemption_rate": "exemptions applied among violations found",
    "adverse_action_rate": "removals, temporary suspensions, permanent bans and geo-blocks among violations found",
}
TIME_CHART = "time_to_decision"
MONTHLY_CHART = "monthly"
RULE_CHARTS = (*RATE_CHARTS, TIME_CHART)
COMPARISON_METRICS = {
    "exemption_rate": "Exemption rate",
    "adverse_action_rate": "Adverse-action rate",
    "action_distribution": "Actions taken",
    "time_to_decision": "Time to decision",
    "appeal_reversal_rate": "Appeal reversal rate",
}


def group_label(group: str) -> str:
    if group == POLITICAL_ANY:
        return "Political accounts, together"
    text = CLASS_LABELS[group]
    return text[0].upper() + text[1:]


def rate_text(rate: Mapping[str, Any]) -> str:
    """A rate in words: "50.0% (20 of 40)", or "3 of 8" when too few to estimate."""
    k, n = rate["events"], rate["cases"]
    if rate["estimate"] is None:
        return f"{k} of {n}"
    return f"{percent(rate['estimate'])} ({k} of {n})"


def interval_text(rate: Mapping[str, Any]) -> str:
    if rate["estimate"] is None:
        return "too few cases to estimate"
    return f"{percent(rate['lower'])} to {percent(rate['upper'])}"


def platforms(doc: Doc) -> list[str]:
    return sorted({c["platform"] for c in doc["cells"]} | {m["platform"] for m in doc["monthly"]})


def rules(doc: Doc, platform: str) -> list[dict[str, Any]]:
    """The platform's rules, each with its decisions and flagged comparisons."""
    out: dict[str, dict[str, Any]] = {}
    for c in doc["cells"]:
        if c["platform"] == platform:
            entry = out.setdefault(c["rule_id"], {"rule_id": c["rule_id"], "decisions": 0, "flagged": 0})
            entry["decisions"] += c["decisions"]
    for f in doc["flagged"]:
        if f["platform"] == platform and f["rule_id"] in out:
            out[f["rule_id"]]["flagged"] += 1
    return [out[r] for r in sorted(out)]


def comparisons(doc: Doc, platform: str, rule_id: str) -> list[dict[str, Any]]:
    """The rule's comparisons, flagged first, then by metric and group."""
    order = {m: i for i, m in enumerate(COMPARISON_METRICS)}
    found = [c for c in doc["comparisons"] if c["platform"] == platform and c["rule_id"] == rule_id]
    return sorted(found, key=lambda c: (not c["flagged"], order[c["metric"]]))


def summaries(doc: Doc, platform: str | None = None) -> list[dict[str, Any]]:
    return [s for s in doc["platform_summaries"] if platform is None or s["platform"] == platform]


def flagged(doc: Doc, platform: str | None = None) -> list[dict[str, Any]]:
    return [f for f in doc["flagged"] if platform is None or f["platform"] == platform]


def flagged_by_scope(doc: Doc) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    """The flagged list in groups of one (platform, rule id), a platform's
    summaries (rule id None) last among its own, in the document's order."""
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for f in doc["flagged"]:
        groups.setdefault((f["platform"], f["rule_id"]), []).append(f)
    order = sorted(groups, key=lambda k: (k[0], k[1] is None, k[1] or ""))
    return [(p, r, groups[(p, r)]) for p, r in order]


def _cells(doc: Doc, platform: str, rule_id: str) -> dict[str, dict[str, Any]]:
    return {c["account_class"]: c for c in doc["cells"] if c["platform"] == platform and c["rule_id"] == rule_id}


def _groups(cells: Mapping[str, Any], compared: Mapping[str, Any]) -> list[str]:
    """Rows in a fixed order: each public class, political accounts together, then the reference."""
    public = [c for c in ACCOUNT_CLASSES if c in cells and c != REFERENCE]
    together = [POLITICAL_ANY] if POLITICAL_ANY in compared else []
    return public + together + ([REFERENCE] if REFERENCE in cells else [])


@dataclass(frozen=True)
class Chart:
    """One chart's numbers: a CSV header and rows, and how to draw it."""

    name: str
    title: str
    desc: str
    heading: list[str]
    header: list[str]
    rows: list[list[Any]]
    draw: Callable[[int], str]  # the SVG, drawn for a width
    #: The numbers in words, for the page's table (a header row, then rows).
    table: list[list[str]]

    def svg(self, width: int) -> str:
        return self.draw(width)

    def csv(self) -> str:
        return charts.csv_text(self.header, self.rows)


def _where(doc: Doc, names: Mapping[str, str], platform: str, rule_id: str | None) -> list[str]:
    cp = doc["checkpoint"]
    name = names.get(platform, platform)
    where = f"{name} · {platform}" + (f" · rule {rule_id}" if rule_id else "")
    # The drawn heading abbreviates the root hash; the desc and the CSV give it whole.
    return [where, f"Log {cp['origin']} at tree size {cp['tree_size']} (root {cp['root_hash'][:10]}…)"]


def _checkpoint_columns(doc: Doc) -> list[Any]:
    cp = doc["checkpoint"]
    return [cp["origin"], cp["tree_size"], cp["root_hash"]]


CHECKPOINT_HEADER = ["origin", "tree_size", "root_hash"]


def rate_chart(doc: Doc, names: Mapping[str, str], platform: str, rule_id: str, metric: str) -> Chart | None:
    """A rate by account class under one rule, with Wilson intervals (None: no such rule)."""
    cells = _cells(doc, platform, rule_id)
    if not cells:
        return None
    compared = {c["group"]: c for c in comparisons(doc, platform, rule_id) if c["metric"] == metric}
    title, axis = RATE_CHARTS[metric]
    rows, drawn = [], []
    for g in _groups(cells, compared):
        rate = compared[g]["group_rate"] if g == POLITICAL_ANY else cells[g][metric]
        flag = bool(compared[g]["flagged"]) if g in compared else None
        rows.append([*_checkpoint_columns(doc), platform, rule_id, metric, g, *_rate_numbers(rate), flag])
        label = group_label(g) + (" · flagged" if flag else "")
        value = rate_text(rate) + {"low": ", few cases", "count_only": ", too few to chart"}.get(rate["size"], "")
        style = "reference" if g == REFERENCE else "group"
        drawn.append(charts.Interval(label, value, rate["estimate"], rate["lower"], rate["upper"], style))
    heading = [f"{title} by account class", *_where(doc, names, platform, rule_id)]
    words = "; ".join(f"{group_label(r[6])} {rate_text(_rate_of(r))}, {interval_text(_rate_of(r))}" for r in rows)
    desc = f"{title} ({RATE_DEFINITIONS[metric]}) with 95% Wilson intervals. {words}. {doc['checkpoint_sentence']}"
    header = [*CHECKPOINT_HEADER, "platform", "rule_id", "metric", "group", *RATE_HEADER, "flagged"]
    full_title = f"{title} by account class, {heading[1]}"

    def draw(width: int) -> str:
        return charts.interval_chart(full_title, desc, heading, drawn, axis, width)

    table = [["Account class", title, "95% interval", "Compared with ordinary users"]]
    table += [[group_label(r[6]), rate_text(_rate_of(r)), interval_text(_rate_of(r)), _flag_words(r[-1])] for r in rows]
    return Chart(metric, full_title, desc, heading, header, rows, draw, table)


def _flag_words(flag: bool | None) -> str:
    return "reference" if flag is None else "flagged" if flag else "not flagged"


RATE_HEADER = ["events", "cases", "estimate", "lower", "upper", "size"]


def _rate_numbers(rate: Mapping[str, Any]) -> list[Any]:
    return [rate[k] for k in RATE_HEADER]


def _rate_of(row: Sequence[Any]) -> dict[str, Any]:
    """The rate back from a rate chart's CSV row."""
    return dict(zip(RATE_HEADER, row[7:13], strict=True))


#: Times in whole seconds (quantiles may be fractional: type-7 interpolation).
TIME_HEADER = ["n", *(f"{q}_seconds" for q in ("p10", "p25", "p50", "p75", "p90", "median_lower", "median_upper"))]


def time_chart(doc: Doc, names: Mapping[str, str], platform: str, rule_id: str) -> Chart | None:
    """Quantiles of the time to decision by account class under one rule."""
    cells = _cells(doc, platform, rule_id)
    if not cells:
        return None
    compared = {c["group"]: c for c in comparisons(doc, platform, rule_id) if c["metric"] == TIME_CHART}
    rows, drawn = [], []
    for g in _groups(cells, compared):
        t = compared[g]["group_time"] if g == POLITICAL_ANY else cells[g][TIME_CHART]
        q, m = t["quantiles"], t["median"]
        quantiles = None if q is None else (q["p10"], q["p25"], q["p50"], q["p75"], q["p90"])
        numbers = [t["n"], *(quantiles or [None] * 5), *((m["lower"], m["upper"]) if m else (None, None))]
        flag = bool(compared[g]["flagged"]) if g in compared else None
        rows.append([*_checkpoint_columns(doc), platform, rule_id, g, *numbers, flag])
        value = f"{t['n']} decisions, too few" if q is None else f"median {duration(q['p50'])}, {t['n']} decisions"
        label = group_label(g) + (" · flagged" if flag else "")
        drawn.append(charts.Spread(label, value, quantiles, "reference" if g == REFERENCE else "group"))
    heading = ["Time from flag to decision by account class", *_where(doc, names, platform, rule_id)]
    words = "; ".join(d.label + ": " + (_quantile_words(d.quantiles) if d.quantiles else d.value) for d in drawn)
    desc = f"Percentiles 10 to 90 of the time from flag to decision. {words}. {doc['checkpoint_sentence']}"
    header = [*CHECKPOINT_HEADER, "platform", "rule_id", "group", *TIME_HEADER, "flagged"]
    full_title = f"Time to decision by account class, {heading[1]}"

    def draw(width: int) -> str:
        return charts.spread_chart(full_title, desc, heading, drawn, "time from flag to decision", width)

    table = [["Account class", "Decisions", "p10", "p25", "Median (95% interval)", "p75", "p90"]]
    table += [[group_label(r[5]), str(r[6]), *_time_words(r[7:14])] for r in rows]
    return Chart(TIME_CHART, full_title, desc, heading, header, rows, draw, table)


def _time_words(numbers: Sequence[Any]) -> list[str]:
    p10, p25, p50, p75, p90, lo, hi = numbers
    if p50 is None:
        return ["too few", "", "", "", ""]
    return [
        duration(p10),
        duration(p25),
        f"{duration(p50)} ({duration(lo)} to {duration(hi)})",
        duration(p75),
        duration(p90),
    ]


def _quantile_words(q: Sequence[float]) -> str:
    return ", ".join(f"p{p} {duration(v)}" for p, v in zip((10, 25, 50, 75, 90), q, strict=True))


MONTH_GROUPS = (POLITICAL_ANY, REFERENCE)


def monthly_chart(doc: Doc, names: Mapping[str, str], platform: str) -> Chart | None:
    """The exemption rate by month of decision, political accounts and ordinary users."""
    months = [m for m in doc["monthly"] if m["platform"] == platform]
    if not months:
        return None
    rows = [
        [*_checkpoint_columns(doc), platform, m["month"], g, *_rate_numbers(m[g])] for m in months for g in MONTH_GROUPS
    ]
    series = [
        charts.Series(
            group_label(g) if g == REFERENCE else "Political accounts",
            [None if m[g]["estimate"] is None else (m[g]["estimate"], m[g]["lower"], m[g]["upper"]) for m in months],
            "reference" if g == REFERENCE else "group",
        )
        for g in MONTH_GROUPS
    ]
    heading = ["Exemption rate by month of decision", *_where(doc, names, platform, None)]
    words = "; ".join(
        f"{m['month']}: political accounts {rate_text(m[POLITICAL_ANY])}, ordinary users {rate_text(m[REFERENCE])}"
        for m in months
    )
    desc = (
        "Exemptions applied / violations found, by month of decision, with 95% Wilson intervals (months with "
        f"fewer than 10 violations found are not charted). {words}. {doc['checkpoint_sentence']}"
    )
    header = [*CHECKPOINT_HEADER, "platform", "month", "group", *RATE_HEADER]
    full_title = f"Exemption rate by month, {heading[1]}"
    labels = [m["month"] for m in months]

    def draw(width: int) -> str:
        axis = "month of decision"
        return charts.series_chart(full_title, desc, heading, labels, series, axis, width)

    table = [["Month", "Political accounts", "95% interval", "Ordinary users", "95% interval"]]
    table += [[m["month"], *(w for g in MONTH_GROUPS for w in (rate_text(m[g]), interval_text(m[g])))] for m in months]
    return Chart(MONTHLY_CHART, full_title, desc, heading, header, rows, draw, table)


def chart(doc: Doc, names: Mapping[str, str], platform: str, rule_id: str | None, name: str) -> Chart | None:
    """The chart ``name`` (None: no such chart, or nothing to chart)."""
    if name == MONTHLY_CHART:
        return monthly_chart(doc, names, platform) if rule_id is None else None
    if rule_id is None:
        return None
    if name in RATE_CHARTS:
        return rate_chart(doc, names, platform, rule_id, name)
    if name == TIME_CHART:
        return time_chart(doc, names, platform, rule_id)
    return None


# Findings first: the flagged comparisons as one-line headlines ---------------

#: What the numerator and denominator of each rate count, in the feed's
#: filters: the records behind a rate are the decisions in its denominator.
DENOMINATOR_FILTERS: dict[str, dict[str, str]] = {
    "exemption_rate": {"violation_found": "true"},
    "adverse_action_rate": {"violation_found": "true"},
}


@dataclass(frozen=True)
class Headline:
    """One flagged comparison in a line: who, which rule, the two figures, the ratio."""

    number: int  # its place in the document's ``flagged`` list, from 1
    platform: str
    platform_name: str
    rule_id: str | None
    metric: str
    group: str
    group_value: str
    reference_value: str
    ratio: str
    text: str

    def feed_args(self, group: str) -> dict[str, str]:
        """The feed filters that list the current versions of the decisions
        this comparison counted for ``group`` (the compared group or the
        reference), under the same rule."""
        args = {"platform": self.platform, "account_class": "political" if group == POLITICAL_ANY else group}
        if self.rule_id is not None:
            args["rule_id"] = self.rule_id
        # ``direct``: the decisions themselves, not the appeals found through them.
        return args | DENOMINATOR_FILTERS.get(self.metric, {}) | {"current": "true", "direct": "true"}


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.1f}×"


def _figures(c: Mapping[str, Any]) -> tuple[str, str, str]:
    """The group's and the reference's figure in words, and their ratio."""
    if c["metric"] == TIME_CHART:
        g, r = (c[k]["median"] for k in ("group_time", "reference_time"))
        g_est, r_est = (m["estimate"] if m else None for m in (g, r))
        return (f"median {duration(g_est)}", f"median {duration(r_est)}", _ratio(g_est, r_est))
    if "group_rate" in c:
        g, r = c["group_rate"], c["reference_rate"]
        return rate_text(g), rate_text(r), _ratio(g["estimate"], r["estimate"])
    # The distribution of actions: the sentence gives the largest gap.
    return "see the sentence", "see the sentence", "—"


def headlines(doc: Doc, names: Mapping[str, str]) -> list[Headline]:
    """The document's flagged comparisons as headlines, in its order."""
    out = []
    for i, f in enumerate(doc["flagged"], start=1):
        c = doc[f["section"]][f["index"]]
        name = names.get(f["platform"], f["platform"])
        group_value, reference_value, times = _figures(c)
        who = group_label(f["group"])
        where = f"rule {f['rule_id']}" if f["rule_id"] else "all its rules together"
        metric = COMPARISON_METRICS[f["metric"]].lower()
        text = f"{name}, {where}: {metric} of {who.lower()} {group_value}, of ordinary users {reference_value}"
        out.append(
            Headline(
                i,
                f["platform"],
                name,
                f["rule_id"],
                f["metric"],
                f["group"],
                group_value,
                reference_value,
                times,
                text + (f" ({times})" if times != "—" else ""),
            )
        )
    return out


def flagged_under_rules(doc: Doc, platform: str, metric: str) -> list[dict[str, Any]]:
    """The platform's rule-level comparisons of ``metric`` that are flagged."""
    return [
        f for f in doc["flagged"] if f["platform"] == platform and f["metric"] == metric and f["rule_id"] is not None
    ]


#: The measures of a platform's summary, in order: every measure a comparison
#: can carry, so that each flagged group under a single rule is named (issue
#: 15). The document compares the rates across a platform's rules; the
#: actions taken and time to decision only rule by rule.
SUMMARY_METRICS = tuple(COMPARISON_METRICS)


def flagged_number(doc: Doc, item: Mapping[str, Any]) -> int:
    """The place of ``item`` in the document's flagged list, from 1 (the headlines' numbering)."""
    return int(doc["flagged"].index(item)) + 1
