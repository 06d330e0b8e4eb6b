"""Rates and their comparison: Wilson, Newcombe and Katz intervals.

All intervals are two-sided 95% (z = :data:`Z95`). A rate is k of n; a
comparison is a :class:`Table2x2` read as "group 1 against group 2".
"""

from __future__ import annotations

import math

from ledger.errors import InvalidInput
from ledger.stats.distributions import Z95
from ledger.stats.results import Estimate, Table2x2, check_count


def wilson_interval(k: int, n: int) -> Estimate:
    """Return k/n with its Wilson score 95% interval.

    Wilson, "Probable inference, the law of succession, and statistical
    inference", JASA 22 (1927) 209-212; without continuity correction, as
    Newcombe (1998a, Statist. Med. 17:857, method 3). The bounds are the
    roots p of (k/n - p)² = z² p(1 - p)/n. The upper root is taken directly
    and the lower one from the product of the roots, k²/(n(n + z²)), so the
    lower bound has no cancellation and is exactly 0.0 when k = 0; the upper
    bound is exactly 1.0 when k = n. With n = 0 there is no rate.
    """
    check_count("k", k)
    check_count("n", n)
    if k > n:
        raise InvalidInput(f"k ({k}) cannot exceed n ({n})")
    if n == 0:
        return Estimate(None, None, None, ("no cases",))
    z2 = Z95 * Z95
    denominator = n + z2
    centre = (k + z2 / 2) / denominator
    half_width = Z95 * math.sqrt(k * (n - k) / n + z2 / 4) / denominator
    upper = 1.0 if k == n else centre + half_width
    lower = 0.0 if k == 0 else k * k / (n * denominator * (centre + half_width))
    return Estimate(k / n, lower, upper)


def newcombe_difference(table: Table2x2) -> Estimate:
    """Return the risk difference p1 - p2 with Newcombe's hybrid score interval.

    Newcombe, "Interval estimation for the difference between independent
    proportions: comparison of eleven methods", Statist. Med. 17 (1998)
    873-890, method 10: with (l_i, u_i) the Wilson intervals of p_i,

        lower = d - √((p1 - l1)² + (u2 - p2)²)
        upper = d + √((u1 - p1)² + (p2 - l2)²).

    Undefined (all ``None``) when either group has no cases.
    """
    if table.n1 == 0 or table.n2 == 0:
        return Estimate(None, None, None, ("a group has no cases",))
    p1, l1, u1 = _rate(table.a, table.n1)
    p2, l2, u2 = _rate(table.c, table.n2)
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Estimate(difference, max(-1.0, lower), min(1.0, upper))


def _rate(k: int, n: int) -> tuple[float, float, float]:
    w = wilson_interval(k, n)
    if w.estimate is None or w.lower is None or w.upper is None:
        raise AssertionError("a Wilson interval with cases must be defined")
    return w.estimate, w.lower, w.upper


def katz_risk_ratio(table: Table2x2) -> Estimate:
    """Return the risk ratio (a/n1)/(c/n2) with the Katz log interval.

    Katz, Baptista, Azen & Pike, "Obtaining confidence intervals for the
    risk ratio in cohort studies", Biometrics 34 (1978) 469-474:
    exp(log RR ± z·√(1/a - 1/n1 + 1/c - 1/n2)).

    Zero cells, by a fixed rule (no 0.5 added to any cell): the log scale
    has no finite standard error when a group has no events, so Katz gives
    only the bound that holds trivially.

    * a = 0 < c: estimate 0.0, lower 0.0, upper ``None``;
    * c = 0 < a: estimate ``math.inf``, lower ``None``, upper ``math.inf``;
    * a = c = 0: no estimate (0/0), both bounds ``None``;
    * a group with no cases: nothing is defined.
    """
    a, c, n1, n2 = table.a, table.c, table.n1, table.n2
    if n1 == 0 or n2 == 0:
        return Estimate(None, None, None, ("a group has no cases",))
    if a == 0 and c == 0:
        return Estimate(None, None, None, ("no events in either group: the ratio is 0/0",))
    if a == 0:
        return Estimate(0.0, 0.0, None, ("no events in group 1: no upper bound on the log scale",))
    if c == 0:
        return Estimate(math.inf, None, math.inf, ("no events in group 2: no lower bound on the log scale",))
    ratio = (a * n2) / (c * n1)
    # 1/a - 1/n1 as (n1 - a)/(a·n1): one correctly rounded division, no cancellation.
    se = math.sqrt((n1 - a) / (a * n1) + (n2 - c) / (c * n2))
    log_ratio = math.log(ratio)
    return Estimate(ratio, math.exp(log_ratio - Z95 * se), math.exp(log_ratio + Z95 * se))
