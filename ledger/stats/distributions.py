"""The distributions the tests need: normal, chi-square, hypergeometric.

Standard library only; each function states the accuracy it is tested to
(tests/ledger/stats/test_stats_distributions.py compares with scipy). Arithmetic that
decides an outcome (which tables count as "as or more extreme") works on
log-probabilities built from exact integer ratios, so it neither overflows
on large tables nor loses the tail to underflow before it must.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ledger.errors import InvalidInput

# Wichura, "Algorithm AS 241: The percentage points of the normal
# distribution", Applied Statistics 37 (1988) 477-484, PPND16: rational
# approximations accurate to about 1e-16 relative. Coefficients are the
# published ones, highest degree last.
_A = (
    3.387132872796366608,
    133.14166789178437745,
    1971.5909503065514427,
    13731.693765509461125,
    45921.953931549871457,
    67265.770927008700853,
    33430.575583588128105,
    2509.0809287301226727,
)
_B = (
    1.0,
    42.313330701600911252,
    687.1870074920579083,
    5394.1960214247511077,
    21213.794301586595867,
    39307.89580009271061,
    28729.085735721942674,
    5226.495278852854561,
)
_C = (
    1.42343711074968357734,
    4.6303378461565452959,
    5.7694972214606914055,
    3.64784832476320460504,
    1.27045825245236838258,
    0.24178072517745061177,
    0.0227238449892691845833,
    7.7454501427834140764e-4,
)
_D = (
    1.0,
    2.05319162663775882187,
    1.6763848301838038494,
    0.68976733498510000455,
    0.14810397642748007459,
    0.0151986665636164571966,
    5.475938084995344946e-4,
    1.05075007164441684324e-9,
)
_E = (
    6.6579046435011037772,
    5.4637849111641143699,
    1.7848265399172913358,
    0.29656057182850489123,
    0.026532189526576123093,
    0.0012426609473880784386,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_F = (
    1.0,
    0.59983220655588793769,
    0.13692988092273580531,
    0.0148753612908506148525,
    7.868691311456132591e-4,
    1.8463183175100546818e-5,
    1.4215117583164458887e-7,
    2.04426310338993978564e-15,
)


def _poly(coefficients: tuple[float, ...], x: float) -> float:
    total = 0.0
    for c in reversed(coefficients):
        total = total * x + c
    return total


def normal_ppf(p: float) -> float:
    """Return the standard normal quantile Φ⁻¹(p), by AS 241 (PPND16).

    Relative error about 1e-16 over 1e-300 ≤ p ≤ 1 - 1e-16; ±inf at 0 and 1.
    """
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise InvalidInput(f"a probability must lie in [0, 1], not {p}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _poly(_A, r) / _poly(_B, r)
    r = math.sqrt(-math.log(p if q < 0 else 1.0 - p))
    if r <= 5.0:
        r -= 1.6
        value = _poly(_C, r) / _poly(_D, r)
    else:
        r -= 5.0
        value = _poly(_E, r) / _poly(_F, r)
    return -value if q < 0 else value


#: The two-sided 95% normal critical value: Φ⁻¹(0.975) =
#: 1.959963984540054235524594430520..., rounded to the nearest double. A
#: literal rather than ``normal_ppf(0.975)`` (which is 3 ulps low, as libm's
#: log feeds it) so every platform, and any reimplementation, uses the same z.
Z95 = 1.9599639845400543


def normal_sf(z: float) -> float:
    """Return P(Z > z) for a standard normal Z, as erfc(z/√2)/2."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


_EPS = 2.0**-53
_MAX_ITERATIONS = 100_000


