"""Tests on one contingency table: Fisher's exact test (2x2) and Pearson's
chi-square on a 2xk table of action counts, with Cramér's V.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ledger.errors import InvalidInput
from ledger.stats.distributions import (
    LOG_NEGLIGIBLE,
    chi2_sf,
    hypergeometric_log_weight,
    hypergeometric_log_weights,
    hypergeometric_mode,
    log_sum_exp,
)
from ledger.stats.results import Significance, Table2x2, check_count, not_computed

#: Outcomes whose probability is within this factor of the observed one count
#: as "as extreme": the same relative tolerance as R's fisher.test and
#: mantelhaen.test (relErr = 1 + 1e-7), so that tables tied in exact
#: arithmetic are not split by rounding. scipy.stats.fisher_exact uses
#: 1 + 1e-14 instead; the two differ only if two distinct outcomes have
#: probabilities within a factor 1 + 1e-7 of each other (the tests search
#: every table up to n = 60 for such a pair, and none exists up to n = 150).
RELATIVE_TOLERANCE = 1 + 1e-7
LOG_RELATIVE_TOLERANCE = math.log1p(1e-7)


def fisher_exact(table: Table2x2) -> Significance:
    """Return Fisher's exact test of independence, two-sided.

    Fisher, "The logic of inductive inference", JRSS 98 (1935) 39-82. With
    all margins fixed, a is hypergeometric; the p-value is the total
    probability of the values of a no more probable than the observed one
    (up to :data:`RELATIVE_TOLERANCE`). A table with a zero margin has
    p = 1: it is the only table with its margins. ``statistic`` is ``None``;
    the table itself is the statistic.
    """
    method = "fisher_exact"
    if table.has_zero_margin:
        return Significance(method, None, 1.0, notes=("a margin is zero: no other table has these margins",))
    if _underflows(table):
        return Significance(method, None, 0.0, notes=(_UNDERFLOW_NOTE,))
    start, logs = _log_weights(table)
    observed = logs[table.a - start]
    threshold = observed + LOG_RELATIVE_TOLERANCE
    extreme = [v for v in logs if v <= threshold]
    p = math.exp(log_sum_exp(extreme) - log_sum_exp(logs))
    return Significance(method, None, min(1.0, p))


def _log_weights(table: Table2x2) -> tuple[int, list[float]]:
    """Log probabilities of a, relative to the mode, as far out as matters.

    Both tails are followed until what is left is negligible next to the
    smaller of the mode and the observed table, so the p-value keeps its
    relative accuracy however small it is (down to underflow near 1e-308).
    """
    n1, n2, m1 = table.n1, table.n2, table.m1
    observed = hypergeometric_log_weight(n1, n2, m1, table.a)
    return hypergeometric_log_weights(n1, n2, m1, floor=observed - LOG_NEGLIGIBLE)


#: exp(x) is 0.0 in double precision below this.
_LOG_UNDERFLOW = -745.2
_UNDERFLOW_NOTE = "p-value below the smallest double (about 1e-324): reported as 0"


def _underflows(table: Table2x2) -> bool:
    """Whether the p-value is certain to round to 0.0, judged cheaply.

    p <= (support size)·P(observed)/P(mode). With log P from lgamma (good to
    about 1e-9 here, far inside the margin of 1) this skips walking up to
    10^5 steps to a table whose p-value would come out 0.0 anyway; the
    answer is the same either way.
    """
    n1, n2, m1, a = table.n1, table.n2, table.m1, table.a
    lo, hi = table.a_range
    mode = hypergeometric_mode(n1, n2, m1)

    def log_weight(x: int) -> float:
        return _log_comb(n1, x) + _log_comb(n2, m1 - x)

    bound = math.log(hi - lo + 1) + log_weight(a) - log_weight(mode)
    return bound < _LOG_UNDERFLOW - 1.0


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


@dataclass(frozen=True)
class Contingency:
    """Pearson's chi-square on a 2xk table and Cramér's V.

    ``columns`` are the indexes (into the input) of the columns kept after
    all-zero columns were dropped; ``cramers_v`` is ``None`` when the test
    was not computed.
    """

    test: Significance
    cramers_v: float | None
    columns: tuple[int, ...]


#: Cochran's rule, "Some methods for strengthening the common χ² tests",
#: Biometrics 10 (1954) 417-451: every expected count at least 1 and at most
#: 20% of them below 5.
MIN_EXPECTED = 1
SMALL_EXPECTED = 5
MAX_SMALL_SHARE = Fraction(1, 5)


def pearson_chi2(row1: Sequence[int], row2: Sequence[int]) -> Contingency:
    """Return Pearson's chi-square test of a 2xk table, without Yates'
    correction, and Cramér's V = √(χ²/n) (min(2, k) - 1 = 1).

    Pearson, "On the criterion that a given system of deviations ...",
    Phil. Mag. 50 (1900) 157-175; Cramér, Mathematical Methods of
    Statistics (1946) §21.9. Columns with no counts are dropped first
    (they carry no information and would give expected counts of 0). The
    test is computed only under Cochran's rule (see :data:`MAX_SMALL_SHARE`);
    otherwise the result says which part of the rule failed. The statistic
    is summed in exact rational arithmetic, then rounded once.
    """
    method = "pearson_chi2"
    if len(row1) != len(row2):
        raise InvalidInput(f"the rows have different lengths ({len(row1)} and {len(row2)})")
    for i, (x, y) in enumerate(zip(row1, row2, strict=True)):
        check_count(f"row 1 column {i}", x)
        check_count(f"row 2 column {i}", y)
    columns = tuple(i for i, (x, y) in enumerate(zip(row1, row2, strict=True)) if x + y > 0)
    rows = [[row1[i] for i in columns], [row2[i] for i in columns]]
    row_totals = [sum(r) for r in rows]
    if len(columns) < 2:
        return Contingency(not_computed(method, "fewer than two columns have counts"), None, columns)
    if 0 in row_totals:
        return Contingency(not_computed(method, "a row has no counts"), None, columns)
    n = sum(row_totals)
    column_totals = [rows[0][j] + rows[1][j] for j in range(len(columns))]
    expected = [[Fraction(r * c, n) for c in column_totals] for r in row_totals]
    cells = [e for row in expected for e in row]
    df = len(columns) - 1
    if min(cells) < MIN_EXPECTED:
        return Contingency(not_computed(method, "an expected count is below 1", df), None, columns)
    small = sum(1 for e in cells if e < SMALL_EXPECTED)
    if small > MAX_SMALL_SHARE * len(cells):
        reason = f"{small} of {len(cells)} expected counts are below 5 (more than 20%)"
        return Contingency(not_computed(method, reason, df), None, columns)
    exact = sum(
        ((rows[i][j] - expected[i][j]) ** 2 / expected[i][j] for i in range(2) for j in range(len(columns))),
        Fraction(0),
    )
    statistic = float(exact)
    test = Significance(method, statistic, chi2_sf(statistic, df), df)
    return Contingency(test, math.sqrt(float(exact / n)), columns)
