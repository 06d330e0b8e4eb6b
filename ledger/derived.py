"""Rows derived from log entries: written from one definition, audited against it.

Every table a reader sees besides the log itself (platforms, their keys and
revocations, the records' table ``record_index``, which is also the feed's
query index, and published statistics) holds rows that are a function of one log entry and its index
alone. The write paths build their rows here (:func:`record_rows` for the
submission committer, :func:`registry_rows` for the registry and
``publish-stats``), inside the sequencer's transaction; :func:`check_range`
derives the rows of a range of entries again and compares them with what
the database holds, column by column. So the statistics, the feed and the
pages, which read those tables, cannot differ from the entries without the
audit (``flask ledger audit``) and the server's own check naming the table,
the row, the column and both values.

The tables are append-only (database triggers, migrations 0002, 0005 and
0006); an operator with database access can drop a trigger, which is why
the rows are also checked. ``record_search``, SQLite's full-text index, is
an FTS5 index over ``record_index.search_text`` (external content): FTS5's
own ``integrity-check`` compares it with that column (:func:`check_search`).
On PostgreSQL the text search is a GIN index of the same column, inside the
database's own consistency guarantees.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
from sqlalchemy import Boolean, Column, Connection, Engine, Select, Table, bindparam, func, select, text, type_coerce
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger import storage
from ledger.db import (
    Code,
    coverage_statements,
    driver_sql,
    encode_rows,
    insert_values,
    is_sqlite,
    key_revocations,
    platform_keys,
    platforms,
    published_statistics,
    record_index,
    writer,
)
from ledger.errors import DerivedDataError, InvalidInput, StorageError
from ledger.query import insert_index, insert_index_values
from ledger.records.codes import CODES
from ledger.records.coverage import Statement, counts_text, parse_statement
from ledger.records.index_rows import index_row, time_ms

#: The derived tables, in the order rows are inserted (foreign keys first).
TABLES: tuple[Table, ...] = (
    platforms,
    platform_keys,
    key_revocations,
    record_index,
    published_statistics,
    coverage_statements,
)
_BY_NAME = {t.name: t for t in TABLES}

Rows = dict[str, list[dict[str, Any]]]

_AFTER_EVERY_ROW = 2**63 - 1
_ENTRY_KEYS = ({"logged_at", "record", "signature"}, {"logged_at", "registry", "signature"})

#: Entries read per round trip by :func:`fill_index`.
FILL_BATCH = 2048


def record_rows(leaf_index: int, logged_at_ms: int, record: dict[str, Any], record_hash: bytes, key_id: str) -> Rows:
    """The rows of a platform record logged at ``leaf_index``.

    ``record_hash`` is the SHA-256 of the record's canonical bytes, and
    ``key_id`` the signing key named by the entry's signature.
    """
    row = index_row(leaf_index, logged_at_ms, record)
    row["record_hash"] = record_hash
    row["key_id"] = key_id
    rows: Rows = {"record_index": [row]}
    if record["type"] == "coverage":
        rows["coverage_statements"] = [coverage_row(parse_statement(record, leaf_index))]
    return rows


def coverage_row(s: Statement) -> dict[str, Any]:
    """The ``coverage_statements`` row of a statement."""
    return {
        "leaf_index": s.leaf_index,
        "platform": s.platform,
        "record_id": s.record_id,
        "period": s.period,
        "rule_id": s.rule_id,
        "criterion": s.criterion,
        "supersedes": s.supersedes,
        "counts": counts_text(s.counts),
    }


def registry_rows(leaf_index: int, logged_at_ms: int, event: dict[str, Any]) -> Rows:
    """The rows of a registry event logged at ``leaf_index`` (see ledger/registry.py)."""
    kind = event["event"]
    if kind == "platform_added":
        return {
            "platforms": [
                {
                    "slug": event["platform"],
                    "display_name": event["display_name"],
                    "created_at_ms": logged_at_ms,
                    "leaf_index": leaf_index,
                }
            ],
            "platform_keys": [_key_row(leaf_index, logged_at_ms, event)],
        }
    if kind == "key_added":
        return {"platform_keys": [_key_row(leaf_index, logged_at_ms, event)]}
    if kind == "key_revoked":
        revoked_from_ms = time_ms(event["revoked_from"])
        if revoked_from_ms is None:
            raise InvalidInput(f"entry {leaf_index}: revoked_from is not a time")
        row = {"key_id": event["key_id"], "revoked_from_ms": revoked_from_ms, "reason": event["reason"]}
        return {"key_revocations": [row | {"leaf_index": leaf_index}]}
    if kind == "statistics_published":
        row = {
            "tree_size": event["tree_size"],
            "method_version": event["method_version"],
            "leaf_index": leaf_index,
            "document_sha256": event["document_sha256"],
        }
        return {"published_statistics": [row]}
    raise InvalidInput(f"entry {leaf_index}: unknown registry event {kind!r}")


def _key_row(leaf_index: int, logged_at_ms: int, event: dict[str, Any]) -> dict[str, Any]:
    key = event["key"]
    return {
        "key_id": key["key_id"],
        "platform": event["platform"],
        "public_key": base64.b64decode(key["public_key"], validate=True),
        "valid_from_ms": logged_at_ms,
        "leaf_index": leaf_index,
    }


def entry_rows(leaf_index: int, data: bytes) -> Rows:
    """The rows derived from the entry ``data`` at ``leaf_index``.

    Bytes that are not a ledger entry derive nothing: the sequencer appends
    any bytes (the tests' logs hold such), while the ledger's write paths
    append only entries, and every entry is fixed by the signed tree.
    Whether an entry is canonical is the tree audit's and the client's
    concern, not this one's: the record's hash is taken over its bytes as
    they stand in the entry, between ``"record":`` and the entry's last
    ``,"signature":`` (a record's own keys and strings cannot end it: a
    string's quotes are escaped, and the entry's signature member is last).
    """
    try:
        obj = _parse(data)
    except ValueError:
        return {}
    # A dict's keys view compares with a set as a set would, without building one.
    if not isinstance(obj, dict) or obj.keys() not in _ENTRY_KEYS:
        return {}
    logged_at = obj["logged_at"]
    logged_at_ms = _logged_at_ms(logged_at) if isinstance(logged_at, str) else None
    if logged_at_ms is None:
        raise InvalidInput(f"entry {leaf_index}: logged_at is not a time")
    if "registry" in obj:
        return registry_rows(leaf_index, logged_at_ms, obj["registry"])
    body = data[data.index(b'"record":') + len(b'"record":') : data.rindex(b',"signature":')]
    record_hash = hashlib.sha256(body).digest()
    return record_rows(leaf_index, logged_at_ms, obj["record"], record_hash, obj["signature"]["key_id"])


#: ``time_ms`` of a ``logged_at`` text, kept for the last few: the entries
#: of one group commit share it (a batch of 1,000 records, or every single
#: record the sequencer integrated in one pass), so the audit parses it
#: about once a group.
_logged_at_ms = functools.lru_cache(maxsize=16)(time_ms)


def _parse(data: bytes) -> Any:
    """``json.loads(data)``, in half its time for what orjson reads alike.

    The audit parses every entry, and the standard parser was a third of
    deriving a record's rows. orjson refuses some input the standard parser
    reads (NaN, lone surrogates, UTF-16 and UTF-32), and reads an integer
    beyond 64 bits as a float where the standard parser keeps it exact; the
    rest it reads to the same objects. So what it refuses, and any entry
    holding 19 digits in a row (every integer that may not fit in 64 bits:
    2**63 has 19 digits), is read by the standard parser, and the rows are
    those the write paths derived either way.
    """
    if _NINETEEN_DIGITS not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


#: Maps each ASCII digit to "0" and every other byte to a space: a search
#: for 19 zeros in the result finds 19 digits in a row in a tenth of the
#: time of a regular expression.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_NINETEEN_DIGITS = b"0" * 19


def merge(into: Rows, rows: Rows) -> Rows:
    for name, table_rows in rows.items():
        into.setdefault(name, []).extend(table_rows)
    return into


#: Tuples of each table's columns in order, the closed vocabularies as their
#: codes: what ``ledger.db.encode_rows`` makes of rows and the driver takes.
TupleRows = dict[str, list[tuple[Any, ...]]]


def record_values(record: dict[str, Any], record_hash: bytes, key_id: str) -> TupleRows:
    """:func:`record_rows` of a record not yet placed (leaf_index and
    logged_at_ms 0) as tuples, for :func:`place_values` to place: the
    submissions build these in their request threads, so that the
    sequencer's lock is held only to write two numbers into each row."""
    rows = record_rows(0, 0, record, record_hash, key_id)
    # What encode_rows gives, through each table's generated function (a
    # dict row to its stored tuple in one expression, as the audit converts
    # them): 10 µs a record less than a tuple of the row and then its codes.
    values: TupleRows = {}
    for name, table_rows in rows.items():
        try:
            values[name] = list(map(_STORED[name], table_rows))
        except KeyError as e:  # a value without a code, worded as encode_rows words it
            raise ValueError(f"{name}: {e} has no code (ledger/records/codes.py)") from None
    return values


def _place_positions(table: Table) -> tuple[int, int | None]:
    columns = tuple(table.c.keys())
    return columns.index("leaf_index"), columns.index("logged_at_ms") if "logged_at_ms" in columns else None


# Where a record's place goes in the rows of each table :func:`record_rows`
# writes. A row depends on its place through these columns alone (rows_at
# copied rows with those two values replaced, before tuples).
_PLACES = {t.name: _place_positions(t) for t in (record_index, coverage_statements)}


def place_values(into: TupleRows, values: TupleRows, leaf_index: int, logged_at_ms: int) -> TupleRows:
    """Add to ``into`` the :func:`record_values` ``values`` logged at
    ``leaf_index`` and ``logged_at_ms``: the tuples of ``record_rows(leaf_index,
    logged_at_ms, ...)``."""
    for name, table_values in values.items():
        leaf, ms = _PLACES[name]
        out = into.setdefault(name, [])
        for value in table_values:
            row = list(value)
            row[leaf] = leaf_index
            if ms is not None:
                row[ms] = logged_at_ms
            out.append(tuple(row))
    return into


def insert_values_rows(session: Session | Connection, rows: TupleRows) -> None:
    """:func:`insert_rows` of rows as :func:`place_values` gives them."""
    for table in TABLES:
        table_values = rows.get(table.name)
        if not table_values:
            continue
        if table is record_index:
            insert_index_values(session, table_values)
        else:
            insert_values(session, table, table_values)


def insert_rows(session: Session | Connection, rows: Rows) -> None:
    """Insert derived rows, parents before children."""
    insert_values_rows(session, {name: encode_rows(_BY_NAME[name], r) for name, r in rows.items() if r})


@dataclass(frozen=True)
class Mismatch:
    """A derived row that differs from what its entry derives.

    ``column`` is None when the whole row is missing or has no entry
    deriving it; then ``expected`` and ``found`` say which.
    """

    #: The first tree size at which the mismatch shows (the entry's index + 1).
    at: int
    table: str
    key: tuple[Any, ...]
    column: str | None
    expected: Any
    found: Any

    def __str__(self) -> str:
        where = self.table
        if self.key:
            key = ", ".join(f"{c}={v!r}" for c, v in zip(_key_columns(self.table), self.key, strict=True))
            where = f"{self.table} row ({key})"
        if self.column is None:
            return f"{where}: expected {self.expected}, found {self.found}"
        return f"{where}, column {self.column}: expected {self.expected!r}, found {self.found!r}"


def _key_columns(table: str) -> list[str]:
    return [c.name for c in _BY_NAME[table].primary_key.columns]


def derive_range(start: int, entries: Iterable[bytes]) -> TupleRows:
    """The rows entries ``start``, ``start + 1``, ... derive, as tuples of
    each table's columns in log order, the closed vocabularies as their codes
    (the stored form, ledger/records/codes.py). Pure (no database): the
    audit runs it in worker processes. Raises :class:`InvalidInput` naming
    the first entry that cannot be read (or holds a value without a code)."""
    entries = list(entries)
    tables: dict[str, list[dict[str, Any]]] = {}
    for i, data in enumerate(entries, start):
        try:
            rows = entry_rows(i, data)
        except (InvalidInput, KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"entry {i} cannot be read to derive its rows: {e}") from None
        for name, table_rows in rows.items():
            tables.setdefault(name, []).extend(table_rows)
    # Each table's rows to their stored tuples in one pass, a generated
    # function a row (a tenth of deriving them, entry by entry, before).
    try:
        return {name: list(map(_STORED[name], table_rows)) for name, table_rows in tables.items()}
    except (KeyError, TypeError, ValueError):
        _first_unconvertible(start, entries)


def _first_unconvertible(start: int, entries: list[bytes]) -> NoReturn:
    """Raise :func:`derive_range`'s error for the first of ``entries`` whose
    rows do not convert to their stored tuples (a value without a code)."""
    for i, data in enumerate(entries, start):
        try:
            for name, rows in entry_rows(i, data).items():
                list(map(_STORED[name], rows))
        except (InvalidInput, KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"entry {i} cannot be read to derive its rows: {e}") from None
    raise AssertionError("derived: a batch's rows did not convert, yet each entry's did")


def _stored_row(table: Table) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``lambda r: (r["leaf_index"], _1[r["type"]], ...)``: a derived row to
    its stored tuple, each closed vocabulary's value to its code (``_i`` the
    codes of column ``i``; a value without a code raises ``KeyError``, as
    :func:`ledger.records.codes.row_encoder`). Only the table's own column
    names go into the source."""
    lookups = {f"_{i}": {**CODES[c.type.column], None: None} for i, c in enumerate(table.c) if isinstance(c.type, Code)}
    items = "".join(
        f"_{i}[r[{c.name!r}]], " if f"_{i}" in lookups else f"r[{c.name!r}], " for i, c in enumerate(table.c)
    )
    made: Callable[[dict[str, Any]], tuple[Any, ...]] = eval(f"lambda r: ({items})", lookups)  # noqa: S307
    return made


_STORED = {t.name: _stored_row(t) for t in TABLES}


def check_range(session: Session, start: int, end: int, entries: Iterable[bytes]) -> list[Mismatch]:
    """Compare the derived rows of entries [start, end) with the stored ones.

    ``entries`` are the entries' bytes in index order, as already read (the
    audit reads them once for the tree and the rows). Returns mismatches in
    log order.
    """
    return compare_range(session, start, end, derive_range(start, entries))


def compare_range(session: Session, start: int, end: int, expected: TupleRows) -> list[Mismatch]:
    """Compare ``expected``, the rows entries [start, end) derive
    (:func:`derive_range`), with the stored ones; return mismatches in log order.

    Reads each derived table once, by its ``leaf_index`` range in log
    order, and compares the two lists of tuples whole, which is what an
    intact table costs; only a table whose lists differ is matched row by
    row, by key, and column by column.
    """
    found: list[Mismatch] = []
    for table in TABLES:
        want = expected.get(table.name, [])
        # The driver's own tuples first (SQLAlchemy's rows cost as much again
        # as the fetch): psycopg and sqlite3 both return bytes for binary
        # columns and ints and strings as such, so an intact table's rows
        # equal the derived tuples. The one type SQLAlchemy converts is
        # SQLite's Boolean (0/1 to bool), and 0/1 equal False/True, so only
        # a derived value in a Boolean column that is not a bool could compare
        # differently: then, and whenever the lists differ, the rows are read
        # again through SQLAlchemy and matched one by one.
        raw, _ = driver_sql(session, _IN_LOG_ORDER[table.name], (start, end))
        if raw == want and _plain_booleans(table, want):
            continue
        have = session.execute(_in_log_order(table), {"start": start, "end": end}).all()
        if have != want:
            found.extend(_differences(table, want, map(tuple, have)))
    return sorted(found, key=lambda m: m.at)


def _order(table: Table) -> list[Column[Any]]:
    return [table.c.leaf_index, *(c for c in table.primary_key.columns if c.name != "leaf_index")]


def _in_log_order(table: Table) -> Select[Any]:
    """The rows of ``table`` in a leaf range, as stored: a :class:`Code`
    column's codes are read as the integers they are, not as their values."""
    c = table.c
    stored = [type_coerce(col, col.type.impl).label(col.name) if isinstance(col.type, Code) else col for col in c]
    return (
        select(*stored)
        .where(c.leaf_index >= bindparam("start"), c.leaf_index < bindparam("end"))
        .order_by(*_order(table))
    )


