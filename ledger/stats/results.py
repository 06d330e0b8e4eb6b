"""The values the statistics core takes and returns.

Inputs validate themselves when built (STYLE.md, principle 7): a
:class:`Table2x2` holds four non-negative integer counts or cannot exist.
Results are small frozen dataclasses. A result that could not be computed
still exists: its numbers are ``None`` and ``notes`` says why, so a caller
can show "not computed: <reason>" instead of guessing.

Unbounded ratios are ``math.inf`` (a risk or odds ratio with a zero
denominator); JSON has no infinity, so whoever serialises a result must map
it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import InvalidInput


def check_count(name: str, value: object) -> int:
    """Return ``value`` if it is a non-negative ``int`` (not a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer count, not {type(value).__name__}")
    if value < 0:
        raise InvalidInput(f"{name} must be non-negative, not {value}")
    return value


@dataclass(frozen=True)
class Table2x2:
    """A 2x2 table of counts, group by outcome.

    Rows are the two groups compared (row 1 the group of interest, e.g.
    ``political_any``; row 2 the reference, ``ordinary_user``); columns are
    "event" (say, exemption applied) and "no event"::

                 event   no event
        group 1    a        b        n1 = a + b
        group 2    c        d        n2 = c + d
                  m1       m2        n

    Every ratio and difference in this package is "group 1 against group 2":
    risk difference a/n1 - c/n2, risk ratio (a/n1)/(c/n2), odds ratio ad/bc.
    """

    a: int
    b: int
    c: int
    d: int

    def __post_init__(self) -> None:
        for name in ("a", "b", "c", "d"):
            check_count(f"table cell {name}", getattr(self, name))

    @classmethod
    def from_rates(cls, events1: int, total1: int, events2: int, total2: int) -> Table2x2:
        """Build the table of ``events1`` of ``total1`` against ``events2`` of ``total2``."""
        for name, value in (("events1", events1), ("total1", total1), ("events2", events2), ("total2", total2)):
            check_count(name, value)
        if events1 > total1 or events2 > total2:
            raise InvalidInput("events cannot exceed the total")
        return cls(events1, total1 - events1, events2, total2 - events2)

    @property
    def n1(self) -> int:
        return self.a + self.b

    @property
    def n2(self) -> int:
        return self.c + self.d

    @property
    def m1(self) -> int:
        return self.a + self.c

    @property
    def m2(self) -> int:
        return self.b + self.d

    @property
    def n(self) -> int:
        return self.a + self.b + self.c + self.d

    @property
    def has_zero_margin(self) -> bool:
        """Whether a row or column total is 0: the table then carries no
        information about association (every table with its margins is this one)."""
        return 0 in (self.n1, self.n2, self.m1, self.m2)

    @property
    def a_range(self) -> tuple[int, int]:
        """The values cell a can take with all four margins fixed, inclusive."""
        return max(0, self.m1 - self.n2), min(self.n1, self.m1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval.

    ``estimate`` is ``None`` when undefined (0/0); a bound is ``None`` when
    the method gives none (the rule is stated by the function returning it).
    """

    estimate: float | None
    lower: float | None
    upper: float | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Significance:
    """The outcome of a hypothesis test.

    ``method`` names the test actually run (a stratified comparison may run
    either of two). ``p_value`` is ``None`` when the test was not computed,
    and ``notes`` then gives the reason. ``df`` is set for chi-square tests.
    """

    method: str
    statistic: float | None
    p_value: float | None
    df: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def computed(self) -> bool:
        return self.p_value is not None


def not_computed(method: str, reason: str, df: int | None = None) -> Significance:
    """Return the result of a test that could not be run, saying why."""
    return Significance(method=method, statistic=None, p_value=None, df=df, notes=(reason,))
