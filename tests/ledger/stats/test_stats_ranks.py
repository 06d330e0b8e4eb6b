"""Time-to-decision statistics: quantiles against numpy, the median interval
against exact binomial sums, Mann-Whitney U against scipy and pair counting.

numpy and scipy are test-only dependencies; the comparisons skip cleanly
without them.
"""

from __future__ import annotations

import random
from fractions import Fraction
from math import comb
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.stats import PERCENTILES, mann_whitney, median_interval, percentile, quantiles

REL = 1e-9
SKIP = "scipy (with numpy) is a test-only dependency (see requirements-test.txt)"


@pytest.fixture(scope="module")
def sp() -> ModuleType:
    return pytest.importorskip("scipy.stats", reason=SKIP)


@pytest.fixture(scope="module")
def np() -> ModuleType:
    return pytest.importorskip("numpy", reason=SKIP)


def _samples(seed: int, count: int) -> list[list[int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.choice([1, 2, 3, 7, 20, 101, 1000])
        spread = rng.choice([1, 5, 3600, 10**9])
        out.append([rng.randint(0, spread) for _ in range(n)])
    return out


# --- quantiles -------------------------------------------------------------


def test_quantiles_match_numpy_linear(np: ModuleType) -> None:
    for values in _samples(7, 1500) + [[5] * 30, [0], [10**12, 1]]:
        expected = np.percentile(values, PERCENTILES, method="linear")
        got = quantiles(values)
        assert got == pytest.approx([float(e) for e in expected], rel=1e-12, abs=1e-12)


def test_percentile_is_exact_type_7() -> None:
    assert percentile([0, 1], 10) == 0.1
    assert percentile([0, 10], 25) == 2.5
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4, 5], 90) == 4.6
    assert percentile([7], 90) == 7.0
    assert quantiles([3, 1, 2]) == (1.2, 1.5, 2.0, 2.5, 2.8)
    for bad in (-1, 101, 50.0, True):
        with pytest.raises(InvalidInput):
            percentile([1, 2], bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        quantiles([])
    with pytest.raises(InvalidInput):
        quantiles([1, float("nan")])


# --- median interval -------------------------------------------------------


def _exact_interval(n: int, level: Fraction = Fraction(95, 100)) -> tuple[int, Fraction]:
    """Largest l with coverage 1 - 2 P(B <= l - 1) >= level, B ~ Bin(n, 1/2)."""
    best = (0, Fraction(0))
    tail = 0
    for lower in range(1, n // 2 + 1):
        tail += comb(n, lower - 1)
        coverage = 1 - Fraction(2 * tail, 2**n)
        if coverage >= level:
            best = (lower, coverage)
    return best


def test_median_interval_matches_exact_binomial_sums() -> None:
    for n in range(6, 400):
        values = list(range(100, 100 + n))
        result = median_interval(values)
        lower, coverage = _exact_interval(n)
        assert result.lower_rank == lower
        assert result.upper_rank == n + 1 - lower
        assert result.coverage == pytest.approx(float(coverage), rel=1e-12)
        assert result.lower == values[lower - 1]
        assert result.upper == values[n - lower]
        assert result.coverage is not None
        assert result.coverage >= 0.95


def test_median_interval_at_other_levels() -> None:
    for n in (9, 10, 57, 200):
        for level in ("0.5", "0.9", "0.99"):
            result = median_interval(range(n), level=float(level))
            lower, coverage = _exact_interval(n, Fraction(level))
            if lower == 0:
                assert result.lower_rank is None
                continue
            assert result.lower_rank == lower
            assert result.coverage == pytest.approx(float(coverage), rel=1e-12)


def test_median_interval_for_large_samples_matches_scipy_binomial(sp: ModuleType) -> None:
    for n in (1000, 4321, 10**5, 10**6):
        result = median_interval(range(n))
        assert result.lower_rank is not None
        assert result.coverage is not None
        lower = result.lower_rank
        coverage = 1 - 2 * float(sp.binom.cdf(lower - 1, n, 0.5))
        assert result.coverage == pytest.approx(coverage, rel=REL)
        # One rank further in would fall below 95%.
        assert 1 - 2 * float(sp.binom.cdf(lower, n, 0.5)) < 0.95


def test_median_interval_small_and_tied_samples() -> None:
    for n in range(1, 6):
        result = median_interval([4] * n)
        assert result.estimate == 4.0
        assert result.lower is None
        assert result.coverage is None
        assert result.notes
    # n = 6: [x_(1), x_(6)] covers 1 - 2/64 = 96.875%.
    six = median_interval([6, 1, 5, 2, 4, 3])
    assert (six.lower, six.upper, six.lower_rank, six.upper_rank) == (1.0, 6.0, 1, 6)
    assert six.coverage == 1 - 2 / 64
    with pytest.raises(InvalidInput):
        median_interval([1, 2, 3], level=1.0)
    tied = median_interval([9] * 50)
    assert (tied.estimate, tied.lower, tied.upper) == (9.0, 9.0, 9.0)
    with pytest.raises(InvalidInput):
        median_interval([])


# --- Mann-Whitney ----------------------------------------------------------


def _pairs(x: list[int], y: list[int]) -> Fraction:
    """U1 by definition: pairs with x > y, ties counting one half."""
    greater = sum(1 for a in x for b in y if a > b)
    equal = sum(1 for a in x for b in y if a == b)
    return Fraction(2 * greater + equal, 2)


def test_mann_whitney_matches_scipy_asymptotic(sp: ModuleType) -> None:
    rng = random.Random(1947)
    for _ in range(1200):
        n1, n2 = rng.randint(1, 60), rng.randint(1, 60)
        spread = rng.choice([1, 3, 20, 10**6])
        shift = rng.choice([0, 0, 1, spread // 2])
        x = [rng.randint(0, spread) + shift for _ in range(n1)]
        y = [rng.randint(0, spread) for _ in range(n2)]
        expected = sp.mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided")
        got = mann_whitney(x, y)
        assert got.u1 == float(expected.statistic)
        assert got.test.statistic == got.u1
        assert got.test.p_value == pytest.approx(float(expected.pvalue), rel=REL, abs=1e-300)
        assert got.cles == float(_pairs(x, y) / (n1 * n2))


def test_mann_whitney_far_tail_and_large_samples(sp: ModuleType) -> None:
    rng = random.Random(12)
    x = [rng.randint(500, 2000) for _ in range(3000)]
    y = [rng.randint(0, 1200) for _ in range(2500)]
    expected = sp.mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided")
    got = mann_whitney(x, y)
    assert float(expected.pvalue) < 1e-300
    # Far in the tail p = erfc(z/√2): rounding z/√2 costs about z² ulps.
    assert got.test.p_value == pytest.approx(float(expected.pvalue), rel=1e-11, abs=1e-320)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 8), min_size=1, max_size=25), st.lists(st.integers(0, 8), min_size=1, max_size=25))
def test_mann_whitney_hypothesis(sp: ModuleType, x: list[int], y: list[int]) -> None:
    got = mann_whitney(x, y)
    assert got.cles == float(_pairs(x, y) / (len(x) * len(y)))
    if len(set(x + y)) == 1:
        assert got.test.p_value == 1.0
        assert got.z is None
        return
    expected = sp.mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided")
    assert got.test.p_value == pytest.approx(float(expected.pvalue), rel=REL)


def test_mann_whitney_edges() -> None:
    tied = mann_whitney([5, 5, 5], [5, 5])
    assert (tied.u1, tied.cles, tied.z, tied.test.p_value) == (3.0, 0.5, None, 1.0)
    assert tied.test.notes
    apart = mann_whitney([10, 11, 12], [1, 2])
    assert apart.cles == 1.0
    assert apart.u1 == 6.0
    assert mann_whitney([1, 2], [10, 11, 12]).cles == 0.0
    with pytest.raises(InvalidInput):
        mann_whitney([], [1])
    with pytest.raises(InvalidInput):
        mann_whitney([1.0, float("inf")], [1])