_IN_LOG_ORDER = {
    t.name: f"SELECT {', '.join(t.c.keys())} FROM {t.name} WHERE leaf_index >= ? AND leaf_index < ? "
    f"ORDER BY {', '.join(c.name for c in _order(t))}"
    for t in TABLES
}
_BOOLEANS = {t.name: [i for i, c in enumerate(t.c) if isinstance(c.type, Boolean)] for t in TABLES}


def _plain_booleans(table: Table, rows: list[tuple[Any, ...]]) -> bool:
    """Whether every value of ``rows`` in a Boolean column of ``table`` is True, False or None."""
    at = _BOOLEANS[table.name]
    return not at or all(row[i] is True or row[i] is False or row[i] is None for row in rows for i in at)


def _differences(table: Table, expected: list[tuple[Any, ...]], stored: Iterable[tuple[Any, ...]]) -> list[Mismatch]:
    """The rows of ``table`` missing, extra or differing, matched by primary key."""
    columns = list(table.c.keys())
    at_key = [columns.index(c.name) for c in table.primary_key.columns]
    at_leaf = columns.index("leaf_index")
    want = {tuple(row[k] for k in at_key): row for row in expected}
    have = {tuple(row[k] for k in at_key): row for row in stored}
    found: list[Mismatch] = []
    for key, row in want.items():
        stored_row = have.pop(key, None)
        if stored_row is None:
            found.append(Mismatch(row[at_leaf] + 1, table.name, key, None, "a row", "none"))
        elif stored_row != row:
            for column, value, stored_value in zip(columns, row, stored_row, strict=True):
                if value != stored_value:
                    found.append(Mismatch(row[at_leaf] + 1, table.name, key, column, value, stored_value))
    for key, stored_row in have.items():
        found.append(Mismatch(int(stored_row[at_leaf]) + 1, table.name, key, None, "no row", "a row no entry derives"))
    return found


