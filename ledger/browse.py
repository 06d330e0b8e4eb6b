"""The reads the web pages need beyond ``ledger.query`` (the feed, a record
by ID and its history, shared with the JSON API): one record by index or
its entry, platforms, a subject's summary, and the home page's counts.

``web/`` builds no SQL and imports no SQLAlchemy (tests/test_imports.py):
every query a page runs is a function here or in ``ledger.query``, and
pages hold the session they are given as an opaque :data:`Reader`.

Each function takes the caller's read session (principle 8) and uses an
index: records by leaf index, counts by the narrow per-column indexes of
``record_index``. The counts cost one pass over two of those indexes, so
they are cached per tree size: a log that does not grow is counted once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeAlias

from sqlalchemy import and_, func, select, union
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger import storage
from ledger.db import checkpoints, cosignatures, hashed_equal, platforms, record_index
from ledger.errors import InvalidInput, LedgerError
from ledger.log import LogProvider
from ledger.query import COLUMNS, MAX_PAGE, Feed, Part, count_statement, followups_statement, page_rows
from ledger.query import record_at as record_at  # the pages read a record through here
from ledger.records.entries import Entry, parse_entry
from ledger.storage import StoredCheckpoint

DEMO_PREFIX = "demo-"

#: A read session, as ``Log.read()`` yields it, named so pages can pass
#: one along without importing the database library.
Reader: TypeAlias = Session


@dataclass(frozen=True)
class Counts:
    by_platform: list[tuple[str, str, int]]  # (platform, type, count)
    by_class: list[tuple[str, int]]  # decisions per account class


def platform_names(s: Session) -> dict[str, str]:
    """Every registered platform's slug and display name, by slug."""
    return dict(s.execute(select(platforms.c.slug, platforms.c.display_name).order_by(platforms.c.slug)).all())


def is_demo(slug: str) -> bool:
    """Whether a platform is synthetic: its slug starts ``demo-`` (slugs are
    lower case). The one definition, for pages that have read the platforms
    and for :func:`has_demo_platform`."""
    return slug.startswith(DEMO_PREFIX)


def has_demo_platform(s: Session) -> bool:
    """Whether any registered platform is synthetic (:func:`is_demo`)."""
    # Every slug, tested in Python: a log registers tens of platforms, and
    # one definition beats a LIKE that must agree with it on both databases.
    return any(map(is_demo, s.execute(select(platforms.c.slug)).scalars()))


def shows_demo(provider: LogProvider) -> bool:
    """Whether the pages should say the log holds synthetic data; False
    when the log cannot be opened or read, so that an error page still renders."""
    try:
        with provider.log.read() as s:
            return has_demo_platform(s)
    except (LedgerError, SQLAlchemyError):
        return False


def entry_at(s: Session, index: int) -> tuple[bytes, Entry]:
    data = storage.read_entries(s, index, index + 1)[0]
    return data, parse_entry(data)


def subject_latest(s: Session, subject_key: str) -> tuple[Any, int] | None:
    """The newest index row about ``subject_key`` and how many records name it."""
    c = record_index.c
    mine = hashed_equal(s.get_bind(), c.subject_key, subject_key)
    row = s.execute(select(record_index).where(mine).order_by(c.leaf_index.desc()).limit(1)).first()
    if row is None:
        return None
    count = s.execute(select(func.count()).where(mine)).scalar_one()
    return row, int(count)


@dataclass(frozen=True)
class Person:
    """A person or body across platforms, by the Wikidata item platforms gave
    for their accounts (``record_index.qid``), in the tree of a given size."""

    qid: str
    #: The newest decision or amendment naming the item (an index row).
    latest: Any
    #: (platform, subject_key, records naming the item): each account they hold.
    accounts: list[tuple[str, str | None, int]]
    #: (platform, type, records) in the person's feed: their decisions and
    #: amendments, and the appeals and amendments found through a decision.
    by_platform: list[tuple[str, str, int]]
    #: (action, decisions): the current version of each of their decisions,
    #: the latest amendment's where one restates it.
    by_action: list[tuple[str | None, int]]


