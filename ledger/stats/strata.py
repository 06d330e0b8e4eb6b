"""Comparing two groups' rates across strata of 2x2 tables.

One call, :func:`compare_strata`, does what issue 5 prescribes: drop strata
with a zero margin; compute the Mantel-Fleiss criterion; test association
with the Cochran-Mantel-Haenszel chi-square (1 df, no continuity
correction) when the criterion is at least 5, else with the exact
conditional test; estimate the common odds ratio by Mantel-Haenszel with
the Robins-Breslow-Greenland interval; and test heterogeneity of the odds
ratios by Breslow-Day (no Tarone adjustment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ledger.stats.distributions import Z95, chi2_sf, hypergeometric_log_weights, log_sum_exp
from ledger.stats.results import Estimate, Significance, Table2x2, not_computed
from ledger.stats.tables import RELATIVE_TOLERANCE

#: The CMH chi-square is trusted when the Mantel-Fleiss criterion reaches this.
MANTEL_FLEISS_MINIMUM = 5

#: Each stratum's distribution is cut where its log weight (relative to its
#: mode) falls below this: e^-800 is 0 in double precision, so nothing a
#: computation in doubles (R's included) could see is lost.
_EXACT_FLOOR = -800.0


@dataclass(frozen=True)
class StratifiedComparison:
    """The stratified comparison of group 1 with group 2.

    ``strata`` are the tables used; ``dropped`` the indexes (into the input)
    of those dropped for a zero margin. ``association`` is the CMH or the
    exact conditional test, as ``association.method`` says.
    """

    strata: tuple[Table2x2, ...]
    dropped: tuple[int, ...]
    mantel_fleiss: float | None
    association: Significance
    odds_ratio: Estimate
    heterogeneity: Significance


def compare_strata(tables: Sequence[Table2x2]) -> StratifiedComparison:
    """Return the stratified comparison of the tables (one per stratum)."""
    kept = tuple(t for t in tables if not t.has_zero_margin)
    dropped = tuple(i for i, t in enumerate(tables) if t.has_zero_margin)
    if not kept:
        reason = "no stratum has both groups and both outcomes"
        return StratifiedComparison(
            kept,
            dropped,
            None,
            not_computed("cmh_chi2", reason, 1),
            Estimate(None, None, None, (reason,)),
            not_computed("breslow_day", reason),
        )
    criterion = mantel_fleiss(kept)
    exact = criterion < MANTEL_FLEISS_MINIMUM
    association = exact_conditional_test(kept) if exact else cmh_test(kept)
    odds_ratio = mantel_haenszel_odds_ratio(kept)
    heterogeneity = _breslow_day(kept, odds_ratio.estimate)
    return StratifiedComparison(kept, dropped, float(criterion), association, odds_ratio, heterogeneity)


def _check(tables: Sequence[Table2x2]) -> None:
    if not tables:
        raise AssertionError("no strata")
    if any(t.has_zero_margin for t in tables):
        raise AssertionError("strata with a zero margin must be dropped first")


def mantel_fleiss(tables: Sequence[Table2x2]) -> Fraction:
    """Return the Mantel-Fleiss criterion, exactly.

    Mantel & Fleiss, "Minimum expected cell size requirements for the
    Mantel-Haenszel one-degree-of-freedom chi-square test and a related
    rapid procedure", Am. J. Epidemiol. 112 (1980) 129-134:
    min(Σ E(a_k) - Σ L_k, Σ U_k - Σ E(a_k)), where a_k ranges over
    [L_k, U_k] and E(a_k) = n1_k·m1_k/n_k.
    """
    _check(tables)
    expected = sum((Fraction(t.n1 * t.m1, t.n) for t in tables), Fraction(0))
    low = sum(t.a_range[0] for t in tables)
    high = sum(t.a_range[1] for t in tables)
    return min(expected - low, high - expected)


def cmh_test(tables: Sequence[Table2x2]) -> Significance:
    """Return the Cochran-Mantel-Haenszel chi-square test, 1 df, no continuity
    correction: (Σ a_k - Σ E_k)² / Σ V_k with the hypergeometric means and
    variances V_k = n1 n2 m1 m2 / (n²(n - 1)).

    Cochran, Biometrics 10 (1954) 417-451; Mantel & Haenszel, J. Natl.
    Cancer Inst. 22 (1959) 719-748. Summed in exact rational arithmetic.
    """
    _check(tables)
    deviation = sum((t.a - Fraction(t.n1 * t.m1, t.n) for t in tables), Fraction(0))
    variance = sum((Fraction(t.n1 * t.n2 * t.m1 * t.m2, t.n * t.n * (t.n - 1)) for t in tables), Fraction(0))
    statistic = float(deviation * deviation / variance)
    return Significance("cmh_chi2", statistic, chi2_sf(statistic, 1), 1)


def exact_conditional_test(tables: Sequence[Table2x2]) -> Significance:
    """Return the exact conditional test of conditional independence.

    Given every stratum's margins, S = Σ a_k is distributed as the
    convolution of the strata's hypergeometric distributions (Mehta, Patel
    & Gray, JASA 80 (1985) 969-973). Two-sided as R's
    ``mantelhaen.test(exact = TRUE)``: the p-value is the total probability
    of the values of S no more probable than the observed one, up to
    :data:`~ledger.stats.tables.RELATIVE_TOLERANCE`. ``statistic`` is S.
    """
    _check(tables)
    distribution = [1.0]
    start = 0
    for t in tables:
        first, logs = hypergeometric_log_weights(t.n1, t.n2, t.m1, floor=_EXACT_FLOOR)
        scale = log_sum_exp(logs)
        stratum = [math.exp(v - scale) for v in logs]
        distribution = _convolve(distribution, stratum)
        start += first
    observed = sum(t.a for t in tables)
    index = observed - start
    p_observed = distribution[index] if 0 <= index < len(distribution) else 0.0
    cut = p_observed * RELATIVE_TOLERANCE
    p = math.fsum(d for d in distribution if d <= cut)
    return Significance("exact_conditional", float(observed), min(1.0, p))


def _convolve(left: list[float], right: list[float]) -> list[float]:
    """The distribution of the sum of two independent variables, renormalised
    (as R's d2x2xk does) so rounding cannot drift the total away from 1."""
    out = [0.0] * (len(left) + len(right) - 1)
    for i, x in enumerate(left):
        if x == 0.0:
            continue
        for j, y in enumerate(right):
            out[i + j] += x * y
    total = math.fsum(out)
    return [v / total for v in out]


def mantel_haenszel_odds_ratio(tables: Sequence[Table2x2]) -> Estimate:
    """Return the Mantel-Haenszel common odds ratio R/S, R = Σ a d/n and
    S = Σ b c/n, with the Robins-Breslow-Greenland 95% log interval.

    Mantel & Haenszel (1959); Robins, Breslow & Greenland, "Estimators of
    the Mantel-Haenszel variance consistent in both sparse data and
    large-strata limiting models", Biometrics 42 (1986) 311-323:

        Var(log OR) = Σ P R_k / 2R² + Σ (P S_k + Q R_k) / 2RS + Σ Q S_k / 2S²

    with P = (a + d)/n, Q = (b + c)/n per stratum. Zero sums, by the same
    rule as :func:`~ledger.stats.rates.katz_risk_ratio`: R = 0 < S gives
    0.0 with bounds (0.0, None); S = 0 < R gives ``math.inf`` with bounds
    (None, ``math.inf``); R = S = 0 gives no estimate.
    """
    _check(tables)
    # Floats suffice: every term is positive (no cancellation), each is one
    # correctly rounded division and fsum rounds each total once.
    r_k = [t.a * t.d / t.n for t in tables]
    s_k = [t.b * t.c / t.n for t in tables]
    r, s = math.fsum(r_k), math.fsum(s_k)
    if r == 0 and s == 0:
        return Estimate(None, None, None, ("every stratum has a zero on both diagonals: the ratio is 0/0",))
    if r == 0:
        return Estimate(0.0, 0.0, None, ("no concordant pairs (a·d = 0 in every stratum): no upper bound",))
    if s == 0:
        return Estimate(math.inf, None, math.inf, ("no discordant pairs (b·c = 0 in every stratum): no lower bound",))
    p_k = [(t.a + t.d) / t.n for t in tables]
    q_k = [(t.b + t.c) / t.n for t in tables]
    pr = math.fsum(p * x for p, x in zip(p_k, r_k, strict=True))
    ps_qr = math.fsum(p * y + q * x for p, q, x, y in zip(p_k, q_k, r_k, s_k, strict=True))
    qs = math.fsum(q * y for q, y in zip(q_k, s_k, strict=True))
    variance = pr / (2 * r * r) + ps_qr / (2 * r * s) + qs / (2 * s * s)
    odds_ratio = r / s
    half_width = Z95 * math.sqrt(variance)
    log_or = math.log(odds_ratio)
    return Estimate(odds_ratio, math.exp(log_or - half_width), math.exp(log_or + half_width))


def breslow_day(tables: Sequence[Table2x2]) -> Significance:
    """Return the Breslow-Day test that the strata share one odds ratio.

    Breslow & Day, Statistical Methods in Cancer Research I (IARC, 1980)
    §4.4, eq. 4.30, without Tarone's (1985) adjustment: Σ (a_k - A_k)²/V_k,
    chi-square with K - 1 df, where A_k is the value of a_k that gives
    stratum k the Mantel-Haenszel odds ratio with its margins fixed and
    V_k = 1/(1/A + 1/(n1 - A) + 1/(m1 - A) + 1/(n2 - m1 + A)). Not computed
    with one stratum or when the common odds ratio is 0, infinite or
    undefined (the fitted tables would have empty cells).
    """
    _check(tables)
    return _breslow_day(tables, mantel_haenszel_odds_ratio(tables).estimate)


def _breslow_day(tables: Sequence[Table2x2], odds_ratio: float | None) -> Significance:
    method = "breslow_day"
    df = len(tables) - 1
    if df < 1:
        return not_computed(method, "one stratum: nothing to compare", df)
    if odds_ratio is None or odds_ratio == 0.0 or math.isinf(odds_ratio):
        return not_computed(method, "the common odds ratio is 0, infinite or undefined", df)
    terms = []
    for t in tables:
        cells = fitted_table(t, odds_ratio)
        variance = 1.0 / math.fsum(1.0 / x for x in cells)
        terms.append((t.a - cells[0]) ** 2 / variance)
    statistic = math.fsum(terms)
    return Significance(method, statistic, chi2_sf(statistic, df), df)


def fitted_table(t: Table2x2, odds_ratio: float) -> tuple[float, float, float, float]:
    """Return the table (A, B, C, D) with the margins of ``t`` and odds ratio
    AD/BC = ``odds_ratio`` (0 < OR < inf, no zero margin).

    Each cell is accurate to a few ulps, even a tiny one next to huge ones
    (ten politicians against 700,000 ordinary users): the smallest cell is
    solved for directly, by turning the table so it sits in the first
    corner, and the others follow from the margins without cancellation.
    """
    first = _fitted_a(t, odds_ratio)
    cells = (first, t.n1 - first, t.m1 - first, t.n2 - t.m1 + first)
    smallest = min(range(4), key=lambda i: cells[i])
    # The turned tables and where their cells (a, b, c, d) came from in t.
    turned, ratio, order = (
        (t, odds_ratio, (0, 1, 2, 3)),
        (Table2x2(t.b, t.a, t.d, t.c), 1.0 / odds_ratio, (1, 0, 3, 2)),
        (Table2x2(t.c, t.d, t.a, t.b), 1.0 / odds_ratio, (2, 3, 0, 1)),
        (Table2x2(t.d, t.c, t.b, t.a), odds_ratio, (3, 2, 1, 0)),
    )[smallest]
    x = _fitted_a(turned, ratio)
    values = (x, turned.n1 - x, turned.m1 - x, turned.n2 - turned.m1 + x)
    out = [0.0] * 4
    for value, position in zip(values, order, strict=True):
        out[position] = value
    return out[0], out[1], out[2], out[3]


def _fitted_a(t: Table2x2, odds_ratio: float) -> float:
    """Solve A(n2 - m1 + A) = OR·(n1 - A)(m1 - A) for the A inside the support.

    As a quadratic (1 - OR)A² + (n2 - m1 + OR(n1 + m1))A - OR·n1·m1 = 0; the
    root is taken in the cancellation-free form (Press et al., Numerical
    Recipes §5.6), and the equation is linear when OR = 1.
    """
    a2 = 1.0 - odds_ratio
    a1 = (t.n2 - t.m1) + odds_ratio * (t.n1 + t.m1)
    a0 = -odds_ratio * t.n1 * t.m1
    if a2 == 0.0:
        return -a0 / a1
    root = math.sqrt(a1 * a1 - 4.0 * a2 * a0)
    q = -0.5 * (a1 + math.copysign(root, a1))
    lo, hi = t.a_range
    for candidate in (q / a2, a0 / q):
        if lo <= candidate <= hi:
            return candidate
    raise AssertionError(f"no Breslow-Day root inside {lo}..{hi} for odds ratio {odds_ratio}")
