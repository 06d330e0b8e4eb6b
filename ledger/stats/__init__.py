"""The statistics of "evenness" (issue 5, method version 1): pure functions.

Standard library only, no I/O: the server and the offline client run the
same code on the same counts and get the same floats. Each formula cites its
source in its docstring; tests/test_stats_*.py check every one against scipy
and statsmodels, published worked examples and brute-force enumeration.

Conventions:

* A comparison of two groups is a :class:`Table2x2` (group 1 = the group of
  interest, group 2 = the reference) and is read "group 1 against group 2".
* Intervals are two-sided 95%, z = :data:`Z95`.
* Results are frozen dataclasses. What cannot be computed comes back with
  ``None`` numbers and a reason in ``notes``; invalid input (negative or
  non-integer counts, ...) raises :class:`~ledger.errors.InvalidInput`.
* Ratios with a zero denominator are ``math.inf``; JSON serialisation must
  map them explicitly.

Modules: :mod:`.distributions` (normal, chi-square, hypergeometric),
:mod:`.rates` (Wilson, Newcombe, Katz), :mod:`.tables` (Fisher, Pearson
2xk), :mod:`.strata` (Mantel-Fleiss, CMH / exact conditional, Mantel-Haenszel
odds ratio, Breslow-Day), :mod:`.ranks` (quantiles, median interval,
Mann-Whitney), :mod:`.multiple` (Benjamini-Hochberg).
"""

from __future__ import annotations

from ledger.stats.distributions import Z95, chi2_sf, normal_ppf, normal_sf
from ledger.stats.multiple import benjamini_hochberg
from ledger.stats.ranks import (
    PERCENTILES,
    MannWhitney,
    MedianInterval,
    mann_whitney,
    median_interval,
    percentile,
    quantiles,
)
from ledger.stats.rates import katz_risk_ratio, newcombe_difference, wilson_interval
from ledger.stats.results import Estimate, Significance, Table2x2
from ledger.stats.strata import (
    MANTEL_FLEISS_MINIMUM,
    StratifiedComparison,
    breslow_day,
    cmh_test,
    compare_strata,
    exact_conditional_test,
    mantel_fleiss,
    mantel_haenszel_odds_ratio,
)
from ledger.stats.tables import Contingency, fisher_exact, pearson_chi2

__all__ = [
    "MANTEL_FLEISS_MINIMUM",
    "PERCENTILES",
    "Z95",
    "Contingency",
    "Estimate",
    "MannWhitney",
    "MedianInterval",
    "Significance",
    "StratifiedComparison",
    "Table2x2",
    "benjamini_hochberg",
    "breslow_day",
    "chi2_sf",
    "cmh_test",
    "compare_strata",
    "exact_conditional_test",
    "fisher_exact",
    "katz_risk_ratio",
    "mann_whitney",
    "mantel_fleiss",
    "mantel_haenszel_odds_ratio",
    "median_interval",
    "newcombe_difference",
    "normal_ppf",
    "normal_sf",
    "pearson_chi2",
    "percentile",
    "quantiles",
    "wilson_interval",
]
