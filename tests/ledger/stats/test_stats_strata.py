"""Stratified comparison: against statsmodels' StratifiedTable, brute-force
enumeration of the exact conditional distribution, and R's documented
output for the penicillin-and-rabbits example.

statsmodels' own p-values are 1 - chi2.cdf(...), which has no digits left
below about 1e-10 (issue 5), so p-values are compared with scipy's
chi2.sf applied to statsmodels' statistic.
"""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction
from math import comb
from types import ModuleType

import pytest

from ledger.stats import (
    MANTEL_FLEISS_MINIMUM,
    Table2x2,
    breslow_day,
    cmh_test,
    compare_strata,
    exact_conditional_test,
    mantel_fleiss,
    mantel_haenszel_odds_ratio,
)
from ledger.stats.tables import RELATIVE_TOLERANCE

REL = 1e-9
SKIP = "scipy and statsmodels are test-only dependencies (see requirements-test.txt)"


@pytest.fixture(scope="module")
def sp() -> ModuleType:
    return pytest.importorskip("scipy.stats", reason=SKIP)


@pytest.fixture(scope="module")
def sm_tables() -> ModuleType:
    return pytest.importorskip("statsmodels.stats.contingency_tables", reason=SKIP)


def _random_strata(rng: random.Random) -> list[Table2x2]:
    k = rng.randint(1, 8)
    scale = rng.choice([5, 30, 300, 10**4, 10**6])
    return [Table2x2(*(rng.randint(0, scale) for _ in range(4))) for _ in range(k)]


# R's ?mantelhaen.test example (Agresti 1990, pp. 231-237): penicillin
# given at once or 1.5 h late, rabbits cured or died, five dose strata.
# array(c(0, 0, 6, 5, 3, 0, 3, 6, 6, 2, 0, 4, 5, 6, 1, 0, 2, 5, 0, 0),
#       dim = c(2, 2, 5)) fills column by column: a, c, b, d per stratum.
_RABBITS_R = [0, 0, 6, 5, 3, 0, 3, 6, 6, 2, 0, 4, 5, 6, 1, 0, 2, 5, 0, 0]
RABBITS = [Table2x2(a, b, c, d) for a, c, b, d in zip(*[iter(_RABBITS_R)] * 4, strict=True)]


def test_rabbits_match_r() -> None:
    # R's output, as recorded by tidystats (github.com/WillemSleegers/tidystats,
    # tests/testthat/test_htest.R): mantelhaen.test(Rabbits, exact = TRUE) gives
    # S = 16, p-value = 0.0399449, common odds ratio 10.36102 (conditional
    # MLE, which we do not compute); mantelhaen.test(Rabbits) gives the
    # continuity-corrected X-squared = 3.928571, p-value = 0.04747226,
    # Mantel-Haenszel common odds ratio 7.
    result = compare_strata(RABBITS)
    # Strata 1 (no one cured) and 5 (no one died) carry no information.
    assert result.dropped == (0, 4)
    assert result.mantel_fleiss == 4.0 < MANTEL_FLEISS_MINIMUM
    assert result.association.method == "exact_conditional"
    p = result.association.p_value
    assert p is not None
    assert abs(p - 0.0399449) < 5e-8
    # R's S counts the dropped strata too: a = 0 and a = 2 there.
    assert result.association.statistic == 16 - 0 - 2
    assert result.odds_ratio.estimate == 7.0
    # R applies Yates' correction by default; we do not. Rebuild R's
    # statistic from the uncorrected one's parts to pin the data layout.
    deviation = sum(t.a - Fraction(t.n1 * t.m1, t.n) for t in result.strata)
    variance = sum(Fraction(t.n1 * t.n2 * t.m1 * t.m2, t.n * t.n * (t.n - 1)) for t in result.strata)
    assert round(float((abs(deviation) - Fraction(1, 2)) ** 2 / variance), 6) == 3.928571
    assert cmh_test(result.strata).statistic == float(deviation**2 / variance)


def test_rabbits_cmh_matches_r_with_correction(sp: ModuleType) -> None:
    deviation = sum(t.a - Fraction(t.n1 * t.m1, t.n) for t in RABBITS if not t.has_zero_margin)
    variance = sum(Fraction(t.n1 * t.n2 * t.m1 * t.m2, t.n * t.n * (t.n - 1)) for t in RABBITS if not t.has_zero_margin)
    corrected = float((abs(deviation) - Fraction(1, 2)) ** 2 / variance)
    assert float(sp.chi2.sf(corrected, 1)) == pytest.approx(0.04747226, abs=5e-9)


