"""Decision facts and their tallies: the first, pure half of the evenness statistics.

A *fact* is one row of the records index reduced to the columns the
statistics read, as a plain tuple in :data:`FACT_COLUMNS` order. Anyone
holding the log's entries makes them with :func:`facts_from_entries`,
through the very function (``ledger.query.index_row``) that fills the
index. The server selects the same rows from ``record_index``, already
split as :class:`FactSet` (decisions with only the columns counting reads,
then amendments and appeals), which :meth:`FactSet.of` makes of any facts.

:func:`tally` folds the facts as method version 1 defines (the
definitions are stated in the document itself,
``ledger.evenness.document.DEFINITIONS``): the latest amendment of a
decision replaces it, the latest appeal of a decision gives its appeal
outcome, and what remains is counted per (platform, rule id, account
class, severity). A million decisions pass through here, so the work per
decision is done by C code (``map``, ``zip``, ``compress``, ``Counter``,
``deque``) wherever it can be: Python code runs per cell and per distinct
value, not per decision.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, compress, repeat
from operator import call, floordiv, is_, itemgetter, not_, sub
from typing import Any

from ledger.errors import InvalidInput
from ledger.records.coverage import Statement, parse_statement
from ledger.records.entries import format_time, parse_entry
from ledger.records.index_rows import index_row
from ledger.records.vocab import ORDINARY_USER, PATTERNS, POLITICAL_CLASSES, PUBLIC_CLASSES

#: The index columns a fact holds, in order.
FACT_COLUMNS = (
    "leaf_index",
    "platform",
    "type",
    "record_id",
    "ref_record_id",
    "rule_id",
    "account_class",
    "subject_key",
    "severity",
    "violation_found",
    "exemption_applied",
    "action",
    "flagged_at_ms",
    "decided_at_ms",
    "appeal_outcome",
)
(
    _INDEX,
    _PLATFORM,
    _TYPE,
    _RECORD_ID,
    _REF,
    _RULE,
    _CLASS,
    _SUBJECT,
    _SEVERITY,
    _VIOLATION,
    _EXEMPTION,
    _ACTION,
    _FLAGGED,
    _DECIDED,
    _OUTCOME,
) = range(len(FACT_COLUMNS))

#: A fact: a tuple (or a database row) in FACT_COLUMNS order.
Fact = Sequence[Any]

#: What counting reads of a decision (as amended), in order. ``record_id``
#: comes last: it is needed, and the server selects it, only when some
#: amendment or appeal may refer to the decision.
DECISION_COLUMNS = (
    "platform",
    "rule_id",
    "account_class",
    "subject_key",
    "severity",
    "violation_found",
    "exemption_applied",
    "action",
    "flagged_at_ms",
    "decided_at_ms",
    "record_id",
)
_D_PLATFORM, _D_RULE, _D_CLASS, _D_SUBJECT, _D_SEVERITY, _D_VIOLATION, _D_EXEMPTION = range(7)
_D_ACTION, _D_FLAGGED, _D_DECIDED, _D_RECORD_ID = range(7, 11)
#: A decision row: a tuple in DECISION_COLUMNS order, perhaps without record_id.
DecisionRow = Sequence[Any]
_AS_DECISION = itemgetter(*(FACT_COLUMNS.index(c) for c in DECISION_COLUMNS))

#: The method versions a document can be computed by: 1, the account
#: comparisons; 2, version 1 and a section per feature added since (the
#: protection section, ledger/evenness/protection.py; the coverage section,
#: ledger/evenness/coverage.py).
METHOD_VERSIONS = (1, 2)
POLITICAL_ANY = "political_any"
REFERENCE = ORDINARY_USER
#: The groups compared with the reference, each with the classes it pools.
GROUPS: dict[str, tuple[str, ...]] = {c: (c,) for c in PUBLIC_CLASSES} | {POLITICAL_ANY: POLITICAL_CLASSES}
#: Actions counted as adverse (issue 5: remove, suspend, ban, geo-block).
ADVERSE_ACTIONS = frozenset({"remove_content", "temporary_suspension", "permanent_ban", "geo_block"})
METRICS = ("exemption_rate", "adverse_action_rate", "action_distribution", "time_to_decision", "appeal_reversal_rate")
_DAY_MS = 86_400_000


def index_rows_from_entries(entries: Iterable[tuple[int, bytes]], tree_size: int) -> Iterator[dict[str, Any]]:
    """Yield the index row of each record entry among ``entries`` below
    ``tree_size``, through the very function that fills the server's index.

    ``entries`` are (leaf index, entry bytes) in increasing index order, as
    a verified mirror holds them; registry entries are skipped.
    """
    last = -1
    for index, data in entries:
        if index <= last:
            raise InvalidInput(f"entries must come in increasing index order: {index} after {last}")
        last = index
        if index >= tree_size:
            break
        entry = parse_entry(data)
        if entry.kind == "record":
            yield index_row(index, 0, entry.body)


def facts_from_entries(entries: Iterable[tuple[int, bytes]], tree_size: int) -> Iterator[tuple[Any, ...]]:
    """Yield the facts of the record entries among ``entries`` below ``tree_size``
    (:func:`index_rows_from_entries`). The tuples equal the rows the server
    selects from its index for the same entries (booleans as truth values:
    SQLite gives 0 and 1).
    """
    for row in index_rows_from_entries(entries, tree_size):
        yield tuple(row[c] for c in FACT_COLUMNS)


def read_entries(entries: Iterable[tuple[int, bytes]], tree_size: int) -> FactSet:
    """The :class:`FactSet` of the entries below ``tree_size``, with the
    coverage statements among them (as :func:`facts_from_entries` reads them)."""
    statements: list[Statement] = []

    def facts() -> Iterator[tuple[Any, ...]]:
        for index, data in entries:
            if index < tree_size:
                entry = parse_entry(data)
                if entry.kind == "record" and entry.body.get("type") == "coverage":
                    statements.append(parse_statement(entry.body, index))
            yield index, data

    fs = FactSet.of(facts_from_entries(facts(), tree_size))
    return FactSet(fs.decisions, fs.others, statements)


@dataclass(frozen=True)
class Filters:
    """What a request narrows the statistics to; every field optional.

    ``platform`` and ``rule_id`` select decisions (after amendments, so a
    decision amended into another rule counts under the new one);
    ``decided_from_ms`` (inclusive) and ``decided_to_ms`` (exclusive) select
    by ``decided_at``; ``group`` keeps only that group's comparisons and
    cells (and the reference's); ``metric`` keeps only that metric's
    comparisons. Valid once constructed.
    """

    platform: str | None = None
    rule_id: str | None = None
    group: str | None = None
    metric: str | None = None
    decided_from_ms: int | None = None
    decided_to_ms: int | None = None

    def __post_init__(self) -> None:
        errors: list[dict[str, object]] = []
        for name, pattern in (("platform", "platform"), ("rule_id", "rule_id")):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and re.fullmatch(PATTERNS[pattern], value)):
                errors.append({"path": name, "message": f"must match {PATTERNS[pattern]}"})
        if self.group is not None and self.group not in GROUPS:
            errors.append({"path": "group", "message": f"must be one of {', '.join(GROUPS)}"})
        if self.metric is not None and self.metric not in METRICS:
            errors.append({"path": "metric", "message": f"must be one of {', '.join(METRICS)}"})
        lo, hi = self.decided_from_ms, self.decided_to_ms
        if lo is not None and hi is not None and lo >= hi:
            errors.append({"path": "decided_to", "message": "must be later than decided_from"})
        if errors:
            raise InvalidInput("invalid filters", errors)

    def as_json(self) -> dict[str, Any]:
        """The filters as the document states them (absent ones as null)."""
        return {
            "platform": self.platform,
            "rule_id": self.rule_id,
            "group": self.group,
            "metric": self.metric,
            "decided_from": None if self.decided_from_ms is None else format_time(self.decided_from_ms),
            "decided_to": None if self.decided_to_ms is None else format_time(self.decided_to_ms),
        }

    def shows_group(self, group: str) -> bool:
        return self.group is None or self.group == group

    def shows_metric(self, metric: str) -> bool:
        return self.metric is None or self.metric == metric

    def shows_class(self, account_class: str) -> bool:
        return account_class == REFERENCE or self.group is None or account_class in GROUPS[self.group]


@dataclass
class Tally:
    """Counts for one (platform, rule id, account class, severity), or a sum of them.

    ``actions`` counts actions among violations found; ``times`` holds the
    whole seconds from flag to decision of every decision; the appeal
    counts are of decisions by the outcome of their latest appeal.
    """

    decisions: int = 0
    violations: int = 0
    exemptions: int = 0
    adverse: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    times: list[int] = field(default_factory=list)
    upheld: int = 0
    reversed: int = 0
    modified: int = 0
    pending: int = 0

    def add(self, other: Tally) -> None:
        self.decisions += other.decisions
        self.violations += other.violations
        self.exemptions += other.exemptions
        self.adverse += other.adverse
        for action, n in other.actions.items():
            self.actions[action] = self.actions.get(action, 0) + n
        self.times.extend(other.times)
        self.upheld += other.upheld
        self.reversed += other.reversed
        self.modified += other.modified
        self.pending += other.pending


def merged(tallies: Iterable[Tally]) -> Tally:
    out = Tally()
    for t in tallies:
        out.add(t)
    return out


#: (platform, rule id, account class, severity)
CellKey = tuple[str, str, str, str]


@dataclass
class Tallies:
    """What :func:`tally` counted, after filtering by platform, rule and time."""

    cells: dict[CellKey, Tally]
    #: (platform, rule id, account class) -> the distinct subject keys
    subjects: dict[tuple[str, str, str], set[str]]
    #: (platform, "YYYY-MM", account class) -> [violations found, exemptions applied]
    months: dict[tuple[str, str, str], list[int]]
    #: decisions counted; of them, amended ones and appealed ones
    decisions: int = 0
    amended: int = 0
    appealed: int = 0


@dataclass(frozen=True)
class FactSet:
    """The facts below a checkpoint, split as the counting reads them.

    ``decisions`` are decision rows in log order (:data:`DECISION_COLUMNS`;
    ``record_id`` may be left off when ``others`` is empty); ``others`` are
    the amendment and appeal facts, in log order. The server selects the
    two parts separately, since a million decisions cost a second less to
    read with only the columns counting needs; :meth:`of` splits a stream
    of facts into the same parts.
    """

    decisions: Sequence[DecisionRow]
    others: Sequence[Fact]
    #: The coverage statements below the checkpoint (read by method version 2).
    statements: Sequence[Statement] = ()

    @classmethod
    def of(cls, facts: Iterable[Fact], statements: Sequence[Statement] = ()) -> FactSet:
        facts = list(facts)
        is_decision = list(map("decision".__eq__, map(itemgetter(_TYPE), facts)))
        decisions = list(map(_AS_DECISION, compress(facts, is_decision)))
        return cls(decisions, list(compress(facts, map(not_, is_decision))), statements)

    def current(self) -> Sequence[DecisionRow]:
        """Every decision as last amended, in log order."""
        return _fold(self)[0]


def tally(facts: Iterable[Fact] | FactSet, filters: Filters) -> Tallies:
    """Fold amendments and appeals into their decisions, then count.

    Appeals and amendments refer to decisions only, and only to decisions
    logged before them (the submission rules enforce both). So taking every
    decision, then every amendment in log order, gives each decision its
    latest version, and the last appeal in log order gives its outcome.
    Only the decisions an amendment or appeal names get a key; filters
    (applied to decisions as amended) are the one per-decision Python step.
    """
    fs = facts if isinstance(facts, FactSet) else FactSet.of(facts)
    current, amended, outcomes = _fold(fs)
    keep: list[bool] | None = None
    rows = current
    if filters.platform or filters.rule_id or filters.decided_from_ms is not None or filters.decided_to_ms is not None:
        keep = [_selected(f, filters) for f in current]
        rows = list(compress(current, keep))
    out = Tallies({}, {}, {}, decisions=len(rows), amended=sum(1 for i in amended if keep is None or keep[i]))
    _count(out, rows)
    for i, outcome in outcomes.items():
        if keep is None or keep[i]:
            _count_appeal(out, current[i], outcome)
    return out


def _fold(fs: FactSet) -> tuple[Sequence[DecisionRow], set[int], dict[int, str]]:
    """(each decision as amended, the positions of amended ones, position ->
    outcome of its latest appeal), positions being those in ``fs.decisions``."""
    if not fs.others:
        return fs.decisions, set(), {}
    amendments: list[Fact] = []
    appeals: list[Fact] = []
    by_kind = {"amendment": amendments.append, "appeal": appeals.append}
    for f in fs.others:
        if f[_TYPE] in by_kind:  # coverage statements refer to statements, and count nothing here
            by_kind[f[_TYPE]](f)
    # Only decisions whose record id some amendment or appeal names need a key.
    named = {f[_REF] for f in chain(amendments, appeals)}
    decisions = fs.decisions
    hits = compress(range(len(decisions)), map(named.__contains__, map(itemgetter(_D_RECORD_ID), decisions)))
    position = {(decisions[i][_D_PLATFORM], decisions[i][_D_RECORD_ID]): i for i in hits}
    current = list(decisions)
    amended: set[int] = set()
    for f in amendments:
        i = position.get((f[_PLATFORM], f[_REF]))
        if i is not None:
            current[i] = _AS_DECISION(f)
            amended.add(i)
    outcomes: dict[int, str] = {}
    for f in appeals:
        i = position.get((f[_PLATFORM], f[_REF]))
        if i is not None:
            outcomes[i] = f[_OUTCOME]
    return current, amended, outcomes


def _selected(f: DecisionRow, filters: Filters) -> bool:
    lo, hi, decided = filters.decided_from_ms, filters.decided_to_ms, f[_D_DECIDED]
    return (
        (filters.platform is None or f[_D_PLATFORM] == filters.platform)
        and (filters.rule_id is None or f[_D_RULE] == filters.rule_id)
        and (lo is None or decided >= lo)
        and (hi is None or decided < hi)
    )


_CELL = itemgetter(_D_PLATFORM, _D_RULE, _D_CLASS, _D_SEVERITY)
_PLATFORM_OF, _RULE_OF, _CLASS_OF, _SUBJECT_OF, _SEVERITY_OF, _VIOLATION_OF, _EXEMPTION_OF, _ACTION_OF = (
    itemgetter(i) for i in range(8)
)
_FLAGGED_OF = itemgetter(_D_FLAGGED)
_DECIDED_OF = itemgetter(_D_DECIDED)
_MONTHLY_CLASSES = frozenset(POLITICAL_CLASSES) | {REFERENCE}


class _Cells(dict[CellKey, Callable[[DecisionRow], None]]):
    """Cell -> the ``append`` of its list of rows, made on first use."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[CellKey, list[DecisionRow]] = {}

    def __missing__(self, key: CellKey) -> Callable[[DecisionRow], None]:
        rows = self.rows[key] = []
        append = self[key] = rows.append
        return append


def _count(out: Tallies, rows: Sequence[DecisionRow]) -> None:
    """Count the selected decisions into ``out``, one cell at a time.

    The rows are filed under their cells by C code alone (``deque`` drains
    the ``map``); per cell, the times are computed by ``map`` and the
    outcomes counted by ``Counter``, keyed by the day decided too, since the
    monthly series needs that and a cell has far fewer distinct (outcome,
    day) pairs than decisions.
    """
    cells = _Cells()
    # zip, unlike itemgetter, reuses its tuple once the consumer let go of it.
    keys = zip(map(_PLATFORM_OF, rows), map(_RULE_OF, rows), map(_CLASS_OF, rows), map(_SEVERITY_OF, rows), strict=True)
    deque(map(call, map(cells.__getitem__, keys), rows), maxlen=0)
    month_of: dict[int, str] = {}
    for (p, r, cls, sev), group in cells.rows.items():
        t = out.cells[(p, r, cls, sev)] = Tally(decisions=len(group), times=_times(group))
        out.subjects.setdefault((p, r, cls), set()).update(map(_SUBJECT_OF, group))
        monthly = cls in _MONTHLY_CLASSES
        days = map(floordiv, map(_DECIDED_OF, group), repeat(_DAY_MS)) if monthly else repeat(0, len(group))
        outcomes = Counter(
            zip(map(_VIOLATION_OF, group), map(_EXEMPTION_OF, group), map(_ACTION_OF, group), days, strict=True)
        )
        for (violation, exemption, action, day), n in outcomes.items():
            if not violation:
                continue
            t.violations += n
            t.exemptions += n if exemption else 0
            t.adverse += n if action in ADVERSE_ACTIONS else 0
            t.actions[action] = t.actions.get(action, 0) + n
            if monthly:
                month = month_of.get(day)
                if month is None:
                    month = month_of[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m")
                m = out.months.setdefault((p, month, cls), [0, 0])
                m[0] += n
                m[1] += n if exemption else 0


def _times(group: list[DecisionRow]) -> list[int]:
    """Whole seconds from flag to decision, in log order, of the decisions flagged at a known time."""
    if any(map(is_, map(_FLAGGED_OF, group), repeat(None))):
        group = [f for f in group if f[_D_FLAGGED] is not None]
    return list(map(floordiv, map(sub, map(_DECIDED_OF, group), map(_FLAGGED_OF, group)), repeat(1000)))


def _count_appeal(out: Tallies, decision: DecisionRow, outcome: str) -> None:
    """Count a selected decision by the outcome of its latest appeal."""
    out.appealed += 1
    t = out.cells[_CELL(decision)]
    if outcome == "upheld":
        t.upheld += 1
    elif outcome == "reversed":
        t.reversed += 1
    elif outcome == "modified":
        t.modified += 1
    elif outcome == "pending":
        t.pending += 1