def person(s: Session, qid: str, tree_size: int) -> Person | None:
    """What the tree of ``tree_size`` holds about the person or body with
    Wikidata item ``qid``, or None if no record names it. Each query starts
    from ``record_index_qid`` (qid, leaf_index); the per-platform counts are
    of the feed's own parts (:meth:`Feed.branches`), so they add up to the
    feed the page lists."""
    c = record_index.c
    mine = and_(c.qid == qid, c.leaf_index < tree_size)
    latest = s.execute(select(record_index).where(mine).order_by(c.leaf_index.desc()).limit(1)).first()
    if latest is None:
        return None
    accounts = s.execute(
        select(c.platform, c.subject_key, func.count())
        .where(mine)
        .group_by(c.platform, c.subject_key)
        .order_by(c.platform, c.subject_key)
    ).all()
    # UNION, not UNION ALL: an amendment can name the item itself and amend a decision that does.
    everything = Feed(equal={"qid": qid})
    parts = everything.branches(s, tree_size)
    feed = union(*(part.select(c.leaf_index, c.platform, c.type) for part in parts)).subquery()
    by_platform = s.execute(
        select(feed.c.platform, feed.c.type, func.count())
        .group_by(feed.c.platform, feed.c.type)
        .order_by(feed.c.platform, feed.c.type),
        everything.params(tree_size),
    ).all()
    current_only = Feed(equal={"qid": qid}, direct=True, current_only=True)
    (current,) = current_only.branches(s, tree_size)
    by_action = s.execute(
        select(c.action, func.count())
        .where(c.type.in_(("decision", "amendment")), *current.terms)
        .group_by(c.action)
        .order_by(func.count().desc(), c.action),
        current_only.params(tree_size),
    ).all()
    return Person(
        qid,
        latest,
        [(p, k, int(n)) for p, k, n in accounts],
        [(p, t, int(n)) for p, t, n in by_platform],
        [(a, int(n)) for a, n in by_action],
    )


_counts_lock = threading.Lock()
_counts_cache: dict[tuple[str, int], Counts] = {}


def counts(s: Session, size: int) -> Counts:
    """Records per platform and type, decisions per account class, as of
    the tree of ``size`` (cached per database and size).

    Grown from the largest cached size below ``size``, counting only the
    records logged since (leaves are only ever appended, and each leaf's
    index row is committed with it): counted afresh, each new tree size
    cost the home page and the feed's exact counts ~210 ms of CPU at 200k
    records (issue 14)."""
    url = str(s.get_bind().engine.url)
    with _counts_lock:
        if (url, size) in _counts_cache:
            return _counts_cache[(url, size)]
        below = max((n for u, n in _counts_cache if u == url and n < size), default=0)
        base = _counts_cache.get((url, below), Counts([], []))
    c = record_index.c
    new = (c.leaf_index >= below, c.leaf_index < size)
    by_platform = Counter({(p, t): n for p, t, n in base.by_platform})
    for p, t, n in s.execute(select(c.platform, c.type, func.count()).where(*new).group_by(c.platform, c.type)):
        by_platform[(p, t)] += int(n)
    by_class = Counter(dict(base.by_class))
    for k, n in s.execute(
        select(c.account_class, func.count()).where(*new, c.type == "decision").group_by(c.account_class)
    ):
        by_class[k] += int(n)
    result = Counts(
        [(p, t, n) for (p, t), n in sorted(by_platform.items())],
        sorted(by_class.items(), key=lambda kn: (-kn[1], str(kn[0]))),
    )
    with _counts_lock:
        if len(_counts_cache) > 64:
            # Keep the largest size of each database to grow from.
            kept = {u: max(n for v, n in _counts_cache if v == u) for u, _ in _counts_cache}
            for key in [k for k in _counts_cache if kept[k[0]] != k[1]]:
                del _counts_cache[key]
        _counts_cache[(url, size)] = result
    return result


#: Counting a filtered view stops here: beyond it the page says "more than".
#: Twenty pages of 50: enough to tell a journalist a view is small and how
#: small, while a broad view of a large log stays cheap. At 100,000 the
#: count was most of the web page's CPU (75-270 ms a page at 200k records on
#: SQLite against 3-5 ms for the JSON page, which does not count; issue 14),
#: and on PostgreSQL a text search built the bitmap of every match.
COUNT_CAP = 1_000


def count_feed(s: Session, query: Feed, tree_size: int, cap: int = COUNT_CAP) -> int:
    """How many records in the tree of ``tree_size`` match ``query``, exact
    up to ``cap``; ``cap + 1`` means "more than ``cap``". The subquery's
    LIMIT bounds the work on a broad filter of a large log: each part of
    the query (:meth:`Feed.branches`) stops at ``cap + 1``, and their union
    is the count, or more than ``cap`` if any part reached it.

    The matching records are counted first, alone: past the cap, or for a
    ``direct`` query, that is the answer. Otherwise at most ``cap`` decisions match (fewer, if other
    filters narrowed them), and their follow-ups are listed through
    ``record_index_ref`` rather than every follow-up in the log probed.
    """

    def count(parts: list[Part]) -> int:
        if not parts:
            return 0
        counted = count_statement(s, parts, cap).rows(s, query.params(tree_size))
        return min(cap + 1, int(counted[0][0]))

    direct = dataclasses.replace(query, direct=True).branches(s, tree_size)
    matching = count(direct) if direct else 0
    if matching > cap or query.direct:
        return matching
    return count(query.branches(s, tree_size, few=True if direct else None))


