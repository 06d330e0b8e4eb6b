"""The demo's cases: which decisions exist and how they came out.

Outcomes are drawn so that the realised rates equal the designed ones up to
rounding, for every account class and for ``political_any`` alike: sampling
noise then cannot make a disparity that was not planted, nor hide one that
was. Two devices do it:

* :func:`allocate` gives each value of a mix a count within one of ``n·p``
  (systematic sampling with a random start), in random order;
* :func:`spread` walks a cell's cases in an order where every group the
  statistics compare is one run (political classes together, then by
  severity, then by class; random order within that) and deals outcomes
  like a smooth weighted round-robin, so every run of consecutive cases
  gets each outcome about as often as its probabilities say (within 1.5
  cases).

Which case gets which outcome stays random. The cells, in order:

1. platform → rule → account class (the platform's class mix): allocate;
2. (platform, rule) → severity (the rule's mix; the Simpson plant
   replaces it for political classes): spread;
3. (platform, rule), sorted as :func:`design` says → violation found;
   then, among violations, exempted / adverse action / other action in one
   deal (the exemption plant raises the first), then the exemption type
   and the action itself (by severity; from the exempt mix when exempted;
   mostly ``none`` when no violation was found): spread;
4. (platform, rule, class) → time from flag to decision, one draw from each
   of n equal-probability slices of a log-normal (the timing plant
   lengthens it).

Everything else about a case (who, when, how it was detected and
reviewed) is drawn plainly from ``rng`` in :mod:`demo.records`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from statistics import NormalDist
from typing import TypeVar

from demo.cast import CHIRP_CIVIC, EXEMPT_ACTIONS, FACESPACE_HATE, NO_VIOLATION_ACTIONS, PLATFORMS, Platform, Rule
from ledger.records.vocab import ACCOUNT_CLASSES, POLITICAL_CLASSES

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def ts(text: str) -> int:
    """Unix seconds of an RFC 3339 UTC time or a YYYY-MM-DD date (midnight UTC)."""
    if len(text) == 10:
        text += "T00:00:00Z"
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp())


#: Flags and decisions fall between these; every other time (but action_ends_at) before HORIZON.
START = ts("2026-05-01T00:00:00Z")
END = ts("2026-11-20T23:59:59Z")
HORIZON = ts("2026-11-25T00:00:00Z")
HOUR, DAY = 3600, 86400

# The planted disparities (see demo/__init__.py).
#: demo-chirp, CHIRP_CIVIC: P(exemption | violation) for political classes, and their exemption types.
PLANT_EXEMPTION = 0.36
PLANT_EXEMPTION_TYPES = {"newsworthiness": 85, "public_interest": 10, "other": 5}
#: demo-facespace, FACESPACE_HATE: the severity mix of political classes' cases.
PLANT_SEVERITY = (0.10, 0.20, 0.45, 0.25)
#: demo-tubeview: time to decision of journalists' cases, as a multiple of everyone else's.
PLANT_SLOWER = 3.0
#: Spread of log(time to decision); the median is the platform's.
TIME_SIGMA = 1.1

POLITICAL = frozenset(POLITICAL_CLASSES)
SEVERITIES = ("low", "medium", "high", "critical")
#: The adverse actions of the evenness statistics (issue 5, method version 1).
ADVERSE = frozenset(("remove_content", "temporary_suspension", "permanent_ban", "geo_block"))
#: Political classes first, ordinary users last: each class, and political_any, is one run of a sorted cell.
CLASS_ORDER = {cls: i for i, cls in enumerate(ACCOUNT_CLASSES)}


def allocate(rng: random.Random, n: int, mix: Mapping[T, float]) -> list[T]:
    """``n`` values of ``mix`` in random order, value v about ``n · p(v)`` times.

    Systematic sampling: the points (i + u)/n, u uniform, cut by the mix's
    cumulative weights. Each count is within 1 of n · p(v) and its
    expectation is exactly n · p(v).
    """
    values = [v for v, w in mix.items() if w > 0]
    cuts = list(accumulate(mix[v] for v in values))
    total, u = cuts[-1], rng.random()
    out, j = [], 0
    for i in range(n):
        x = (i + u) / n * total
        while j < len(cuts) - 1 and x >= cuts[j]:
            j += 1
        out.append(values[j])
    rng.shuffle(out)
    return out


def spread(rng: random.Random, mixes: list[Mapping[T, float]]) -> list[T]:
    """One value for each item, item i's drawn from ``mixes[i]``, dealt so that
    every run of consecutive items gets each value about as often as the
    mixes expect (within 1.5 in practice).

    A smooth weighted round-robin: each value earns its probability in
    credit at every item, and the item goes to the value with the most
    credit, which pays 1. The starting credits are random.
    """
    values = list(dict.fromkeys(v for m in mixes for v in m))
    credit = {v: rng.random() - 0.5 for v in values}
    out = []
    for mix in mixes:
        total = sum(mix.values())
        for v, w in mix.items():
            credit[v] += w / total
        best = max((v for v in values if mix.get(v, 0) > 0), key=credit.__getitem__)
        credit[best] -= 1
        out.append(best)
    return out


def group(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items by key, keys and items in first-seen order (so results are deterministic)."""
    out: dict[K, list[T]] = {}
    for it in items:
        out.setdefault(key(it), []).append(it)
    return out


