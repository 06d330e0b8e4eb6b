"""Rates, 2x2 and 2xk tables: against published worked examples, exact
enumeration, scipy and statsmodels.

scipy and statsmodels are test-only dependencies; the comparisons with them
skip cleanly when they are missing, the rest always runs. Tolerance is
relative 1e-9 wherever the mathematics is the same (``REL``); any looser one
says why where it is used.
"""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction
from math import comb
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.stats import (
    Table2x2,
    fisher_exact,
    katz_risk_ratio,
    newcombe_difference,
    pearson_chi2,
    wilson_interval,
)
from ledger.stats.tables import RELATIVE_TOLERANCE

REL = 1e-9
SKIP = "scipy and statsmodels are test-only dependencies (see requirements-test.txt)"


@pytest.fixture(scope="module")
def sp() -> ModuleType:
    return pytest.importorskip("scipy.stats", reason=SKIP)


@pytest.fixture(scope="module")
def sm_proportion() -> ModuleType:
    return pytest.importorskip("statsmodels.stats.proportion", reason=SKIP)


def _random_tables(seed: int, count: int) -> list[Table2x2]:
    rng = random.Random(seed)
    tables = []
    for _ in range(count):
        scale = rng.choice([3, 10, 50, 300, 5000, 10**5])
        tables.append(Table2x2(*(rng.randint(0, scale) for _ in range(4))))
    return tables


def test_tables_validate_themselves() -> None:
    t = Table2x2.from_rates(3, 10, 0, 4)
    assert (t.a, t.b, t.c, t.d) == (3, 7, 0, 4)
    assert (t.n1, t.n2, t.m1, t.m2, t.n) == (10, 4, 3, 11, 14)
    assert t.a_range == (0, 3)
    assert not t.has_zero_margin
    assert Table2x2(0, 5, 0, 7).has_zero_margin
    for cells in [(-1, 0, 0, 0), (True, 0, 0, 0), (1.0, 0, 0, 0), ("1", 0, 0, 0)]:
        with pytest.raises(InvalidInput):
            Table2x2(*cells)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Table2x2.from_rates(5, 4, 0, 1)


# --- Wilson ----------------------------------------------------------------