def check_beyond(session: Session) -> list[Mismatch]:
    """Derived rows that claim entries at or beyond the head, which the log does not hold.

    Race-free under PostgreSQL's READ COMMITTED too: rows commit with the
    head that covers them, so the highest row of each table is read first
    and the head after it.
    """
    highest = {t.name: session.execute(select(func.max(t.c.leaf_index))).scalar_one() for t in TABLES}
    head = storage.read_head(session)
    size = 0 if head is None else head.size
    found = []
    for name, top in highest.items():
        if top is not None and top >= size:
            found.append(Mismatch(size, name, (), None, f"no row beyond entry {size - 1}", f"a row for entry {top}"))
    return found


def check_search(engine: Engine) -> list[Mismatch]:
    """SQLite: FTS5's own check that ``record_search`` indexes exactly ``record_index.search_text``.

    FTS5 runs its check as an INSERT, so it needs SQLite's write lock: it
    runs in a transaction of its own (``BEGIN IMMEDIATE``, then rolled
    back), queueing behind the sequencer like any writer, for as long as
    the check scans the index. The operator's audit and ``publish-stats``
    run it; the server's background check does not.
    """
    if not is_sqlite(engine):
        return []
    # Closing the connection rolls back its (IMMEDIATE) transaction: the check writes nothing.
    with writer(engine).connect() as conn:
        try:
            conn.execute(text("INSERT INTO record_search(record_search, rank) VALUES ('integrity-check', 1)"))
        except DBAPIError as e:
            if "malformed" not in str(e.orig):
                raise StorageError(f"the full-text index could not be checked: {e.orig}") from e
            rows = conn.execute(select(func.count()).select_from(record_index)).scalar_one()
            expected = f"the full-text index of record_index.search_text ({rows} rows)"
            # The index has no log order: it is reported after every row, whose
            # own mismatch (an edited search_text) is the more precise finding.
            found = f"FTS5 integrity-check failing: {e.orig}"
            return [Mismatch(_AFTER_EVERY_ROW, "record_search", (), None, expected, found)]
    return []