def _exact_conditional_brute_force(tables: list[Table2x2]) -> Fraction:
    """Enumerate every combination of first cells; R's two-sided rule."""
    supports = []
    for t in tables:
        lo, hi = t.a_range
        total = comb(t.n, t.m1)
        supports.append([(x, Fraction(comb(t.n1, x) * comb(t.n2, t.m1 - x), total)) for x in range(lo, hi + 1)])
    distribution: dict[int, Fraction] = {}
    for combination in itertools.product(*supports):
        s = sum(x for x, _ in combination)
        distribution[s] = distribution.get(s, Fraction(0)) + math.prod((p for _, p in combination), start=Fraction(1))
    observed = distribution[sum(t.a for t in tables)]
    cut = observed * Fraction(RELATIVE_TOLERANCE)
    return sum((p for p in distribution.values() if p <= cut), Fraction(0))


def test_exact_conditional_matches_brute_force() -> None:
    rng = random.Random(1985)
    checked = 0
    while checked < 400:
        k = rng.randint(1, 4)
        tables = [Table2x2(*(rng.randint(0, 5) for _ in range(4))) for _ in range(k)]
        tables = [t for t in tables if not t.has_zero_margin]
        if not tables:
            continue
        checked += 1
        expected = _exact_conditional_brute_force(tables)
        got = exact_conditional_test(tables)
        assert got.p_value == pytest.approx(float(expected), rel=1e-12), tables
        assert got.statistic == sum(t.a for t in tables)


def test_exact_conditional_of_one_stratum_is_fisher() -> None:
    from ledger.stats import fisher_exact

    rng = random.Random(3)
    for _ in range(300):
        t = Table2x2(*(rng.randint(0, 40) for _ in range(4)))
        if t.has_zero_margin:
            continue
        expected = fisher_exact(t).p_value
        assert exact_conditional_test([t]).p_value == pytest.approx(expected, rel=1e-11, abs=1e-300)


def test_mantel_fleiss_by_definition() -> None:
    rng = random.Random(1980)
    for _ in range(300):
        tables = [t for t in _random_strata(rng) if not t.has_zero_margin]
        if not tables:
            continue
        expected = sum(Fraction(t.n1 * t.m1, t.n) for t in tables)
        low = sum(max(0, t.m1 - t.n2) for t in tables)
        high = sum(min(t.n1, t.m1) for t in tables)
        assert mantel_fleiss(tables) == min(expected - low, high - expected)


def test_cmh_odds_ratio_and_breslow_day_match_statsmodels(sp: ModuleType, sm_tables: ModuleType) -> None:
    import numpy as np

    rng = random.Random(1986)
    for _ in range(1500):
        tables = _random_strata(rng)
        result = compare_strata(tables)
        kept = result.strata
        assert result.dropped == tuple(i for i, t in enumerate(tables) if t.has_zero_margin)
        if not kept:
            continue
        reference = sm_tables.StratifiedTable(
            np.array([[[t.a, t.b], [t.c, t.d]] for t in kept], dtype=float).transpose(1, 2, 0)
        )
        cmh = cmh_test(kept)
        null = reference.test_null_odds(correction=False)
        # Measured 1e-12: statsmodels sums floats, we sum fractions.
        assert cmh.statistic == pytest.approx(float(null.statistic), rel=REL)
        assert cmh.p_value == pytest.approx(float(sp.chi2.sf(null.statistic, 1)), rel=REL, abs=1e-300)

        odds = mantel_haenszel_odds_ratio(kept)
        if odds.estimate is not None and 0.0 < odds.estimate < math.inf:
            assert odds.estimate == pytest.approx(float(reference.oddsratio_pooled), rel=REL)
            low, high = (math.exp(float(v)) for v in reference.logodds_pooled_confint(alpha=0.05))
            assert odds.lower == pytest.approx(low, rel=REL)
            assert odds.upper == pytest.approx(high, rel=REL)

        heterogeneity = breslow_day(kept)
        if not heterogeneity.computed:
            assert len(kept) == 1 or odds.estimate in (None, 0.0, math.inf)
            continue
        # statsmodels divides by 1 - OR, which is 0 for OR = 1: silence the
        # resulting numpy warning locally (pytest turns warnings into errors).
        with np.errstate(divide="ignore", invalid="ignore"):
            equal = reference.test_equal_odds(adjust=False)
        if not math.isfinite(float(equal.statistic)):
            continue
        # Absolute 1e-12: when every stratum fits the common odds ratio the
        # statistic is rounding noise (~1e-30) with no relative scale.
        assert heterogeneity.statistic == pytest.approx(float(equal.statistic), rel=REL, abs=1e-12)
        assert heterogeneity.df == len(kept) - 1
        p = float(sp.chi2.sf(heterogeneity.statistic, len(kept) - 1))
        assert heterogeneity.p_value == pytest.approx(p, rel=REL, abs=1e-300)