@dataclass
class Case:
    """One decision as designed: its platform, rule, account class and outcome."""

    platform: Platform
    rule: Rule
    cls: str = ""
    severity: str = ""
    violation: bool = False
    exempt: bool = False
    exemption_type: str | None = None
    action: str = "none"
    ttd: int = 0  # seconds from flagged_at to decided_at
    target: str | None = None  # target.class, for rules marked as abuse (demo/protection.py)
    reporter: str | None = None  # reporter_class when a user reported it (demo/protection.py)

    @property
    def planted_exemption(self) -> bool:
        return self.platform.slug == "demo-chirp" and self.rule.id == CHIRP_CIVIC and self.cls in POLITICAL

    @property
    def planted_severity(self) -> bool:
        return self.platform.slug == "demo-facespace" and self.rule.id == FACESPACE_HATE and self.cls in POLITICAL

    @property
    def planted_slower(self) -> bool:
        return self.platform.slug == "demo-tubeview" and self.cls == "journalist"


def design(rng: random.Random, n: int) -> list[Case]:
    """``n`` decisions across the demo platforms, outcomes drawn cell by cell.

    Returned sorted by platform, rule, class group (political classes
    together), severity and class, in random order within that: each of
    (political_any, severity), (class, severity), political_any and every
    non-political class is then one run of its (platform, rule) cell.
    """
    cases = [Case(p, p.rules[0]) for p in allocate(rng, n, {p: p.weight for p in PLATFORMS})]
    cases.sort(key=lambda c: PLATFORMS.index(c.platform))
    for (platform,), cell in group(cases, lambda c: (c.platform,)).items():
        for c, rule in zip(cell, allocate(rng, len(cell), {r: r.weight for r in platform.rules}), strict=True):
            c.rule = rule
    for (platform, _), cell in group(cases, lambda c: (c.platform, c.rule.id)).items():
        for c, cls in zip(cell, allocate(rng, len(cell), platform.classes), strict=True):
            c.cls = cls
    tiebreak = {id(c): rng.random() for c in cases}

    def order(c: Case) -> tuple[int, int, int, int, int, float]:
        # Political classes form one group; before severities are dealt they are all "low".
        grp = 0 if c.cls in POLITICAL else CLASS_ORDER[c.cls]
        sev = SEVERITIES.index(c.severity) if c.severity else 0
        where = PLATFORMS.index(c.platform), c.platform.rules.index(c.rule)
        return (*where, grp, sev, CLASS_ORDER[c.cls], tiebreak[id(c)])

    cases.sort(key=order)
    for cell in group(cases, lambda c: (c.platform.slug, c.rule.id)).values():
        for c, sev in zip(cell, _deal(rng, cell, _severity_mix), strict=True):
            c.severity = sev
    cases.sort(key=order)
    for cell in group(cases, lambda c: (c.platform.slug, c.rule.id)).values():
        _outcomes(rng, cell)
    for cell in group(cases, lambda c: (c.platform.slug, c.rule.id, c.cls)).values():
        _times(rng, cell)
    return cases


def _deal(rng: random.Random, cases: list[Case], mix: Callable[[Case], Mapping[T, float]]) -> list[T]:
    return spread(rng, [mix(c) for c in cases])


def _severity_mix(c: Case) -> dict[str, float]:
    return dict(zip(SEVERITIES, PLANT_SEVERITY if c.planted_severity else c.rule.severity, strict=True))


def _outcomes(rng: random.Random, cell: list[Case]) -> None:
    """Violation, exemption and action within one (platform, rule) cell sorted by class and severity."""
    rule = cell[0].rule
    for c, v in zip(cell, _deal(rng, cell, lambda c: {True: rule.violation, False: 1 - rule.violation}), strict=True):
        c.violation = v
    found = [c for c in cell if c.violation]
    # One deal decides exempted / adverse action / lenient action, so that each
    # of the three, adverse-action rates above all, is even across classes.
    outcome = _deal(rng, found, _violation_outcome)
    for c, o in zip(found, outcome, strict=True):
        c.exempt = o == "exempt"
    exempt = [c for c in found if c.exempt]
    types = _deal(rng, exempt, lambda c: PLANT_EXEMPTION_TYPES if c.planted_exemption else rule.exemption_types)
    for c, t in zip(exempt, types, strict=True):
        c.exemption_type = t
    for members, mix in (
        ([c for c, o in zip(found, outcome, strict=True) if o == "adverse"], lambda c: _part(c, adverse=True)),
        ([c for c, o in zip(found, outcome, strict=True) if o == "lenient"], lambda c: _part(c, adverse=False)),
        (exempt, lambda c: EXEMPT_ACTIONS),
        ([c for c in cell if not c.violation], lambda c: NO_VIOLATION_ACTIONS),
    ):
        for c, action in zip(members, _deal(rng, members, mix), strict=True):
            c.action = action


def _part(c: Case, adverse: bool) -> dict[str, float]:
    """The adverse (or the other) actions of the case's rule and severity."""
    return {a: w for a, w in c.rule.actions[c.severity].items() if (a in ADVERSE) == adverse}


def _violation_outcome(c: Case) -> dict[str, float]:
    p = PLANT_EXEMPTION if c.planted_exemption else c.rule.exemption
    adverse = sum(_part(c, adverse=True).values()) / sum(c.rule.actions[c.severity].values())
    return {"exempt": p, "adverse": (1 - p) * adverse, "lenient": (1 - p) * (1 - adverse)}


_NORMAL = NormalDist()


def _times(rng: random.Random, cell: list[Case]) -> None:
    """Times to decision: one draw from each of n equal-probability slices of a log-normal."""
    n = len(cell)
    median = cell[0].platform.median_hours * HOUR * (PLANT_SLOWER if cell[0].planted_slower else 1.0)
    slices = list(range(n))
    rng.shuffle(slices)
    for c, k in zip(cell, slices, strict=True):
        q = min(max((k + rng.random()) / n, 0.003), 0.997)
        c.ttd = max(60, round(median * math.exp(TIME_SIGMA * _NORMAL.inv_cdf(q))))
