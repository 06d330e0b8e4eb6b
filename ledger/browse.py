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

import threading
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger import storage
from ledger.db import platforms, record_index, records
from ledger.errors import LedgerError
from ledger.log import LogProvider
from ledger.query import Feed
from ledger.records.entries import Entry, parse_entry

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


def has_demo_platform(s: Session) -> bool:
    """Whether any registered platform is synthetic (its slug starts ``demo-``)."""
    # LIKE, not a range: PostgreSQL's collations need not sort "-" by its byte.
    # Slugs are lower-case, so SQLite's case-blind LIKE means the same here.
    stmt = select(platforms.c.slug).where(platforms.c.slug.startswith(DEMO_PREFIX, autoescape=True)).limit(1)
    return s.execute(stmt).first() is not None


def shows_demo(provider: LogProvider) -> bool:
    """Whether the pages should say the log holds synthetic data; False
    when the log cannot be opened or read, so that an error page still renders."""
    try:
        with provider.log.read() as s:
            return has_demo_platform(s)
    except (LedgerError, SQLAlchemyError):
        return False


def record_at(s: Session, index: int) -> Any | None:
    return s.execute(select(records).where(records.c.leaf_index == index)).first()


def entry_at(s: Session, index: int) -> tuple[bytes, Entry]:
    data = storage.read_entries(s, index, index + 1)[0]
    return data, parse_entry(data)


def subject_latest(s: Session, subject_key: str) -> tuple[Any, int] | None:
    """The newest index row about ``subject_key`` and how many records name it."""
    c = record_index.c
    row = s.execute(
        select(record_index).where(c.subject_key == subject_key).order_by(c.leaf_index.desc()).limit(1)
    ).first()
    if row is None:
        return None
    count = s.execute(select(func.count()).where(c.subject_key == subject_key)).scalar_one()
    return row, int(count)


_counts_lock = threading.Lock()
_counts_cache: dict[tuple[str, int], Counts] = {}


def counts(s: Session, size: int) -> Counts:
    """Records per platform and type, decisions per account class, as of
    the tree of ``size`` (cached per database and size)."""
    key = (str(s.get_bind().engine.url), size)
    with _counts_lock:
        if key in _counts_cache:
            return _counts_cache[key]
    c = record_index.c
    by_platform = s.execute(
        select(c.platform, c.type, func.count())
        .where(c.leaf_index < size)
        .group_by(c.platform, c.type)
        .order_by(c.platform, c.type)
    ).all()
    by_class = s.execute(
        select(c.account_class, func.count())
        .where(c.leaf_index < size, c.type == "decision")
        .group_by(c.account_class)
        .order_by(func.count().desc())
    ).all()
    result = Counts([(p, t, int(n)) for p, t, n in by_platform], [(k, int(n)) for k, n in by_class])
    with _counts_lock:
        if len(_counts_cache) > 64:
            _counts_cache.clear()
        _counts_cache[key] = result
    return result


#: Counting a filtered view stops here: beyond it the page says "more than".
COUNT_CAP = 100_000


def count_feed(s: Session, query: Feed, tree_size: int, cap: int = COUNT_CAP) -> int:
    """How many records in the tree of ``tree_size`` match ``query``, exact
    up to ``cap``; ``cap + 1`` means "more than ``cap``". The subquery's
    LIMIT bounds the work on a broad filter of a large log."""
    matching = (
        select(record_index.c.leaf_index)
        .where(and_(record_index.c.leaf_index < tree_size, *query.conditions(s)))
        .limit(cap + 1)
        .subquery()
    )
    return int(s.execute(select(func.count()).select_from(matching)).scalar_one())
