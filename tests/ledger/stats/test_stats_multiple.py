"""Benjamini-Hochberg q-values against statsmodels and the paper's example.

statsmodels is a test-only dependency; the comparison skips cleanly without it.
"""

from __future__ import annotations

import math
import random

import pytest

from ledger.errors import InvalidInput
from ledger.stats import benjamini_hochberg

REL = 1e-9
SKIP = "statsmodels is a test-only dependency (see requirements-test.txt)"


def test_bh_matches_statsmodels() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest", reason=SKIP)
    rng = random.Random(1995)
    for _ in range(500):
        m = rng.randint(1, 60)
        ps = [rng.choice([rng.random(), rng.random() ** 8, 0.0, 1.0, 0.05]) for _ in range(m)]
        expected = multitest.multipletests(ps, method="fdr_bh")[1]
        got = benjamini_hochberg(ps)
        for q, e in zip(got, expected, strict=True):
            assert q == pytest.approx(float(e), rel=REL, abs=1e-300)


def test_bh_passes_none_through_and_counts_only_tests_run() -> None:
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([None, None]) == [None, None]
    assert benjamini_hochberg([0.01, None, 0.04, None]) == [0.02, None, 0.04, None]
    assert benjamini_hochberg([0.5]) == [0.5]
    for bad in ([1.5], [-0.1], [math.nan], [True]):
        with pytest.raises(InvalidInput):
            benjamini_hochberg(bad)  # type: ignore[arg-type]


def test_bh_paper_example() -> None:
    # Benjamini & Hochberg (1995) §4: 15 p-values from a study of myocardial
    # infarction treatments; at FDR 0.05 the procedure rejects the four
    # smallest (Bonferroni only three). q_(4) = 0.0095·15/4, q_(5) = 0.0201·15/5.
    # fmt: off
    ps = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
          0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0]
    # fmt: on
    q = benjamini_hochberg(ps)
    assert [i for i, v in enumerate(q) if v is not None and v < 0.05] == [0, 1, 2, 3]
    assert q[3] == pytest.approx(0.0095 * 15 / 4, rel=1e-15)
    assert q[4] == pytest.approx(0.0201 * 15 / 5, rel=1e-15)