def test_breslow_day_fitted_tables_are_accurate_in_every_cell() -> None:
    from decimal import Decimal, localcontext

    from ledger.stats.strata import fitted_table

    rng = random.Random(1980)
    for _ in range(2000):
        # Strata as lopsided as the ledger's: a handful against hundreds of thousands.
        t = Table2x2(*(rng.randint(1, 10 ** rng.randint(1, 6)) for _ in range(4)))
        odds_ratio = math.exp(rng.uniform(-8, 8))
        with localcontext() as ctx:
            ctx.prec = 60
            r = Decimal(odds_ratio)
            a2, a1, a0 = 1 - r, (t.n2 - t.m1) + r * (t.n1 + t.m1), -r * t.n1 * t.m1
            root = (a1 * a1 - 4 * a2 * a0).sqrt()
            lo, hi = t.a_range
            a = next(x for x in ((-a1 + root) / (2 * a2), (-a1 - root) / (2 * a2)) if lo <= x <= hi)
            exact = (a, t.n1 - a, t.m1 - a, t.n2 - t.m1 + a)
        for got, want in zip(fitted_table(t, odds_ratio), exact, strict=True):
            assert got == pytest.approx(float(want), rel=1e-11), (t, odds_ratio)


def test_compare_strata_chooses_the_test_by_the_mantel_fleiss_criterion() -> None:
    big = [Table2x2(30, 20, 25, 40), Table2x2(12, 30, 10, 50)]
    result = compare_strata(big)
    assert result.mantel_fleiss is not None
    assert result.mantel_fleiss >= MANTEL_FLEISS_MINIMUM
    assert result.association.method == "cmh_chi2"
    assert result.association.df == 1
    small = [Table2x2(2, 10, 0, 12), Table2x2(1, 8, 0, 9)]
    result = compare_strata(small)
    assert result.mantel_fleiss is not None
    assert result.mantel_fleiss < MANTEL_FLEISS_MINIMUM
    assert result.association.method == "exact_conditional"


def test_compare_strata_edge_cases() -> None:
    empty = compare_strata([Table2x2(0, 0, 3, 4), Table2x2(5, 0, 3, 0)])
    assert empty.strata == ()
    assert empty.dropped == (0, 1)
    assert empty.mantel_fleiss is None
    assert not empty.association.computed
    assert not empty.heterogeneity.computed
    assert empty.odds_ratio.estimate is None
    assert compare_strata([]).strata == ()

    one = compare_strata([Table2x2(10, 20, 15, 5)])
    assert one.association.computed
    assert not one.heterogeneity.computed
    assert one.heterogeneity.notes == ("one stratum: nothing to compare",)

    # No b·c anywhere: the common odds ratio is infinite, by the Katz rule.
    infinite = mantel_haenszel_odds_ratio([Table2x2(5, 0, 2, 7), Table2x2(3, 4, 0, 6)])
    assert (infinite.estimate, infinite.lower, infinite.upper) == (math.inf, None, math.inf)
    zero = mantel_haenszel_odds_ratio([Table2x2(0, 5, 2, 7), Table2x2(3, 4, 6, 0)])
    assert (zero.estimate, zero.lower, zero.upper) == (0.0, 0.0, None)
    assert not breslow_day([Table2x2(5, 0, 2, 7), Table2x2(3, 4, 0, 6)]).computed
    with pytest.raises(AssertionError):
        cmh_test([Table2x2(0, 0, 1, 1)])


def test_simpsons_paradox_is_not_an_association() -> None:
    # Crude rates differ a lot (group 1 sits mostly in the high-rate stratum),
    # but within each stratum the rates are equal: CMH finds nothing and the
    # common odds ratio is exactly 1.
    strata = [Table2x2(900, 100, 90, 10), Table2x2(10, 90, 100, 900)]
    crude = Table2x2(910, 190, 190, 910)
    from ledger.stats import fisher_exact

    crude_p = fisher_exact(crude).p_value
    assert crude_p is not None
    assert crude_p < 1e-20
    result = compare_strata(strata)
    assert result.odds_ratio.estimate == 1.0
    assert result.association.method == "cmh_chi2"
    assert result.association.statistic == 0.0
    assert result.association.p_value == 1.0
    assert result.heterogeneity.statistic == pytest.approx(0.0, abs=1e-20)
