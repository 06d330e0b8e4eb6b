"""ledger.stats.distributions against scipy and exact arithmetic.

scipy is a test-only dependency: the comparisons skip cleanly without it,
the exact-arithmetic checks always run.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal, localcontext
from fractions import Fraction
from math import comb
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.stats.distributions import (
    Z95,
    chi2_sf,
    hypergeometric_log_weight,
    hypergeometric_log_weights,
    hypergeometric_mode,
    normal_ppf,
    normal_sf,
)

SKIP = "scipy is a test-only dependency (see requirements-test.txt)"
REL = 1e-9  # the same mathematics, computed two ways


@pytest.fixture(scope="module")
def sp() -> ModuleType:
    return pytest.importorskip("scipy.stats", reason=SKIP)


def _phi_inverse_decimal(p: str, digits: int = 50) -> Decimal:
    """Φ⁻¹(p) to ``digits`` digits: Newton's method on the Taylor series of erf."""
    with localcontext() as ctx:
        ctx.prec = digits + 10
        pi = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
        target = Decimal(p)

        def cdf(x: Decimal) -> Decimal:
            t = x / Decimal(2).sqrt()
            term, total, k = t, Decimal(0), 0
            while True:
                piece = term / (2 * k + 1)
                total += piece
                if abs(piece) < Decimal(10) ** -(digits + 5):
                    break
                k += 1
                term = -term * t * t / k
            return (1 + 2 / pi.sqrt() * total) / 2

        x = Decimal("1.96")
        for _ in range(10):
            x -= (cdf(x) - target) / ((-(x * x) / 2).exp() / (2 * pi).sqrt())
        return +x


def test_z95_is_the_double_nearest_the_normal_quantile() -> None:
    exact = _phi_inverse_decimal("0.975")
    assert str(exact).startswith("1.95996398454005423552")
    assert float(exact) == Z95
    # The AS 241 evaluation is within a few ulps of it.
    assert abs(normal_ppf(0.975) - Z95) <= 4 * math.ulp(Z95)


def test_normal_ppf_edges() -> None:
    assert normal_ppf(0.5) == 0.0
    assert normal_ppf(0.0) == -math.inf
    assert normal_ppf(1.0) == math.inf
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(InvalidInput):
            normal_ppf(bad)


def test_normal_ppf_matches_scipy(sp: ModuleType) -> None:
    rng = random.Random(241)
    points = [10.0**-k for k in range(1, 301)] + [1 - 10.0**-k for k in range(1, 16)]
    points += [rng.random() for _ in range(2000)]
    for p in points:
        expected = float(sp.norm.ppf(p))
        assert normal_ppf(p) == pytest.approx(expected, rel=1e-14, abs=1e-300), p


def test_normal_sf_matches_scipy(sp: ModuleType) -> None:
    z = -40.0
    while z < 38.0:
        expected = float(sp.norm.sf(z))
        # erfc(z/√2): the rounding of z/√2 costs about z² ulps in the tail.
        assert normal_sf(z) == pytest.approx(expected, rel=1e-12), z
        z += 0.173


def test_chi2_sf_matches_scipy_into_the_far_tail(sp: ModuleType) -> None:
    # Points where scipy's survival function is 1e-1 ... 1e-300, plus a grid.
    for df in [*range(1, 31), 50, 100, 200, 500, 1000]:
        xs = [0.01 + i * (3 * df + 50) / 150 for i in range(150)]
        xs += [float(sp.chi2.isf(10.0**-k, df)) for k in range(1, 301, 7)]
        for x in xs:
            expected = float(sp.chi2.sf(x, df))
            if expected < 1e-300:
                continue
            # Measured worst case 4e-13 (df = 1000): a·log x - x - lgamma(a)
            # cancels in the last digits for large a.
            assert chi2_sf(x, df) == pytest.approx(expected, rel=REL), (df, x)


def test_chi2_sf_edges() -> None:
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(-2.0, 1) == 1.0
    assert chi2_sf(math.inf, 2) == 0.0
    assert chi2_sf(2.0, 2) == pytest.approx(math.exp(-1.0), rel=1e-15)
    for df in (0, -1, True, 1.5):
        with pytest.raises(InvalidInput):
            chi2_sf(1.0, df)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        chi2_sf(math.nan, 1)


@settings(max_examples=300)
@given(st.floats(1e-6, 5e3), st.integers(1, 300))
def test_chi2_sf_df2_closed_form_and_monotone(x: float, df: int) -> None:
    # For even df the survival function is a finite Poisson sum.
    if df % 2 == 0:
        half = x / 2
        terms = [math.exp(-half + k * math.log(half) - math.lgamma(k + 1)) for k in range(df // 2)]
        assert chi2_sf(x, df) == pytest.approx(math.fsum(terms), rel=1e-10, abs=1e-300)
    assert chi2_sf(x * 1.01, df) <= chi2_sf(x, df)


def _exact_pmf(n1: int, n2: int, m1: int) -> dict[int, Fraction]:
    lo, hi = max(0, m1 - n2), min(n1, m1)
    total = comb(n1 + n2, m1)
    return {x: Fraction(comb(n1, x) * comb(n2, m1 - x), total) for x in range(lo, hi + 1)}


def test_hypergeometric_weights_match_exact_arithmetic() -> None:
    for n in range(1, 31):
        for n1 in range(n + 1):
            for m1 in range(n + 1):
                n2 = n - n1
                pmf = _exact_pmf(n1, n2, m1)
                mode = hypergeometric_mode(n1, n2, m1)
                assert pmf[mode] == max(pmf.values())
                start, logs = hypergeometric_log_weights(n1, n2, m1)
                assert start == min(pmf)
                assert len(logs) == len(pmf)
                for i, log_weight in enumerate(logs):
                    exact = pmf[start + i] / pmf[mode]
                    assert math.exp(log_weight) == pytest.approx(float(exact), rel=1e-13)
                    assert hypergeometric_log_weight(n1, n2, m1, start + i) == log_weight


def test_hypergeometric_weights_cut_only_what_is_below_the_floor() -> None:
    n1, n2, m1 = 5000, 7000, 6000
    _, full = hypergeometric_log_weights(n1, n2, m1)
    start, cut = hypergeometric_log_weights(n1, n2, m1, floor=-100.0)
    assert len(cut) < len(full) / 5
    kept = {start + i for i in range(len(cut))}
    for i, v in enumerate(full):
        if v >= -100.0:
            assert i in kept
    with pytest.raises(InvalidInput):
        hypergeometric_log_weight(3, 3, 2, 5)


def test_hypergeometric_weights_match_scipy_on_large_tables(sp: ModuleType) -> None:
    rng = random.Random(5)
    for _ in range(10):
        n1, n2 = rng.randint(1, 2 * 10**5), rng.randint(1, 2 * 10**5)
        m1 = rng.randint(1, n1 + n2 - 1)
        mode = hypergeometric_mode(n1, n2, m1)
        lo, hi = max(0, m1 - n2), min(n1, m1)
        for x in {lo, hi, mode, rng.randint(lo, hi), max(lo, mode - 50), min(hi, mode + 50)}:
            expected = float(sp.hypergeom.logpmf(x, n1 + n2, n1, m1) - sp.hypergeom.logpmf(mode, n1 + n2, n1, m1))
            # scipy's logpmf itself carries about 1e-16·|log pmf| ≈ 1e-10
            # absolute error at these sizes; the walk is no worse.
            assert hypergeometric_log_weight(n1, n2, m1, x) == pytest.approx(expected, rel=1e-9, abs=1e-7)
