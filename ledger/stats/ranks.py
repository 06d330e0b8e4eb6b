"""Time to decision: quantiles, an interval for the median, Mann-Whitney U.

Values are numbers (whole seconds in the ledger). Nothing here assumes a
distribution: quantiles interpolate order statistics, the median interval
uses binomial order-statistic coverage, and the test uses ranks.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ledger.errors import InvalidInput
from ledger.stats.distributions import normal_sf
from ledger.stats.results import Significance

Number = int | float

#: The quantiles reported for time to decision, in percent.
PERCENTILES = (10, 25, 50, 75, 90)


def _checked(values: Sequence[Number], name: str) -> list[Number]:
    out = list(values)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
            raise InvalidInput(f"{name} must be finite numbers, not {v!r}")
    return out


def percentile(sorted_values: Sequence[Number], percent: int) -> float:
    """Return the type-7 sample quantile at ``percent`` of sorted values.

    Hyndman & Fan, "Sample quantiles in statistical packages", Am. Stat. 50
    (1996) 361-365, definition 7 (R's default and numpy's "linear"): with
    h = (n - 1)·percent/100, x[⌊h⌋] + (h - ⌊h⌋)(x[⌊h⌋ + 1] - x[⌊h⌋]).
    h is exact (a fraction), so the order statistics chosen never depend on
    rounding; for integer values the result is the correctly rounded value.
    """
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise InvalidInput(f"percent must be an integer in 0..100, not {percent!r}")
    n = len(sorted_values)
    if n == 0:
        raise InvalidInput("no values")
    h = Fraction((n - 1) * percent, 100)
    j = math.floor(h)
    low = sorted_values[j]
    if j + 1 >= n or h == j:
        return float(low)
    high = sorted_values[j + 1]
    return float(Fraction(low) + (h - j) * (Fraction(high) - Fraction(low)))


def quantiles(values: Sequence[Number], percents: Sequence[int] = PERCENTILES) -> tuple[float, ...]:
    """Return the type-7 quantiles of ``values`` (any order) at ``percents``."""
    ordered = sorted(_checked(values, "values"))
    return tuple(percentile(ordered, p) for p in percents)


@dataclass(frozen=True)
class MedianInterval:
    """The sample median with a distribution-free interval [x_(l), x_(u)].

    ``lower_rank`` and ``upper_rank`` are the 1-based order statistics used
    (u = n + 1 - l) and ``coverage`` = P(l ≤ B < u) for B ~ Binomial(n, ½),
    the exact probability that the interval covers the population median
    of a continuous distribution (at least that with ties).
    """

    estimate: float
    lower: float | None
    upper: float | None
    lower_rank: int | None
    upper_rank: int | None
    coverage: float | None
    notes: tuple[str, ...] = ()


def median_interval(values: Sequence[Number], level: float = 0.95) -> MedianInterval:
    """Return the median and the narrowest symmetric order-statistic interval
    with coverage at least ``level``.

    Conover, Practical Nonparametric Statistics, 3rd ed. (1999) §3.2: the
    largest l with P(B ≤ l - 1) ≤ (1 - level)/2, B ~ Binomial(n, ½). The
    binomial tail is summed from the mode outward in ratios of exact
    integers, needing only O(√n) terms.
    """
    if not 0.0 < level < 1.0:
        raise InvalidInput(f"the level must lie strictly between 0 and 1, not {level}")
    ordered = sorted(_checked(values, "values"))
    if not ordered:
        raise InvalidInput("no values")
    return median_interval_sorted(ordered, level)


def median_interval_sorted(ordered: Sequence[Number], level: float = 0.95) -> MedianInterval:
    """:func:`median_interval` of values already sorted and checked (finite
    numbers, at least one; ``level`` in (0, 1)), without copying them: the
    evenness statistics call it on lists of up to a million times."""
    n = len(ordered)
    median = percentile(ordered, 50)
    first, tails = _binomial_half_lower_tails(n)
    alpha = (1.0 - level) / 2.0
    # tails[i] = P(B ≤ first + i), and P(B ≤ j) is negligible for j < first.
    # The interval [x_(l), x_(n+1-l)] misses the median with probability
    # 2·P(B ≤ l - 1); take the largest l keeping that within 1 - level.
    lower_rank = first
    for i, p in enumerate(tails):
        if p > alpha:
            break
        lower_rank = first + i + 1
    if lower_rank == 0:
        # At 95% this is n <= 5: even [x_(1), x_(5)] covers only 1 - 2/32.
        reason = f"{n} values: no order-statistic interval reaches {level:.0%}"
        return MedianInterval(median, None, None, None, None, None, (reason,))
    upper_rank = n + 1 - lower_rank
    missed = tails[lower_rank - 1 - first] if lower_rank > first else 0.0
    coverage = 1.0 - 2.0 * missed
    return MedianInterval(
        median, float(ordered[lower_rank - 1]), float(ordered[upper_rank - 1]), lower_rank, upper_rank, coverage
    )


def _binomial_half_lower_tails(n: int) -> tuple[int, list[float]]:
    """Return ``(first, tails)``: tails[i] = P(B ≤ first + i) for B ~
    Binomial(n, ½), up to the mode.

    Terms below 1e-30 of the mode are taken as zero, and ``first`` is the
    first j kept: they could not move a comparison with a tail of 2.5%.
    """
    mode = n // 2
    weights = [1.0]  # C(n, j)/C(n, mode) for j = mode, mode - 1, ...
    j = mode
    while j > 0 and weights[-1] > 1e-30:
        weights.append(weights[-1] * (j / (n - j + 1)))
        j -= 1
    weights.reverse()  # now for j = mode - len + 1 .. mode
    first = mode - len(weights) + 1
    # The whole distribution: twice the lower half, counting the centre once
    # (twice too when n is odd, as n - mode = mode + 1 then mirrors mode).
    half = math.fsum(weights[:-1])
    total = 2.0 * half + (2.0 if n % 2 else 1.0) * weights[-1]
    tails = []
    running = 0.0
    for w in weights:
        running += w
        tails.append(running / total)
    return first, tails


@dataclass(frozen=True)
class MannWhitney:
    """The Mann-Whitney U test of group 1 against group 2.

    ``u1`` counts pairs (x, y) with x > y, ties as ½; ``cles`` = U1/(n1·n2),
    the common-language effect size P(X > Y) + ½P(X = Y) (McGraw & Wong,
    Psychol. Bull. 111 (1992) 361-365); ``z`` the continuity-corrected
    normal deviate of max(U1, U2). ``test.statistic`` is U1, as scipy's.
    """

    u1: float
    cles: float
    z: float | None
    test: Significance


def mann_whitney(group1: Sequence[Number], group2: Sequence[Number]) -> MannWhitney:
    """Return the two-sided Mann-Whitney U test, normal approximation with
    tie and continuity corrections.

    Mann & Whitney, Ann. Math. Stat. 18 (1947) 50-60; the tie-corrected
    variance n1 n2/12·((n + 1) - Σ(t³ - t)/(n(n - 1))) (Lehmann,
    Nonparametrics (1975) §1.4). As scipy.stats.mannwhitneyu(method=
    "asymptotic", use_continuity=True): z = (max(U1, U2) - n1 n2/2 - ½)/sigma,
    p = 2·P(Z > z) capped at 1. When every value is tied sigma = 0 and p = 1.
    """
    x, y = sorted(_checked(group1, "group 1")), sorted(_checked(group2, "group 2"))
    if not x or not y:
        raise InvalidInput("both groups need at least one value")
    return mann_whitney_sorted(x, y, tie_term(y))


def tie_term(ordered: Sequence[Number]) -> int:
    """Σ(t³ - t) over the runs of t equal values of sorted values.

    One binary search per distinct value, so a million times to decision
    with a few thousand distinct values cost a few thousand steps.
    """
    total, i, n = 0, 0, len(ordered)
    while i < n:
        j = bisect_right(ordered, ordered[i], i)
        t = j - i
        total += t * t * t - t
        i = j
    return total


def mann_whitney_sorted(xs: Sequence[Number], ys: Sequence[Number], ys_tie_term: int) -> MannWhitney:
    """:func:`mann_whitney` of sorted, checked, non-empty groups, given
    ``tie_term(ys)``, in O(n1 log n2).

    The evenness statistics compare a reference group of up to a million
    times with up to eight groups: instead of ranking the pooled sample each
    time, the midrank sum of xs is counted with binary searches in ys, and
    the tie term is ys's plus the change the values of xs make to it. A tie
    block of t values starting at 0-based position b has midrank
    b + (t + 1)/2, so a block holding g values of xs adds g·(2b + t + 1) to
    twice the rank sum.
    """
    n1, n2 = len(xs), len(ys)
    twice_rank_sum, tie_sum = 0, ys_tie_term
    i = 0
    while i < n1:
        v = xs[i]
        j = bisect_right(xs, v, i)
        lo = bisect_left(ys, v)
        r = bisect_right(ys, v, lo) - lo
        g, t = j - i, j - i + r
        twice_rank_sum += g * (2 * (lo + i) + t + 1)
        tie_sum += (t * t * t - t) - (r * r * r - r)
        i = j
    n = n1 + n2
    # Twice U1 is an integer: midranks are halves.
    twice_u1 = twice_rank_sum - n1 * (n1 + 1)
    u1 = twice_u1 / 2
    pairs = n1 * n2
    cles = twice_u1 / (2 * pairs)
    method = "mann_whitney"
    variance = Fraction(pairs, 12) * (n + 1 - Fraction(tie_sum, n * (n - 1)))
    if variance == 0:
        test = Significance(method, u1, 1.0, notes=("every value is tied: the groups cannot be told apart",))
        return MannWhitney(u1, cles, None, test)
    # U - n1·n2/2 - ½ with U = max(U1, U2), halved from integers.
    twice_u = max(twice_u1, 2 * pairs - twice_u1)
    z = (twice_u - pairs - 1) / 2 / math.sqrt(variance)
    p = min(1.0, 2.0 * normal_sf(z))
    return MannWhitney(u1, cles, z, Significance(method, u1, p))


@dataclass(frozen=True)
class VanElteren:
    """The van Elteren test: Mann-Whitney U within strata, combined.

    ``cles`` is the within-stratum common-language effect size ΣU1_s/Σn1_s·n2_s:
    the share of (group, reference) pairs from the same stratum in which the
    group's value is larger, ties as ½. Only strata where both groups have a
    value contribute; ``strata`` counts them.
    """

    cles: float
    z: float | None
    strata: int
    test: Significance


def van_elteren(strata: Sequence[tuple[Sequence[Number], Sequence[Number]]]) -> VanElteren:
    """Return the two-sided van Elteren test of group 1 against group 2 across strata.

    van Elteren, Bull. Int. Stat. Inst. 37 (1960) 351-361 ("locally most
    powerful" weights 1/(n_s + 1)); Lehmann, Nonparametrics (1975) §3.3:
    T = Σ w_s·U1_s, E[T] = Σ w_s·n1_s·n2_s/2, Var[T] = Σ w_s²·Var[U1_s] with
    the tie-corrected variance of :func:`mann_whitney`, z = |T - E[T]|/√Var
    (no continuity correction: T is not an integer), p = 2·P(Z > z). A
    stratum holding values of one group only carries no information and is
    skipped. With one stratum the p-value is Mann-Whitney's without its
    continuity correction.
    """
    t_sum, e_sum, var_sum, u_sum, pair_sum, used = 0.0, 0.0, 0.0, 0.0, 0, 0
    for group1, group2 in strata:
        if not group1 or not group2:
            continue
        xs, ys = sorted(_checked(group1, "group 1")), sorted(_checked(group2, "group 2"))
        mw = mann_whitney_sorted(xs, ys, tie_term(ys))
        n1, n2 = len(xs), len(ys)
        n = n1 + n2
        ties = tie_term(sorted(xs + ys))
        variance = n1 * n2 / 12 * (n + 1 - ties / (n * (n - 1)))
        w = 1 / (n + 1)
        t_sum += w * mw.u1
        e_sum += w * n1 * n2 / 2
        var_sum += w * w * variance
        u_sum += mw.u1
        pair_sum += n1 * n2
        used += 1
    if not used:
        raise InvalidInput("no stratum holds values of both groups")
    cles = u_sum / pair_sum
    if var_sum == 0:
        note = ("every value is tied within its stratum: the groups cannot be told apart",)
        return VanElteren(cles, None, used, Significance("van_elteren", t_sum, 1.0, notes=note))
    z = abs(t_sum - e_sum) / math.sqrt(var_sum)
    return VanElteren(cles, z, used, Significance("van_elteren", t_sum, min(1.0, 2.0 * normal_sf(z))))