# Newcombe, "Two-sided confidence intervals for the single proportion:
# comparison of seven methods", Statist. Med. 17 (1998) 857-872, Table I,
# method 3 (score, no continuity correction), as reproduced in the test suite
# of the R package ratesci (github.com/petelaud/ratesci,
# tests/testthat/test3.R, "Single proportion, Newcombe examples").
NEWCOMBE_1998A = [
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize("k,n,lower,upper", NEWCOMBE_1998A)
def test_wilson_matches_newcombe_1998a(k: int, n: int, lower: float, upper: float) -> None:
    w = wilson_interval(k, n)
    assert (round(w.lower or 0.0, 4), round(w.upper or 0.0, 4)) == (lower, upper)


def test_wilson_is_exact_at_the_edges() -> None:
    for n in range(1, 300):
        assert wilson_interval(0, n).lower == 0.0
        assert wilson_interval(n, n).upper == 1.0
        for k in range(n + 1):
            w = wilson_interval(k, n)
            assert w.lower is not None
            assert w.upper is not None
            assert w.estimate is not None
            assert 0.0 <= w.lower <= w.estimate <= w.upper <= 1.0
            mirror = wilson_interval(n - k, n)
            assert mirror.upper == pytest.approx(1 - w.lower, abs=1e-15)
    nothing = wilson_interval(0, 0)
    assert (nothing.estimate, nothing.lower, nothing.upper) == (None, None, None)
    assert nothing.notes


def test_wilson_matches_statsmodels(sm_proportion: ModuleType) -> None:
    rng = random.Random(1927)
    cases = [(rng.randint(0, n), n) for n in (rng.choice([1, 5, 30, 1000, 10**6, 10**9]) for _ in range(3000))]
    cases += [(0, 1), (1, 1), (0, 10**9), (10**9, 10**9), (1, 10**9)]
    for k, n in cases:
        lower, upper = sm_proportion.proportion_confint(k, n, alpha=0.05, method="wilson")
        w = wilson_interval(k, n)
        # statsmodels forms centre ∓ half-width, which at k = 0 or k = n
        # leaves rounding noise (~1e-17) where the exact bound is 0 or 1,
        # and loses relative accuracy in a lower bound near 0: hence the
        # absolute 1e-15.
        assert w.lower == pytest.approx(float(lower), rel=REL, abs=1e-15), (k, n)
        assert w.upper == pytest.approx(float(upper), rel=REL, abs=1e-15), (k, n)


def test_wilson_rejects_bad_counts() -> None:
    for k, n in [(3, 2), (-1, 4), (1, -1), (True, 3), (1.0, 3)]:
        with pytest.raises(InvalidInput):
            wilson_interval(k, n)  # type: ignore[arg-type]


# --- Newcombe --------------------------------------------------------------

# Newcombe, "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statist. Med. 17 (1998)
# 873-890, Table II, method 10 (score, no continuity correction): the eight
# illustrative contrasts (a)-(h). (a) and (d) are also reproduced in public
# test suites (petelaud/ratesci tests/testthat/test3.R, "Newcombe RD
# example (d)"). Note (a) is 56/70 - 48/80 = 0.2000.
NEWCOMBE_1998B = [
    ((56, 70, 48, 80), 0.2, 0.0524, 0.3339),
    ((9, 10, 3, 10), 0.6, 0.1705, 0.8090),
    ((6, 7, 2, 7), 0.5714, 0.0582, 0.8062),
    ((5, 56, 0, 29), 0.0893, -0.0381, 0.1926),
    ((0, 10, 0, 20), 0.0, -0.1611, 0.2775),
    ((0, 10, 0, 10), 0.0, -0.2775, 0.2775),
    ((10, 10, 0, 20), 1.0, 0.6791, 1.0),
    ((10, 10, 0, 10), 1.0, 0.6075, 1.0),
]


@pytest.mark.parametrize("counts,difference,lower,upper", NEWCOMBE_1998B)
def test_newcombe_matches_table_ii(
    counts: tuple[int, int, int, int], difference: float, lower: float, upper: float
) -> None:
    e = newcombe_difference(Table2x2.from_rates(*counts))
    assert e.estimate is not None
    assert e.lower is not None
    assert e.upper is not None
    assert (round(e.estimate, 4), round(e.lower, 4), round(e.upper, 4)) == (difference, lower, upper)


def test_newcombe_is_the_square_and_add_of_statsmodels_wilson(sm_proportion: ModuleType) -> None:
    for t in _random_tables(10, 1500):
        e = newcombe_difference(t)
        if t.n1 == 0 or t.n2 == 0:
            assert e.estimate is None
            assert e.lower is None
            assert e.upper is None
            continue
        l1, u1 = (float(v) for v in sm_proportion.proportion_confint(t.a, t.n1, method="wilson"))
        l2, u2 = (float(v) for v in sm_proportion.proportion_confint(t.c, t.n2, method="wilson"))
        p1, p2 = t.a / t.n1, t.c / t.n2
        lower = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        upper = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
        # Absolute 1e-12: a difference near 0 has no relative scale.
        assert e.lower == pytest.approx(lower, rel=REL, abs=1e-12)
        assert e.upper == pytest.approx(upper, rel=REL, abs=1e-12)
        assert e.estimate is not None
        assert -1.0 <= e.lower <= e.estimate <= e.upper <= 1.0


# --- Katz ------------------------------------------------------------------


def test_katz_matches_scipy_relative_risk(sp: ModuleType) -> None:
    from scipy.stats.contingency import relative_risk

    for t in _random_tables(1978, 1500):
        if min(t.a, t.c) == 0:
            continue
        expected = relative_risk(t.a, t.n1, t.c, t.n2)
        ci = expected.confidence_interval(confidence_level=0.95)
        e = katz_risk_ratio(t)
        assert e.estimate == pytest.approx(float(expected.relative_risk), rel=REL)
        assert e.lower == pytest.approx(float(ci.low), rel=REL)
        assert e.upper == pytest.approx(float(ci.high), rel=REL)


def test_katz_zero_cell_rule() -> None:
    none_in_1 = katz_risk_ratio(Table2x2(0, 5, 3, 4))
    assert (none_in_1.estimate, none_in_1.lower, none_in_1.upper) == (0.0, 0.0, None)
    assert none_in_1.notes
    none_in_2 = katz_risk_ratio(Table2x2(3, 4, 0, 5))
    assert (none_in_2.estimate, none_in_2.lower, none_in_2.upper) == (math.inf, None, math.inf)
    neither = katz_risk_ratio(Table2x2(0, 4, 0, 5))
    assert (neither.estimate, neither.lower, neither.upper) == (None, None, None)
    empty = katz_risk_ratio(Table2x2(0, 0, 2, 5))
    assert (empty.estimate, empty.lower, empty.upper) == (None, None, None)
    everyone = katz_risk_ratio(Table2x2(4, 0, 7, 0))
    assert (everyone.estimate, everyone.lower, everyone.upper) == (1.0, 1.0, 1.0)


# --- Fisher ----------------------------------------------------------------


def _exact_fisher(t: Table2x2) -> Fraction:
    """The two-sided p-value in exact arithmetic, with R's tie rule."""
    lo, hi = t.a_range
    weights = {x: comb(t.n1, x) * comb(t.n2, t.m1 - x) for x in range(lo, hi + 1)}
    cut = weights[t.a] * Fraction(RELATIVE_TOLERANCE)
    return Fraction(sum(w for w in weights.values() if w <= cut), sum(weights.values()))


def test_fisher_matches_exact_enumeration_of_every_small_table() -> None:
    for n in range(0, 19):
        for a in range(n + 1):
            for b in range(n + 1 - a):
                for c in range(n + 1 - a - b):
                    t = Table2x2(a, b, c, n - a - b - c)
                    p = fisher_exact(t).p_value
                    expected = Fraction(1) if t.has_zero_margin else _exact_fisher(t)
                    assert p == pytest.approx(float(expected), rel=1e-12), t


def test_fisher_tie_tolerance_never_matters_for_small_tables() -> None:
    # R uses 1 + 1e-7, scipy 1 + 1e-14: they differ only if two outcomes
    # with different exact probabilities lie within a factor 1 + 1e-7. None do
    # for any table with n <= 60 (nor, checked once, n <= 150).
    for n in range(2, 61):
        for n1 in range(1, n):
            n2 = n - n1
            for m1 in range(1, n):
                lo, hi = max(0, m1 - n2), min(n1, m1)
                weights = sorted(comb(n1, x) * comb(n2, m1 - x) for x in range(lo, hi + 1))
                for u, v in itertools.pairwise(weights):
                    assert u == v or v * 10**7 > u * (10**7 + 1), (n1, n2, m1)


def test_fisher_published_examples() -> None:
    # scipy.stats.fisher_exact docstring: [[8, 2], [1, 5]] -> 0.034965034965034975.
    assert fisher_exact(Table2x2(8, 2, 1, 5)).p_value == pytest.approx(0.034965034965034975, rel=1e-12)
    # R's ?fisher.test "Convictions" (Fisher 1962): matrix(c(2, 10, 15, 3), 2)
    # -> p-value = 0.0005367 (R prints 4 digits; tidystats' recorded R output,
    # WillemSleegers/tidystats tests/testthat/htest_results.json, 0.000537).
    p = fisher_exact(Table2x2(2, 15, 10, 3)).p_value
    assert p is not None
    assert round(p, 7) == 0.0005367


def test_fisher_matches_scipy(sp: ModuleType) -> None:
    for t in _random_tables(1935, 1000):
        expected = float(sp.fisher_exact([[t.a, t.b], [t.c, t.d]], alternative="two-sided").pvalue)
        # Measured worst 5e-11, on 1e5-sized tables with p near 1e-200:
        # both sides sum the same terms, computed by different recurrences.
        assert fisher_exact(t).p_value == pytest.approx(expected, rel=REL, abs=1e-300), t


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=4, max_size=4))
def test_fisher_matches_scipy_hypothesis(sp: ModuleType, cells: list[int]) -> None:
    t = Table2x2(*cells)
    expected = float(sp.fisher_exact([[t.a, t.b], [t.c, t.d]]).pvalue)
    assert fisher_exact(t).p_value == pytest.approx(expected, rel=REL, abs=1e-300)


