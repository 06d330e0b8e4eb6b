"""Multiple comparisons: Benjamini-Hochberg adjusted p-values (q-values).

Every primary p-value in one response goes through one call, so the false
discovery rate is controlled over what the response shows together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ledger.errors import InvalidInput


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Return the Benjamini-Hochberg adjusted p-values, in input order.

    Benjamini & Hochberg, "Controlling the false discovery rate: a practical
    and powerful approach to multiple testing", JRSS B 57 (1995) 289-300,
    as adjusted p-values (R's ``p.adjust(method = "BH")``, statsmodels'
    ``multipletests(method = "fdr_bh")``): with the m p-values sorted,
    q_(i) = min over j ≥ i of min(1, m·p_(j)/j). ``None`` entries (tests
    not computed) pass through as ``None`` and do not count towards m.
    """
    for i, p in enumerate(p_values):
        if p is None:
            continue
        if isinstance(p, bool) or not isinstance(p, int | float) or math.isnan(p) or not 0.0 <= p <= 1.0:
            raise InvalidInput(f"p-value {i} must be a number in [0, 1], not {p!r}")
    present = [(float(p), i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    # Sort by p, ties by position, so the result never depends on sort stability.
    present.sort()
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, index = present[rank - 1]
        running = min(running, p * m / rank)
        adjusted[index] = running
    return adjusted