def chi2_sf(x: float, df: int) -> float:
    """Return P(X > x) for X chi-square with ``df`` degrees of freedom.

    This is the regularised upper incomplete gamma function Q(df/2, x/2),
    evaluated in log space so the far tail keeps its relative accuracy
    (about 1e-12 down to 1e-300; subnormal results lose digits).
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise InvalidInput(f"degrees of freedom must be a positive integer, not {df!r}")
    if math.isnan(x):
        raise InvalidInput("the chi-square statistic is NaN")
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return gamma_q(df / 2.0, x / 2.0)


def _log_gamma_prefactor(a: float, x: float) -> float:
    """log(x^a e^-x / Γ(a)), the factor common to both expansions."""
    return a * math.log(x) - x - math.lgamma(a)


def gamma_q(a: float, x: float) -> float:
    """Return the regularised upper incomplete gamma function Q(a, x), x > 0.

    Series for P below a + 1, Lentz's continued fraction above (Press et
    al., Numerical Recipes, 3rd ed., §6.2): each converges fast in its range.
    """
    if x < a + 1.0:
        return 1.0 - _gamma_p_series(a, x)
    return _gamma_q_fraction(a, x)


def _gamma_p_series(a: float, x: float) -> float:
    term = 1.0 / a
    total = term
    denominator = a
    for _ in range(_MAX_ITERATIONS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if term < total * _EPS:
            return math.exp(_log_gamma_prefactor(a, x) + math.log(total))
    raise AssertionError(f"incomplete gamma series did not converge for a={a}, x={x}")


def _gamma_q_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return math.exp(_log_gamma_prefactor(a, x) + math.log(h))
    raise AssertionError(f"incomplete gamma fraction did not converge for a={a}, x={x}")


class _Sum:
    """A running sum with Neumaier's compensation: the error stays near one
    rounding of the total however many terms are added."""

    def __init__(self) -> None:
        self.total = 0.0
        self.compensation = 0.0

    def add(self, term: float) -> float:
        t = self.total + term
        if abs(self.total) >= abs(term):
            self.compensation += (self.total - t) + term
        else:
            self.compensation += (term - t) + self.total
        self.total = t
        return t + self.compensation


#: Terms this far below (in natural log) the largest that matters are dropped:
#: e^-60 ≈ 1e-26, far below double precision of any sum they would join.
LOG_NEGLIGIBLE = 60.0


def hypergeometric_mode(n1: int, n2: int, m1: int) -> int:
    """Return the mode of a, the first cell of a 2x2 table with row totals
    n1, n2 and first column total m1 (a ~ hypergeometric)."""
    return max(max(0, m1 - n2), min(min(n1, m1), (n1 + 1) * (m1 + 1) // (n1 + n2 + 2)))


def _ratio_down(n1: int, n2: int, m1: int) -> Callable[[int], tuple[int, int]]:
    """P(x)/P(x + 1) for the first cell, as exact (numerator, denominator)."""
    return lambda x: ((x + 1) * (n2 - m1 + x + 1), (n1 - x) * (m1 - x))


def _ratio_up(n1: int, n2: int, m1: int) -> Callable[[int], tuple[int, int]]:
    """P(x)/P(x - 1) for the first cell, as exact (numerator, denominator)."""
    return lambda x: ((n1 - x + 1) * (m1 - x + 1), x * (n2 - m1 + x))


def hypergeometric_log_weight(n1: int, n2: int, m1: int, x: int) -> float:
    """Return log P(a = x) - log P(a = mode); see :func:`hypergeometric_log_weights`."""
    lo, hi = max(0, m1 - n2), min(n1, m1)
    if not lo <= x <= hi:
        raise InvalidInput(f"{x} is outside the support {lo}..{hi}")
    mode = hypergeometric_mode(n1, n2, m1)
    if x == mode:
        return 0.0
    if x < mode:
        return _walk(mode, x, -1, _ratio_down(n1, n2, m1), -math.inf)[-1]
    return _walk(mode, x, 1, _ratio_up(n1, n2, m1), -math.inf)[-1]


def hypergeometric_log_weights(n1: int, n2: int, m1: int, floor: float = -math.inf) -> tuple[int, list[float]]:
    """Return ``(start, logs)``: ``logs[i]`` = log P(a = start + i) - log P(a = mode).

    a is the first cell of a 2x2 table with row totals n1, n2 and first
    column total m1, so P(a = x) ∝ C(n1, x) C(n2, m1 - x). Walking out from
    the mode with the exact ratio of successive probabilities keeps the
    error to a few ulps of the log, where log C(·) via lgamma would lose
    log10(n) digits on large tables. Each side stops at the end of the
    support or once the rest of that tail is below ``floor`` (log-concavity
    bounds the rest by a geometric series), so every x with log weight at
    least ``floor`` is included.
    """
    lo, hi = max(0, m1 - n2), min(n1, m1)
    mode = hypergeometric_mode(n1, n2, m1)
    below = _walk(mode, lo, -1, _ratio_down(n1, n2, m1), floor)
    above = _walk(mode, hi, 1, _ratio_up(n1, n2, m1), floor)
    return mode - len(below), below[::-1] + [0.0] + above


def _walk(mode: int, end: int, step: int, ratio: Callable[[int], tuple[int, int]], floor: float) -> list[float]:
    """Log weights of mode+step, mode+2·step, ... up to ``end``, relative to
    the mode; ``ratio(x)`` is P(x)/P(x - step) as exact integers."""
    logs: list[float] = []
    total = _Sum()
    x = mode
    while x != end:
        x += step
        numerator, denominator = ratio(x)
        # int / int is correctly rounded, so each log ratio is good to an ulp.
        log_weight = total.add(math.log(numerator / denominator))
        logs.append(log_weight)
        if log_weight < floor and x != end:
            # Further terms shrink at least geometrically, by the next ratio
            # r < 1, so all of them together are at most weight·r/(1 - r).
            n, d = ratio(x + step)
            if n == 0 or (n < d and log_weight + math.log(n / (d - n)) < floor):
                break
    return logs


def log_sum_exp(logs: list[float]) -> float:
    """Return log Σ exp(l) without overflow or needless underflow."""
    if not logs:
        return -math.inf
    top = max(logs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in logs))