def test_fisher_on_huge_and_degenerate_tables(sp: ModuleType) -> None:
    assert fisher_exact(Table2x2(0, 0, 3, 4)).p_value == 1.0
    assert fisher_exact(Table2x2(5, 0, 3, 0)).p_value == 1.0
    assert fisher_exact(Table2x2(0, 0, 0, 0)).p_value == 1.0
    # p underflows to 0 without error or warning.
    assert fisher_exact(Table2x2(10**6, 9 * 10**5, 10**6, 10**6)).p_value == 0.0
    t = Table2x2(779, 460, 483, 667)
    expected = float(sp.fisher_exact([[779, 460], [483, 667]]).pvalue)
    assert 1e-25 < expected < 1e-23
    assert fisher_exact(t).p_value == pytest.approx(expected, rel=REL)


def test_fisher_underflow_shortcut_changes_nothing() -> None:
    from ledger.stats.distributions import log_sum_exp
    from ledger.stats.tables import LOG_RELATIVE_TOLERANCE, _log_weights, _underflows

    shortcuts = 0
    for t in _random_tables(745, 200):
        if t.has_zero_margin or not _underflows(t):
            continue
        shortcuts += 1
        assert fisher_exact(t).p_value == 0.0
        start, logs = _log_weights(t)
        threshold = logs[t.a - start] + LOG_RELATIVE_TOLERANCE
        assert math.exp(log_sum_exp([v for v in logs if v <= threshold]) - log_sum_exp(logs)) == 0.0
    assert shortcuts > 10


