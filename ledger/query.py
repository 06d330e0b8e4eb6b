"""The query index: what the feed filters on, derived from log entries.

``ledger.records.index_rows.index_row`` (pure) turns a record into its index row;
the sequencer's transaction writes it with the entry (through
ledger/derived.py, which also audits it and fills in missing rows). ``feed`` answers the public feed's questions newest
first, with keyset pagination pinned to a tree size, so pages stay stable
while the log grows; the cursor format and a record's appeal and amendment
``history`` are here too, shared by the JSON API and the web pages, with
the other reads the views need (``record_at``, ``record_by_id``,
``covering_checkpoint``): views call these and never build SQL.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    Select,
    SmallInteger,
    Text,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    table,
    type_coerce,
    union,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import FromClause, Join, NamedFromClause

from ledger import storage
from ledger.db import (
    HASHED_FILTERS,
    Code,
    DriverStatement,
    checkpoints,
    encode_rows,
    entries,
    hashed_term,
    hashes,
    insert_values,
    is_sqlite,
    on_sqlite,
    record_index,
    sqlite_many,
)
from ledger.errors import InvalidInput
from ledger.records.codes import encode, row_decoder
from ledger.records.index_rows import index_row as index_row
from ledger.records.index_rows import time_ms as time_ms
from ledger.storage import StoredCheckpoint

MAX_PAGE = 200
MIN_SEARCH = 3
#: At most this many records in one download of a feed query (api/downloads.py);
#: a larger selection is refused with this number in the message, not cut short.
MAX_DOWNLOAD = 100_000


def insert_index(session: Session | Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        insert_index_values(session, encode_rows(record_index, rows))


_LEAF_INDEX = tuple(record_index.c.keys()).index("leaf_index")
_SEARCH_TEXT = tuple(record_index.c.keys()).index("search_text")


def insert_index_values(session: Session | Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """:func:`insert_index` of rows as ``ledger.db.encode_rows`` gives them."""
    if not values:
        return
    insert_values(session, record_index, values)
    if on_sqlite(session):
        searchable = [(v[_LEAF_INDEX], v[_SEARCH_TEXT]) for v in values if v[_SEARCH_TEXT]]
        if searchable:
            sqlite_many(session, "INSERT INTO record_search(rowid, search_text) VALUES (?, ?)", searchable)


#: Filters that compare one column for equality.
EQUALITY = (
    "platform",
    "type",
    "account_class",
    "rule_id",
    "rule_version",
    "category",
    "severity",
    "action",
    "exemption_type",
    "review_path",
    "interim_state",
    "detection_source",
    "automated_decision",
    "subject_key",
    # The protection fields (record schema 1, issue 19): classes only.
    "target_class",
    "reporter_class",
    "abuse_kind",
    # A person across platforms: the Wikidata item of the account's public subject.
    "qid",
)
BOOLEAN = ("political", "violation_found", "exemption_applied")
#: The filters on a decision's own fields, which also select the appeals and
#: amendments of a matching decision (:meth:`Feed.conditions`): all but
#: the record's platform and type (the flags, territory and text search too).
DECISION_FIELDS = frozenset(EQUALITY) - {"platform", "type"}


@dataclass(frozen=True)
class Feed:
    """A feed query: equality filters, ranges, text, and the page wanted."""

    equal: dict[str, str] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    territory: str | None = None
    decided_from_ms: int | None = None
    decided_to_ms: int | None = None
    logged_from_ms: int | None = None
    logged_to_ms: int | None = None
    q: str | None = None
    current_only: bool = False
    #: Match each record's own fields only: no appeals and amendments
    #: found through their decision (what the statistics' links count).
    direct: bool = False
    #: "logged" (log order, the default) or "decided" (newest decision first).
    sort: str = "logged"
    limit: int = 50

    def branches(self, session: Session, tree_size: int, few: bool | None = None) -> list[Part]:
        """The parts of this query in the tree of ``tree_size``: the query
        selects the union of their rows.

        The decision's own fields (who, which class, which rule, ...; see
        :data:`DECISION_FIELDS`) also select the appeals and amendments of a
        matching decision: an appeal carries none of them, and a person's
        feed without their appeals would hide how their cases ended. The
        record's own type, platform, times and currency still apply to it.
        ``direct`` turns this off.

        One part per way a record can match, rather than one OR: each part
        then reads one index in the page's order and stops at the page's
        length, where the OR made SQLite collect and sort every match of
        either side (1.5 pages a second at a million records, issue 14).
        Callers limit each part and merge (:func:`feed`, :func:`count_feed`).
        ``few`` chooses the follow-up parts' plan (:meth:`_few`) for a
        caller that knows better than their count.

        The parts' values are bind parameters (:meth:`params` gives them),
        so the parts of one :meth:`shape` are built once and reused
        (:func:`_built`): building them took SQLAlchemy more CPU than the
        database took to answer a page.
        """
        sqlite = is_sqlite(session.get_bind())  # type: ignore[arg-type]
        if few is None and not self.direct and self._on_decisions():
            few = self._few(session, tree_size)
            if few is None:  # no matching decision: no follow-up can match
                return _built(("branches", sqlite, self.shape(), None), lambda: self._branches(sqlite, None))
        return _built(("branches", sqlite, self.shape(), few), lambda: self._branches(sqlite, few))

    def shape(self) -> tuple[Any, ...]:
        """What the statements of this query depend on beyond their bind
        parameters (:meth:`params`): which filters are given, and the values
        that choose parts or are cheaper inline (the record type, the flags)."""
        return (
            tuple(sorted((k, v if k == "type" else None) for k, v in self.equal.items())),
            tuple(sorted(self.flags.items())),
            bool(self.territory),
            self.decided_from_ms is not None,
            self.decided_to_ms is not None,
            self.logged_from_ms is not None,
            self.logged_to_ms is not None,
            self.q is not None,
            self.current_only,
            self.direct,
            self.sort,
        )

    def params(self, tree_size: int) -> dict[str, Any]:
        """The values of the bind parameters of this query's statements in the tree of ``tree_size``."""
        out: dict[str, Any] = {"tree_size": tree_size, "few_decisions": FEW_DECISIONS}
        out.update((f"eq_{k}", v) for k, v in self.equal.items() if k != "type")
        for name in ("decided_from_ms", "decided_to_ms", "logged_from_ms", "logged_to_ms"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.territory:
            out["territory"] = f"%,{self.territory},%"
        if self.q is not None:
            q = _search_text(self.q)
            out["q"] = q
            out["q_like"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            out["q_trigrams"] = _trigrams(q)
        return out

    def _branches(self, sqlite: bool, few: bool | None) -> list[Part]:
        """:meth:`branches` with the follow-up parts' plan chosen (None: none can match)."""
        c = record_index.c
        common: list[ColumnElement[bool]] = [c.leaf_index < TREE_SIZE]
        common += [c[k] == _equal(k) for k in self.equal if k not in DECISION_FIELDS and k != "type"]
        if "type" in self.equal:
            common.append(c.type == self.equal["type"])
        for col, lo, hi in (
            (c.decided_at_ms, "decided_from_ms", "decided_to_ms"),
            (c.logged_at_ms, "logged_from_ms", "logged_to_ms"),
        ):
            if getattr(self, lo) is not None:
                common.append(col >= bindparam(lo, type_=BigInteger))
            if getattr(self, hi) is not None:
                common.append(col < bindparam(hi, type_=BigInteger))
        if self.current_only:
            common.append(~superseded())
        decision = self._decision_terms(sqlite, record_index)
        parts: list[Part] = []
        # An appeal carries none of a decision's fields: only its decision can match them.
        if not (decision and self.equal.get("type") == "appeal"):
            parts.append(self._searched(sqlite, record_index, Part(common + decision)))
        if decision and not self.direct and few is not None:
            followup = self._followup_term_of(sqlite, few)
            # One part per type, so that each reads the type's index in
            # order: an IN of two types would make SQLite sort. The type is
            # written into the statement: PostgreSQL's index of types keeps
            # the follow-ups only (type <> decision, migration
            # 0013_hashed_keys), which a plan made for any value of a
            # parameter (a prepared statement's generic plan) cannot use.
            parts += [
                Part([*common, c.type == literal(kind, c.type.type, literal_execute=True), followup])
                for kind in FOLLOWUP_TYPES
                if self.equal.get("type") in (None, kind)
            ]
        return parts

    def _searched(self, sqlite: bool, t: NamedFromClause, part: Part) -> Part:
        """``part``, whose terms are on ``t`` (``record_index`` or an alias of
        it), read through SQLite's full-text index if this query searches
        text: the index first, newest first, each candidate's row probed by
        leaf index, so a page stops after about its length of matches.

        The text term itself (:func:`_search`) reads the row's own text and
        is exact without the index; the index only names the candidates.
        Given as an IN (subquery) term instead, as it was, SQLite built the
        whole candidate list for every part before reading a row (100,000
        row IDs for a term in a quarter of 400,000 records, 420 ms CPU a
        request); given as a plain join, its planner may read ``t`` first
        (the count of matching decisions went through record_index_type,
        probing the index once per decision). ``CROSS JOIN`` is SQLite's documented
        way to fix the order of the loops (https://sqlite.org/optoverview.html#crossjoin).
        PostgreSQL has no such table: its GIN index is on the column, and
        its planner chooses between it and the page's order by cost.
        """
        if self.q is None or not sqlite:
            return part
        fts = _RECORD_SEARCH
        return Part(
            [*part.terms, fts.c.record_search.match(bindparam("q_trigrams", type_=Text)), fts.c.rowid < TREE_SIZE],
            CrossJoin(fts, part.source, t.c.leaf_index == fts.c.rowid),
            fts.c.rowid,
        )

    def _decision_terms(self, sqlite: bool, t: NamedFromClause) -> list[ColumnElement[bool]]:
        """The terms on a decision's fields, on ``t`` (``record_index`` or an alias of it)."""
        out: list[ColumnElement[bool]] = [
            hashed_term(sqlite, t.c[k], _equal(k)) if k in HASHED_FILTERS else t.c[k] == _equal(k)
            for k in self.equal
            if k in DECISION_FIELDS
        ]
        out += [t.c[k].is_(v) for k, v in self.flags.items()]
        if self.territory:
            out.append(t.c.territories.like(bindparam("territory", type_=Text)))
        if self.q is not None:
            out.append(_search(sqlite, t))
        return out

    def _on_decisions(self) -> bool:
        """Whether this query has terms on a decision's fields (:meth:`_decision_terms`)."""
        return bool(self.flags or self.territory or self.q is not None or any(k in DECISION_FIELDS for k in self.equal))

    def _few(self, session: Session, tree_size: int) -> bool | None:
        """Whether few decisions match (:meth:`_followup_term_of`); None if
        none does, so no follow-up can match (each part would otherwise read
        every follow-up, or the candidates of the text, to find none).

        Two plans of the follow-up parts, chosen by counting (up to :data:`FEW_DECISIONS`) the
        matching decisions: when they are few, their follow-ups are listed
        through ``record_index_ref`` and the page probes that list (its
        cost grows with the decisions); when they are many, the page reads
        follow-ups newest first and probes each one's decision through
        the unique (platform, record_id) index (its cost grows with the
        follow-ups it reads before the page is full, few when many
        decisions match). The answer is the same either way (tested).

        "Many" is remembered (:data:`_MANY`): a decision in one tree is in
        every larger tree, so a query that once counted many always does,
        and its pages then run no count.
        """
        bind = session.get_bind()
        sqlite = is_sqlite(bind)  # type: ignore[arg-type]
        values = self.params(tree_size)
        del values["tree_size"]
        many = (str(bind.engine.url), self.shape(), tuple(sorted(values.items())))
        if many in _MANY:
            return False

        def build() -> Select[Any]:
            d = _DECISION
            part = self._searched(sqlite, d, Part(self._matching(sqlite, d), d))
            counted = part.select(d.c.leaf_index).limit(bindparam("few_decisions", type_=Integer))
            return select(func.count()).select_from(counted.subquery())

        stmt = _driver(session, ("few", sqlite, self.shape()), build)
        decisions = int(stmt.rows(session, self.params(tree_size))[0][0])
        if decisions >= FEW_DECISIONS:
            if len(_MANY) >= _BUILT_MAX:
                _MANY.clear()
            _MANY.add(many)
        return None if decisions == 0 else decisions < FEW_DECISIONS

    def _matching(self, sqlite: bool, d: NamedFromClause) -> list[ColumnElement[bool]]:
        """The terms on ``d`` (an alias of ``record_index``) of a matching decision in the tree.

        The type is checked, never searched (``type + 0``, as in
        :func:`superseded`): offered ``type = ?``, SQLite's planner (no
        ANALYZE statistics) counted a subject's or a rule's decisions by
        reading every decision through record_index_type, 67 ms of CPU at
        200,000 records for a subject with none, where the filter's own
        index (subject_key, leaf_index) finds them directly.
        """
        decision = type_coerce(d.c.type, Integer) + 0 == _DECISION_CODE
        return [decision, d.c.leaf_index < TREE_SIZE, *self._decision_terms(sqlite, d)]

    def _followup_term_of(self, sqlite: bool, few: bool) -> ColumnElement[bool]:
        """The term on a ``record_index`` row that its decision matches the
        decision terms (:meth:`_few`): ``few`` lists the follow-ups of the matching decisions."""
        c = record_index.c
        d = _DECISION
        matching = self._matching(sqlite, d)
        if few:
            f = _FOLLOWUP
            decisions = self._searched(sqlite, d, Part(matching, d))
            joined = decisions.source.join(f, and_(d.c.platform == f.c.platform, d.c.record_id == f.c.ref_record_id))
            listed = Part([*decisions.terms, f.c.type.in_(FOLLOWUP_TYPES)], joined).select(f.c.leaf_index)
            return c.leaf_index.in_(listed)
        # Each follow-up probes its own decision: the text term reads that
        # decision's text, with no candidate list from the full-text index.
        return exists(
            select(d.c.leaf_index).where(d.c.platform == c.platform, d.c.record_id == c.ref_record_id, *matching)
        )


#: The aliases of the follow-up terms, built once: building an alias and its
#: columns took SQLAlchemy about 5 ms, three times for each page of the feed.
_DECISION = record_index.alias("decision")
_FOLLOWUP = record_index.alias("followup")

#: The types of record that refer to a decision and are found through it.
FOLLOWUP_TYPES = ("appeal", "amendment")
#: Up to this many matching decisions, a feed lists their follow-ups
#: (:meth:`Feed._followup_term`); from it on, it probes each follow-up's decision.
FEW_DECISIONS = 500

#: The tree size every statement of the feed is bound to (:meth:`Feed.params`).
TREE_SIZE = bindparam("tree_size", type_=Integer)


def _equal(k: str) -> BindParameter[Any]:
    """The bind parameter of the equality filter on ``k``, typed as its column (a code binds its text)."""
    return bindparam(f"eq_{k}", type_=record_index.c[k].type)


#: Statements and parts of the feed by what they depend on beyond their
#: bind parameters (:meth:`Feed.shape`, the dialect, the plan), built once:
#: building a page's statements and their cache keys took SQLAlchemy about
#: half of a page's CPU (docs/performance.md). Bounded, since the filters
#: combine in many ways: cleared when full, as a worker's first requests
#: fill it again.
_BUILT: dict[tuple[Any, ...], Any] = {}
_BUILT_MAX = 4096
#: The queries (database, shape, values but the tree size, and so
#: :data:`FEW_DECISIONS`) that counted many matching decisions (:meth:`Feed._few`).
#: Only a plan, never an answer, rests on it: a stale entry (a database
#: rebuilt under the same URL) costs time, not correctness.
_MANY: set[tuple[Any, ...]] = set()
T = TypeVar("T")


def _built(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    found = _BUILT.get(key)
    if found is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        found = _BUILT[key] = build()
    return found  # type: ignore[no-any-return]


def _driver(session: Session, key: tuple[Any, ...], build: Callable[[], Select[Any]]) -> DriverStatement:
    """The statement kept under ``key`` (:func:`_built`), compiled once for
    the session's database to run on the driver's cursor (``ledger.db.DriverStatement``):
    SQLAlchemy's execution of a kept statement was 29-38% of a JSON feed
    page's CPU (docs/performance.md, session 10)."""
    dialect = session.get_bind().dialect
    return _built(("driver", dialect.name, *key), lambda: DriverStatement(_built(key, build), dialect))


def _search(sqlite: bool, t: NamedFromClause = record_index) -> ColumnElement[bool]:
    """The term on ``t`` that a row's text holds the query's text
    (:meth:`Feed.params`): exact on its own, a substring match of the lower-cased text."""
    if sqlite:
        # Both sides are lower-cased (index_row), so this is the substring
        # match that LIKE is on PostgreSQL, with nothing to escape. SQLite's
        # full-text index names the candidates (Feed._searched).
        return func.instr(t.c.search_text, bindparam("q", type_=Text)) > 0
    return t.c.search_text.like(bindparam("q_like", type_=Text), escape="\\")


def _search_text(q: str) -> str:
    q = q.strip().lower()
    if len(q) < MIN_SEARCH:
        raise InvalidInput(f"search text needs at least {MIN_SEARCH} characters")
    return q


def _trigrams(q: str) -> str:
    """The FTS5 query that finds the rows of ``record_search`` holding every trigram of ``q``.

    record_search keeps which rows hold each trigram, not where (detail=none,
    migration 0010_storage: a quarter of the size), so it cannot match a
    phrase: it finds the candidates, and :func:`_search` keeps those that
    hold the text itself.
    """
    q = _search_text(q)
    trigrams = dict.fromkeys(q[i : i + 3] for i in range(len(q) - 2))
    return " AND ".join('"' + g.replace('"', '""') + '"' for g in trigrams)


#: SQLite's full-text index of ``record_index.search_text`` (FTS5, trigram,
#: external content, migration 0010_storage); its row ID is the leaf index.
#: The column named as the table is FTS5's hidden column that MATCH takes.
_RECORD_SEARCH = table("record_search", column("rowid", Integer), column("record_search", Text))


class CrossJoin(Join):
    """An inner join that SQLite must run left table first: ``CROSS JOIN``,
    which its planner never reorders (https://sqlite.org/lang_select.html#crossjoin).
    Only ever built for SQLite."""

    inherit_cache = True

    def __init__(self, left: FromClause, right: FromClause, onclause: ColumnElement[bool]) -> None:
        super().__init__(left, right, onclause)


@compiles(CrossJoin)
def _cross_join(join: CrossJoin, compiler: SQLCompiler, **kw: Any) -> str:
    # As SQLCompiler.visit_join with its join word changed; from_linter is
    # passed on so that SQLAlchemy still sees both sides as joined.
    kw["asfrom"] = True
    left = join.left._compiler_dispatch(compiler, **kw)
    right = join.right._compiler_dispatch(compiler, **kw)
    if join.onclause is None:
        raise AssertionError("a CROSS JOIN is built with its ON clause")
    return f"{left} CROSS JOIN {right} ON {join.onclause._compiler_dispatch(compiler, **kw)}"


@dataclass(frozen=True, eq=False)
class Part:
    """One part of a feed query (:meth:`Feed.branches`): the rows of
    ``source`` (``record_index``, an alias of it, or SQLite's full-text index
    joined to one) that satisfy every one of ``terms``. ``logged`` is the
    column to read it by in log order: the full-text index's row ID when
    that index comes first, so its order is the one SQLite reads.

    Its terms hold bind parameters (:meth:`Feed.params`); a part is built
    once per query shape and shared (:func:`_built`), so it compares and
    hashes by identity, and nobody changes its terms."""

    terms: list[ColumnElement[bool]]
    source: FromClause = record_index
    logged: ColumnElement[Any] = record_index.c.leaf_index

    def select(self, *what: Any) -> Select[Any]:
        return select(*what).select_from(self.source).where(*self.terms)


def count_statement(session: Session, parts: Sequence[Part], cap: int) -> DriverStatement:
    """``SELECT count(*)`` of the union of ``parts``' rows, each part read
    up to ``cap + 1`` rows (:func:`ledger.browse.count_feed`), bound to
    :meth:`Feed.params`: built once per shape and kept as the page's
    statements are (:func:`_driver`; building it with SQLAlchemy's cache key
    was a tenth of the web feed's CPU a page, issue 14)."""
    shape = tuple(parts)
    return _driver(session, ("count", *shape, cap), functools.partial(_count_statement, shape, cap))


def _count_statement(parts: tuple[Part, ...], cap: int) -> Select[Any]:
    c = record_index.c
    limited = [part.select(c.leaf_index).limit(cap + 1).subquery() for part in parts]
    matching = union(*(select(p.c.leaf_index) for p in limited)).subquery() if len(limited) > 1 else limited[0]
    return select(func.count()).select_from(matching)


def followups_statement(session: Session, platforms: int) -> DriverStatement:
    """The statement of :func:`ledger.browse.followups` for a page naming
    ``platforms`` platforms, bound to ``tree_size``, and ``platform_<i>`` and
    ``ids_<i>`` (a list) of each: built once per number of platforms and
    kept as the page's statements are (:func:`_driver`; building it with
    SQLAlchemy's cache key was a tenth of a web page's CPU, issue 14)."""
    return _driver(session, ("followups", platforms), functools.partial(_followups_statement, platforms))


def _followups_statement(platforms: int) -> Select[Any]:
    c = record_index.c
    terms = [
        and_(c.platform == bindparam(f"platform_{i}"), c.ref_record_id.in_(bindparam(f"ids_{i}", expanding=True)))
        for i in range(platforms)
    ]
    # Read through record_index_ref alone: its partial index's condition is
    # stated, and the type and the order are left to Python. Given ORDER BY
    # leaf_index or ``type IN (...)``, SQLite (no statistics) read every
    # record of the platform through (platform, leaf_index) instead: ~50 ms
    # of a 60 ms web page at 200k records (issue 14).
    return (
        select(c.leaf_index, c.platform, c.type, c.record_id, c.ref_record_id, c.appeal_outcome)
        .add_columns(c.decided_at_ms, c.logged_at_ms)
        .where(c.leaf_index < bindparam("tree_size"), c.ref_record_id.is_not(None), or_(*terms))
    )


def superseded() -> ColumnElement[bool]:
    """A decision, or an amendment of one, that a later amendment in the
    tree of the bound ``tree_size`` (:data:`TREE_SIZE`) replaces: as of that
    tree, so that a page pinned to it says the same while the log grows.

    Two EXISTS, one per record type, rather than one EXISTS over an OR:
    each then probes ``record_index_ref`` (platform, ref_record_id) with
    one equality per column, where the OR made the planners scan.
    """
    me = record_index.c

    def later_amendment(later: NamedFromClause, of: ColumnElement[Any]) -> ColumnElement[bool]:
        # ``leaf_index + 0``: the bounds on the later row's position are
        # checked, never searched. Offered them as index terms, SQLite's
        # planner (no ANALYZE statistics) read record_index_type (type,
        # leaf_index) from the row to the tree's end instead of probing
        # record_index_ref: every amendment after the row, 1.0 s of CPU for
        # 50 rows near the start of 400,000 (0.1 ms through the ref index),
        # and for every match where a page sorts by decision time or keeps
        # only current records. PostgreSQL probed record_index_ref either way.
        # The type too, since it is a SMALLINT code (migration 0012_codes):
        # offered ``type = ?``, SQLite read every amendment through
        # record_index_type.
        return exists().where(
            later.c.platform == me.platform,
            later.c.ref_record_id == of,
            type_coerce(later.c.type, Integer) + 0 == _AMENDMENT,
            later.c.leaf_index + 0 > me.leaf_index,
            later.c.leaf_index + 0 < TREE_SIZE,
        )

    return ((me.type == "decision") & later_amendment(_LATER[0], me.record_id)) | (
        (me.type == "amendment") & later_amendment(_LATER[1], me.ref_record_id)
    )


#: The stored codes of a decision's and an amendment's type (ledger/records/codes.py).
_DECISION_CODE = encode("type", "decision")
_AMENDMENT = encode("type", "amendment")
#: Built once: building an alias anew took SQLAlchemy about 2 ms of each feed request.
_LATER = (record_index.alias("later"), record_index.alias("later"))


SORTS = ("logged", "decided")

#: Every column of ``record_index``: what a page's rows hold unless the
#: caller names fewer (:func:`feed`). A JSON summary shows 21 of the 33 and
#: a card 19: read alone, they cost SQLite's JSON page 6-25% less CPU, and
#: psycopg builds fewer ``cursor.description`` columns a statement on
#: PostgreSQL (docs/performance.md, session 10).
COLUMNS = tuple(record_index.c.keys())

#: The sort key of ``sort=decided``: the decision time, records without one
#: (coverage statements) last, as -1; ties in log order, newest first.
DECIDED_KEY = func.coalesce(record_index.c.decided_at_ms, -1)


def feed(
    session: Session,
    query: Feed,
    tree_size: int,
    before: int | None,
    before_key: int | None = None,
    columns: Sequence[str] = COLUMNS,
) -> list[dict[str, Any]]:
    """Return up to ``query.limit`` rows newest first inside the tree of
    ``tree_size``, after the previous page's last row: below leaf index
    ``before`` in log order; for ``sort="decided"``, below (``before_key``,
    ``before``) in (decision time, leaf index) order. Each row holds the
    ``record_index`` ``columns`` the caller shows (every one by default),
    ``leaf_index``, ``superseded`` and ``sort_key`` (what :func:`encode_cursor`
    takes as ``key``)."""
    _check_page(query)
    if query.sort == "decided" and before is not None and before_key is None:
        raise InvalidInput("a page of the feed sorted by decision time needs a cursor of that order")
    cursor = None if before is None else (before if query.sort == "logged" else before_key, before)
    return page_rows(session, query, tree_size, query.limit, cursor, newest_first=True, columns=tuple(columns))


def _check_page(query: Feed) -> None:
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}")
    if query.sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")


def page_rows(
    session: Session,
    query: Feed,
    tree_size: int,
    limit: int,
    cursor: tuple[int | None, int] | None,
    newest_first: bool,
    columns: tuple[str, ...] | None = COLUMNS,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows of ``query`` in the tree of ``tree_size`` beyond
    ``cursor`` ((sort key, leaf index) of the row before them), in the
    query's order (``newest_first``, or its reverse): ``leaf_index``, the
    ``record_index`` ``columns``, ``superseded`` and ``sort_key``; only
    ``leaf_index`` and ``sort_key`` if ``columns`` is None.

    Each part of the query (:meth:`Feed.branches`) is read in that order
    through its index and stops at ``limit``; once the parts read so far
    fill the page, a later part only looks before the page's last row, so
    the work stays near the page's length whatever the log's size.
    """
    params = query.params(tree_size)
    if cursor is not None:
        params["cursor_key"], params["cursor_leaf"] = cursor
    names, decode = _built(("page_row", columns), functools.partial(_page_row, columns))
    found: dict[int, dict[str, Any]] = {}
    page: list[dict[str, Any]] = []
    for part in query.branches(session, tree_size):
        edge = len(page) == limit
        if edge:
            params["edge_key"], params["edge_leaf"] = page[-1]["sort_key"], page[-1]["leaf_index"]
        shape = (part, query.sort, limit, cursor is not None, edge, newest_first, columns)
        stmt = _driver(session, ("page", *shape), functools.partial(_page_statement, *shape))
        for r in stmt.rows(session, params):
            row = dict(zip(names, decode(r), strict=True))
            found.setdefault(row["leaf_index"], row)
        ranked = sorted(found.values(), key=lambda row: (row["sort_key"], row["leaf_index"]), reverse=newest_first)
        page = ranked[:limit]
    return page


def _page_statement(
    part: Part,
    sort: str,
    limit: int,
    cursor: bool,
    edge: bool,
    newest_first: bool,
    columns: tuple[str, ...] | None,
) -> Select[Any]:
    """The statement of one part of a page (:func:`page_rows`), bound to the
    query's :meth:`Feed.params` and to ``cursor_key``, ``cursor_leaf`` (the
    row before the page) if ``cursor``, ``edge_key``, ``edge_leaf`` (the
    page's last row so far) if ``edge``; its values are :func:`_page_row`'s."""
    c = record_index.c
    key: ColumnElement[Any] = DECIDED_KEY if sort == "decided" else c.leaf_index
    what: list[Any] = [c.leaf_index]
    if columns is not None:
        what += [_read(c[name]) for name in _without_leaf(columns)]
        what.append(superseded().label("superseded"))
    cols = [DECIDED_KEY, part.logged] if sort == "decided" else [part.logged]
    order = [col.desc() for col in cols] if newest_first else cols
    where = []
    if cursor:
        where.append(_beyond(sort, "cursor", not newest_first, part.logged))
    if edge:
        where.append(_beyond(sort, "edge", newest_first, part.logged))
    return part.select(*what, key.label("sort_key")).where(*where).order_by(*order).limit(limit)


def _without_leaf(columns: tuple[str, ...]) -> tuple[str, ...]:
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise AssertionError(f"a feed page of columns record_index lacks: {sorted(unknown)}")
    return tuple(name for name in columns if name != "leaf_index")


def _read(col: Any) -> Any:
    """``col`` as a page reads it: a coded column (ledger/records/codes.py)
    as its code, which :func:`_page_row`'s decoder looks up in a dict, where
    SQLAlchemy's decoding through ``Code`` (a call per column per row) took
    longer than the rest of reading the row."""
    return type_coerce(col, SmallInteger).label(col.name) if isinstance(col.type, Code) else col


def _page_row(columns: tuple[str, ...] | None) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The names of the values of a row of :func:`_page_statement` and the
    function from the driver's row to those values (codes decoded)."""
    if columns is None:
        return ("leaf_index", "sort_key"), tuple
    read = ("leaf_index", *_without_leaf(columns))
    coded = [name if isinstance(record_index.c[name].type, Code) else None for name in read]
    return (*read, "superseded", "sort_key"), row_decoder([*coded, None, None])


def _beyond(
    sort: str, at: str, after: bool, leaf: ColumnElement[Any] = record_index.c.leaf_index
) -> ColumnElement[bool]:
    """The rows after (``after``) or before the bound (``<at>_key``,
    ``<at>_leaf``) = (sort key, leaf index) in ascending order of ``sort``;
    ``leaf`` is the leaf index column of the part (:attr:`Part.logged`), so
    that a bound reaches the index read first."""
    key, at_leaf = bindparam(f"{at}_key", type_=BigInteger), bindparam(f"{at}_leaf", type_=BigInteger)
    if sort != "decided":
        return leaf > at_leaf if after else leaf < at_leaf
    decided = DECIDED_KEY
    if after:
        return or_(decided > key, and_(decided == key, leaf > at_leaf))
    return or_(decided < key, and_(decided == key, leaf < at_leaf))


def feed_indexes(session: Session, query: Feed, tree_size: int, limit: int) -> list[int]:
    """Return the leaf indexes of up to ``limit`` records matching ``query``
    inside the tree of ``tree_size``, in log order (oldest first)."""
    logged = dataclasses.replace(query, sort="logged")
    return [r["leaf_index"] for r in page_rows(session, logged, tree_size, limit, None, False, columns=None)]


def entries_at(session: Session, indexes: list[int]) -> list[tuple[int, bytes, bytes]]:
    """Return (index, leaf hash, entry) for each of ``indexes``, in index order; raise if any is missing."""
    stmt = (
        select(entries.c.idx, hashes.c.hash, entries.c.data)
        .join(hashes, and_(hashes.c.level == 0, hashes.c.idx == entries.c.idx))
        .where(entries.c.idx.in_(indexes))
        .order_by(entries.c.idx)
    )
    rows = [(r.idx, bytes(r.hash), storage.decode_stored(r.idx, bytes(r.data))) for r in session.execute(stmt)]
    if len(rows) != len(set(indexes)):
        raise AssertionError(f"the record index names entries that storage lacks among {len(indexes)} indexes")
    return rows


# Cursors and history, for the API and the web pages alike -------------------------

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


def encode_cursor(tree_size: int, before: int, key: int | None = None) -> str:
    """A feed page's cursor: base64url (unpadded) of ``<tree size>:<leaf index>``,
    and ``:<key + 1>`` in the order of ``sort=decided`` (``key`` is the last
    row's ``sort_key``, -1 for no decision time)."""
    raw = f"{tree_size}:{before}" if key is None else f"{tree_size}:{before}:{key + 1}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, int] | None:
    """Parse a log-order cursor exactly (it must re-encode to ``text``); None if it is not one this server issued."""
    parsed = decode_sorted_cursor(text)
    if parsed is None or parsed[2] is not None:
        return None
    return parsed[0], parsed[1]


def decode_sorted_cursor(text: str) -> tuple[int, int, int | None] | None:
    """Parse any cursor: (tree size, leaf index, decision-time key or None)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(_DECIMAL.fullmatch(p) for p in parts):
        return None
    key = int(parts[2]) - 1 if len(parts) == 3 else None
    if encode_cursor(int(parts[0]), int(parts[1]), key) != text:
        return None
    return int(parts[0]), int(parts[1]), key


@dataclass(frozen=True)
class History:
    """The appeals and amendments around one record (:data:`RECORD` rows, in log order)."""

    appeals: list[Any]
    amendments: list[Any]
    refers_to: Any | None
    superseded_by: Any | None


_ri = record_index.c
#: What a record page and the submissions know of a logged record: the
#: columns of the ``records`` table that migration 0015_fold_records folded
#: into ``record_index`` (the type read as its value, not its code).
RECORD = (
    _ri.leaf_index,
    _ri.platform,
    _ri.record_id,
    _ri.type,
    _ri.record_hash,
    _ri.key_id,
    _ri.logged_at_ms,
    _ri.ref_record_id,
)


def record_at(s: Session, leaf_index: int) -> Any | None:
    """The :data:`RECORD` row of the platform record at ``leaf_index``, or None."""
    return s.execute(select(*RECORD).where(_ri.leaf_index == leaf_index)).first()


def record_by_id(s: Session, platform: str, record_id: str) -> Any | None:
    """The :data:`RECORD` row of ``platform``'s record ``record_id``, or None
    (the unique index on (platform, record_id))."""
    return s.execute(select(*RECORD).where(_ri.platform == platform, _ri.record_id == record_id)).first()


def covering_checkpoint(s: Session, end: int) -> StoredCheckpoint | None:
    """The smallest signed checkpoint of at least ``end`` entries, or None if the log is smaller.

    A range's file names this one, so the bytes of a given range never change.
    """
    size = s.execute(
        select(checkpoints.c.size).where(checkpoints.c.size >= end).order_by(checkpoints.c.size).limit(1)
    ).scalar()
    if size is None:
        return None
    cp = storage.checkpoint_at(s, size)
    if cp is None:
        raise AssertionError(f"checkpoint {size} vanished inside one read transaction")
    return cp


def history(s: Session, row: Any) -> History:
    """Appeals and amendments of the decision ``row`` (a :data:`RECORD` row) is, or refers to.

    One range of ``record_index_ref`` by (platform, ref_record_id), each
    row then read from ``record_index`` by that index's pointer (one table
    since migration 0015_fold_records). An amendment
    restates the whole decision, so the latest amendment of a decision is
    its current version; every earlier version is superseded. A coverage
    statement's "amendments" are the later statements that supersede it.
    """
    target = row.record_id if row.type in ("decision", "coverage") else row.ref_record_id
    refs = s.execute(
        select(*RECORD).where(_ri.platform == row.platform, _ri.ref_record_id == target).order_by(_ri.leaf_index)
    ).all()
    amendments = [r for r in refs if r.type in ("amendment", "coverage")]
    refers_to = None if row.ref_record_id is None else record_by_id(s, row.platform, row.ref_record_id)
    latest = amendments[-1] if amendments else None
    superseded = latest is not None and row.type != "appeal" and latest.leaf_index > row.leaf_index
    return History(
        appeals=[r for r in refs if r.type == "appeal"],
        amendments=amendments,
        refers_to=refers_to,
        superseded_by=latest if superseded else None,
    )