def tally_feed(s: Session, query: Feed, tree_size: int) -> int | None:
    """How many records in the tree of ``tree_size`` match ``query``, exactly,
    if it filters on the record's platform and type alone (the unfiltered
    feed included): from :func:`counts`, which the home page also shows and
    which is kept per tree size. None for any other query (:func:`count_feed`)."""
    plain = Feed(equal={k: v for k, v in query.equal.items() if k in ("platform", "type")})
    if dataclasses.replace(query, sort=plain.sort, limit=plain.limit, direct=plain.direct) != plain:
        return None
    wanted = query.equal
    return sum(
        n
        for platform, type_, n in counts(s, tree_size).by_platform
        if wanted.get("platform", platform) == platform and wanted.get("type", type_) == type_
    )


def followups(s: Session, rows: list[dict[str, Any]], tree_size: int) -> dict[int, list[dict[str, Any]]]:
    """The appeals and amendments, in the tree of ``tree_size``, of the
    decisions ``rows`` (feed rows) are or amend, by the leaf index of each
    row: what a card shows as "reversed on appeal, 2 November 2026".

    One query on ``record_index_ref`` (platform, ref_record_id), whatever
    the page's length.
    """
    wanted: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        target = r["record_id"] if r["type"] == "decision" else r["ref_record_id"]
        if r["type"] != "appeal" and target is not None:
            wanted.setdefault((r["platform"], target), []).append(r["leaf_index"])
    if not wanted:
        return {}
    by_platform: dict[str, list[str]] = {}
    for platform, record_id in wanted:
        by_platform.setdefault(platform, []).append(record_id)
    params: dict[str, Any] = {"tree_size": tree_size}
    for i, (platform, ids) in enumerate(by_platform.items()):
        params[f"platform_{i}"], params[f"ids_{i}"] = platform, ids
    stmt = followups_statement(s, len(by_platform))
    out: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(stmt.rows(s, params), key=itemgetter(0)):  # the leaf index
        found = dict(zip(stmt.names, row, strict=True))
        if found["type"] not in ("appeal", "amendment"):
            continue
        for leaf in wanted.get((found["platform"], found["ref_record_id"]), []):
            if leaf != found["leaf_index"]:
                out.setdefault(leaf, []).append(found)
    return out


def feed_newer(
    s: Session,
    query: Feed,
    tree_size: int,
    after: int,
    after_key: int | None = None,
    columns: Sequence[str] = COLUMNS,
) -> tuple[list[dict[str, Any]], bool]:
    """The page before a feed page: up to ``query.limit`` rows above the
    first row of the page the reader is on (leaf index ``after``; for
    ``sort="decided"``, (``after_key``, ``after``) in (decision time, leaf
    index) order) in the tree of ``tree_size``, in the order
    ``ledger.query.feed`` returns them, and whether still newer rows match.
    Read upwards from that row (one row more, to know) and turned round, so
    the page joins the one it came from without a gap or an overlap. Its
    rows hold ``columns`` as ``ledger.query.feed``'s do."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}")
    if query.sort == "decided" and after_key is None:
        raise InvalidInput("a page of the feed sorted by decision time needs a cursor of that order")
    cursor = (after if query.sort == "logged" else after_key, after)
    rows = page_rows(s, query, tree_size, query.limit + 1, cursor, newest_first=False, columns=tuple(columns))
    return rows[: query.limit][::-1], len(rows) > query.limit


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint the log signed, and the witnesses that cosigned it."""

    checkpoint: StoredCheckpoint
    witnesses: list[str]


def signed_checkpoints(s: Session, below: int | None, limit: int) -> list[SignedCheckpoint]:
    """Up to ``limit`` signed checkpoints, largest first, all of size below
    ``below`` (None: from the latest), each with its cosigners' names."""
    c = checkpoints.c
    stmt = select(checkpoints).order_by(c.size.desc()).limit(limit)
    if below is not None:
        stmt = stmt.where(c.size < below)
    rows = [StoredCheckpoint(r.size, bytes(r.root), bytes(r.note), r.created_at_ms) for r in s.execute(stmt)]
    names: dict[int, list[str]] = {}
    if rows:
        w = cosignatures.c
        found = s.execute(
            select(w.size, w.witness_name)
            .where(w.size.in_([cp.size for cp in rows]))
            .order_by(w.size, w.witness_name, w.witness_key_id)
        )
        for size, name in found:
            names.setdefault(size, []).append(name)
    return [SignedCheckpoint(cp, names.get(cp.size, [])) for cp in rows]