# --- Pearson 2xk -----------------------------------------------------------


def _cochran_ok(expected: list[list[float]]) -> bool:
    cells = [e for row in expected for e in row]
    return min(cells) >= 1 and sum(e < 5 for e in cells) <= 0.2 * len(cells)


def test_pearson_matches_scipy_chi2_contingency(sp: ModuleType) -> None:
    import numpy as np

    rng = random.Random(1900)
    computed = 0
    for _ in range(1500):
        k = rng.randint(2, 7)
        scale = rng.choice([4, 20, 200, 10**5])
        rows = [[rng.randint(0, scale) for _ in range(k)] for _ in range(2)]
        result = pearson_chi2(rows[0], rows[1])
        kept = [j for j in range(k) if rows[0][j] + rows[1][j] > 0]
        assert result.columns == tuple(kept)
        table = np.array([[rows[i][j] for j in kept] for i in range(2)])
        if len(kept) < 2 or 0 in table.sum(axis=1):
            assert not result.test.computed
            assert result.test.notes
            continue
        expected = sp.chi2_contingency(table, correction=False)
        if not _cochran_ok(expected.expected_freq.tolist()):
            assert not result.test.computed
            assert result.cramers_v is None
            assert result.test.notes
            continue
        computed += 1
        assert result.test.df == expected.dof
        assert result.test.statistic == pytest.approx(float(expected.statistic), rel=REL)
        assert result.test.p_value == pytest.approx(float(expected.pvalue), rel=REL, abs=1e-300)
        v = sp.contingency.association(table, method="cramer", correction=False)
        assert result.cramers_v == pytest.approx(float(v), rel=REL)
    assert computed > 500


def test_pearson_cochran_rule_boundaries() -> None:
    # 2 of 10 expected counts below 5 is exactly 20%: computed.
    ok = pearson_chi2([20, 20, 20, 20, 3], [20, 20, 20, 20, 3])
    assert ok.test.computed
    assert ok.test.statistic == 0.0
    assert ok.test.p_value == 1.0
    assert ok.cramers_v == 0.0
    # 3 of 10 below 5: not computed, and the reason says so.
    few = pearson_chi2([20, 20, 20, 3, 3], [20, 20, 20, 3, 3])
    assert not few.test.computed
    assert "below 5" in few.test.notes[0]
    # An expected count below 1.
    tiny = pearson_chi2([50, 50, 1], [50, 50, 0])
    assert not tiny.test.computed
    assert "below 1" in tiny.test.notes[0]
    # All-zero columns are dropped before anything else.
    dropped = pearson_chi2([0, 30, 0, 40], [0, 50, 0, 10])
    assert dropped.columns == (1, 3)
    assert dropped.test.df == 1
    assert not pearson_chi2([0, 0], [0, 0]).test.computed
    assert not pearson_chi2([5, 6], [0, 0]).test.computed
    with pytest.raises(InvalidInput):
        pearson_chi2([1, 2], [1])
    with pytest.raises(InvalidInput):
        pearson_chi2([1, -2], [1, 2])


def test_pearson_two_columns_is_the_uncorrected_2x2_chi_square() -> None:
    # For 2x2, chi2 = n(ad - bc)² / (n1 n2 m1 m2) exactly.
    for t in _random_tables(22, 500):
        result = pearson_chi2([t.a, t.b], [t.c, t.d])
        if not result.test.computed:
            continue
        exact = Fraction(t.n * (t.a * t.d - t.b * t.c) ** 2, t.n1 * t.n2 * t.m1 * t.m2)
        assert result.test.statistic == float(exact)