def fill_index(session: Session, size: int, progress: Callable[[int], None] | None = None) -> int:
    """Add the ``record_index`` rows missing for entries [0, size); return how many.

    The index is append-only: rows that exist are never rewritten here. A
    stored row that differs from its entry is tampering or a bug, which
    ``flask ledger audit`` reports with the row, the column and both values.
    """
    added = 0
    for start in range(0, size, FILL_BATCH):
        end = min(size, start + FILL_BATCH)
        c = record_index.c
        present = set(session.execute(select(c.leaf_index).where(c.leaf_index >= start, c.leaf_index < end)).scalars())
        missing = []
        for i, data in enumerate(storage.read_entries(session, start, end), start):
            if i in present:
                continue
            rows = entry_rows(i, data).get("record_index")
            if rows:
                missing.extend(rows)
        insert_index(session, missing)
        added += len(missing)
        if progress:
            progress(end)
    if added and is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        # Rows lost from record_index may still be in the full-text index:
        # FTS5 rebuilds it from the column (external content).
        session.execute(text("INSERT INTO record_search(record_search) VALUES ('rebuild')"))
    return added


def check_all(
    session: Session, size: int, progress: Callable[[int], None] | None = None, start: int = 0
) -> list[Mismatch]:
    """Compare the derived rows of entries [start, size) with the stored ones,
    and look for rows beyond the head. Returns every mismatch, in log order.
    The full-text index is checked apart (:func:`check_search`)."""
    return check_entries(session, start, size, progress) + check_beyond(session)


def check_entries(
    session: Session, start: int, end: int, progress: Callable[[int], None] | None = None
) -> list[Mismatch]:
    """Compare the derived rows of entries [start, end) with the stored ones,
    :data:`FILL_BATCH` entries a round trip; return the mismatches in log order.
    Rows beyond the head are :func:`check_beyond`'s."""
    found: list[Mismatch] = []
    for batch in range(start, end, FILL_BATCH):
        stop = min(end, batch + FILL_BATCH)
        found.extend(check_range(session, batch, stop, storage.read_entries(session, batch, stop)))
        if progress:
            progress(stop)
    return found


def refuse_mismatches(found: list[Mismatch], what: str) -> None:
    """Raise :class:`DerivedDataError` naming the first of ``found``, if any."""
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise DerivedDataError(
            f"refusing to {what}: a derived row differs from its log entry: {found[0]}{more}; "
            "run `flask --app app ledger audit`"
        )
