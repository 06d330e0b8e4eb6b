"""Database schema and engines (SQLAlchemy 2 Core).

The schema is created only by the Alembic migrations in ``migrations/``;
the tables here describe it for queries. Every table is append-only:
database triggers reject UPDATE and DELETE (see the first migration), except
that ``log_head`` may move forward, and only forward. That includes the
tables derived from the entries (platforms, keys, revocations, the
records' ``record_index``, published statistics: migrations 0002, 0005,
0006), whose rows ``ledger/derived.py`` writes and the audit compares with
their entries. The one exception is SQLite's full-text index
``record_search`` (FTS5): a virtual table takes no triggers, and FTS5
rewrites its own segments as it merges them; it is an external-content
index of ``record_index.search_text`` (without positions since migration
0010_storage) that FTS5's ``integrity-check`` proves equal to that column.

Engines are made here, sessions by the caller (principle 8): storage
functions take a ``Session`` and never commit.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    literal,
    literal_column,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session as Session  # re-exported: views hold one, and import no SQLAlchemy
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.elements import ColumnElement

from ledger.records import codes

#: Every error a database read may raise: a page that must render whatever
#: happens (an error page) catches this, without importing SQLAlchemy.
DatabaseError = SQLAlchemyError

metadata = MetaData()

# SQLite makes an INTEGER PRIMARY KEY the rowid (no separate index); BIGINT
# would not be, so the index column is INTEGER there and BIGINT elsewhere.
Index64 = BigInteger().with_variant(Integer(), "sqlite")

#: One row per log entry: its stored form (ledger/entry_codec.py, migration
#: 0010_storage), from which ``ledger.storage`` gives back the exact bytes
#: that were hashed into the leaf. Read it nowhere else.
entries = Table(
    "entries",
    metadata,
    Column("idx", Index64, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

#: The hashes that make up the tiles: level L holds the Merkle-level-8L
#: hashes, one row per complete subtree of 256**L leaves. Partial tiles are
#: prefixes of a level's rows, so every tile any checkpoint needs is a range
#: read, and nothing is ever rewritten.
#: The columns are in the order that pads least on PostgreSQL (migration
#: 0014_dense_rows: a SMALLINT before the BIGINT cost 6 bytes a row); the
#: primary key is (level, idx), whatever the order.
hashes = Table(
    "hashes",
    metadata,
    Column("idx", BigInteger, nullable=False, autoincrement=False),
    Column("level", SmallInteger, nullable=False, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "idx", name="hashes_pkey"),
    # Inclusion proofs by leaf hash look the leaf up here. On PostgreSQL a
    # hash index (migration 0010_storage): a 4-byte hash code per leaf, not
    # the 32-byte hash, and equality is all the lookup asks; fillfactor 100
    # (migration 0013_hashed_keys): random codes fill the buckets evenly.
    Index(
        "hashes_leaf",
        "hash",
        sqlite_where=text("level = 0"),
        postgresql_where=text("level = 0"),
        postgresql_using="hash",
        postgresql_with={"fillfactor": 100},
    ),
    sqlite_with_rowid=False,
)

#: Every checkpoint the log ever signed, one per committed tree size.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", Index64, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

#: The latest tree head: a single row, advanced by compare-and-swap.
log_head = Table(
    "log_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
)

#: Registered platforms; each row comes from the registry entry at ``leaf_index``.
platforms = Table(
    "platforms",
    metadata,
    Column("slug", String(63), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
)

#: Platform signing keys; revoked by a row in ``key_revocations``, never edited.
platform_keys = Table(
    "platform_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("platform", String(63), ForeignKey("platforms.slug"), nullable=False, index=True),
    Column("public_key", LargeBinary(32), nullable=False, unique=True),
    Column("valid_from_ms", BigInteger, nullable=False),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
)

key_revocations = Table(
    "key_revocations",
    metadata,
    Column("key_id", String(16), ForeignKey("platform_keys.key_id"), primary_key=True),
    Column("revoked_from_ms", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
)


def _not_null(column: str) -> Any:
    """The predicate of a partial index of the rows that have ``column``."""
    return text(f"{column} IS NOT NULL")


#: Feed filters on fields most records lack, indexed only where present.
SPARSE_FILTERS = ("exemption_type", "target_class", "reporter_class", "abuse_kind")

#: Feed filters on long texts, and the name of their hashed index on PostgreSQL.
HASHED_FILTERS = {"subject_key": "subject_hash", "rule_id": "rule_hash"}


def _text_hash(column: str) -> Any:
    """The key of a hashed filter index (migration 0013_hashed_keys)."""
    return text(f"hashtextextended({column}, 0)")


def hashed_equal(bind: Any, column: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    """``column = value``, for a column of :data:`HASHED_FILTERS`, in the
    form that reaches its index: on PostgreSQL the index holds the text's
    64-bit hash (``hashtextextended``, 8 bytes where the text was up to
    128), so the term compares the hashes for the index and the texts for
    the answer. Two texts with one hash give a row that is read and
    dropped, never a wrong row."""
    return hashed_term(bind.dialect.name == "sqlite", column, literal(value, String))


def hashed_term(sqlite: bool, column: ColumnElement[Any], value: ColumnElement[Any]) -> ColumnElement[bool]:
    """:func:`hashed_equal` with the value an expression (a bind parameter
    of a statement built once and kept, ``ledger/query.py``)."""
    term = column == value
    if sqlite:
        return term
    zero: ColumnElement[int] = literal_column("0")
    return and_(func.hashtextextended(column, zero) == func.hashtextextended(value, zero), term)


class Code(TypeDecorator[str]):
    """A closed vocabulary's value, stored as its fixed SMALLINT code
    (ledger/records/codes.py, migration 0012_codes).

    SQLAlchemy binds a value through this type (a filter's ``c.action ==
    "label"`` becomes ``action = 10``) and gives back the value for a code
    it reads, so queries and views read and write the text. A filter's
    value that has no code binds :data:`~ledger.records.codes.NO_CODE`,
    which no row holds: it matches nothing, as it did as text. Writes go
    through :func:`insert_many`, which encodes strictly (a value without a
    code is an error, never a guess).
    """

    impl = SmallInteger
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column
        self.codes = codes.CODES[column]
        self.names = codes.NAMES[column]

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return self.codes.get(value, codes.NO_CODE)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return codes.decode(self.column, value)

    def process_literal_param(self, value: Any, dialect: Any) -> str:
        return "NULL" if value is None else str(self.codes.get(value, codes.NO_CODE))

    @property
    def python_type(self) -> type[str]:
        return str


#: The feed's query index: derived from the log (ledger/derived.py), append-only,
#: audited row by row; ``ledger reindex`` adds rows that are missing.
#:
#: Since migration 0012_codes the closed vocabularies are SMALLINT codes
#: (:class:`Code`), and the columns are in the order that wastes no
#: alignment padding on PostgreSQL: the 8-byte integers, then the 2-byte
#: codes, the 1-byte booleans, and the varying-length columns (a short one,
#: with its 1-byte header, needs no alignment; ``search_text``, often over
#: 126 bytes, last).
#:
#: Since migration 0015_fold_records it is also the log's one table of
#: platform records: the record's hash (an identical resubmission is
#: answered with the original) and its signing key are columns here, and
#: (platform, record_id) is unique here; the ``records`` table, which held
#: those beside a copy of five of these columns, is gone.
record_index = Table(
    "record_index",
    metadata,
    Column("leaf_index", Index64, primary_key=True, autoincrement=False),
    Column("logged_at_ms", BigInteger, nullable=False),
    Column("decided_at_ms", BigInteger),
    # Added by migration 0005 for the evenness statistics (time to decision).
    Column("flagged_at_ms", BigInteger),
    Column("type", Code("type"), nullable=False),
    Column("account_class", Code("account_class")),
    Column("category", Code("category")),
    Column("severity", Code("severity")),
    Column("action", Code("action")),
    Column("exemption_type", Code("exemption_type")),
    Column("review_path", Code("review_path")),
    Column("interim_state", Code("interim_state")),
    Column("detection_source", Code("detection_source")),
    Column("automated_decision", Code("automated_decision")),
    Column("appeal_outcome", Code("appeal_outcome")),
    # Added by migration 0007 for the protection statistics: whom the content
    # targeted, who reported it, and the rule's abuse kind (rule.abuse).
    Column("target_class", Code("target_class")),
    Column("reporter_class", Code("reporter_class")),
    Column("abuse_kind", Code("abuse_kind")),
    Column("political", Boolean),
    Column("violation_found", Boolean),
    Column("exemption_applied", Boolean),
    # SHA-256 of the record's canonical bytes, as they stand in the entry,
    # and the key that signed it (migration 0015_fold_records).
    Column("record_hash", LargeBinary(32), nullable=False),
    Column("key_id", String(16), ForeignKey("platform_keys.key_id"), nullable=False),
    Column("platform", String(63), ForeignKey("platforms.slug"), nullable=False),
    Column("record_id", String(128), nullable=False),
    Column("ref_record_id", String(128)),
    Column("subject_key", String(128)),
    Column("display_name", String(200)),
    Column("rule_id", String(128)),
    Column("rule_version", String(64)),
    Column("territories", String(1000)),
    # Added by migration 0009_person_qid for the person view: the Wikidata
    # item of the account's public subject (index_rows.person_qid).
    Column("qid", String(20)),
    Column("search_text", Text),
    # One record per ID and platform: the submissions' duplicate lookup
    # (``platform = ? AND record_id IN (...)``) and a record's page.
    UniqueConstraint("platform", "record_id", name="record_index_platform_record_id"),
    # Filters: each with leaf_index, for newest-first pages of one value
    # (migration 0003; the rule's without its version since 0011). On
    # PostgreSQL every B-tree of the growing tables has fillfactor 100
    # (migration 0011_lean_indexes): nothing is ever inserted below the
    # newest key at an index's right-hand end.
    *(
        Index(f"record_index_{c}", c, "leaf_index")
        for c in ("platform", "account_class", "political", "category", "action", "review_path", "detection_source")
    ),
    # SQLite: the type and the long texts as they are. PostgreSQL
    # (migration 0013_hashed_keys): the long texts by their 64-bit hash
    # (:func:`hashed_equal`), and the type of the follow-ups only
    # (decisions are seven rows in eight: the primary key finds them).
    *(Index(f"record_index_{c}", c, "leaf_index").ddl_if(dialect="sqlite") for c in ("type", *HASHED_FILTERS)),
    *(
        Index(f"record_index_{name}", _text_hash(c), "leaf_index", postgresql_with={"fillfactor": 100}).ddl_if(
            dialect="postgresql"
        )
        for c, name in HASHED_FILTERS.items()
    ),
    Index(
        "record_index_followup",
        "type",
        "leaf_index",
        postgresql_where=text(f"type <> {codes.CODES['type']['decision']}"),
        postgresql_with={"fillfactor": 100},
    ).ddl_if(dialect="postgresql"),
    # Filters on fields most records lack (an exemption, the protection
    # fields of migration 0007_protection): only the rows that have one, as
    # a filter's ``col = ?`` implies ``col IS NOT NULL`` and both databases
    # prove it (migration 0010_storage).
    *(
        Index(f"record_index_{c}", c, "leaf_index", sqlite_where=_not_null(c), postgresql_where=_not_null(c))
        for c in SPARSE_FILTERS
    ),
    # A person's records across platforms (migration 0009_person_qid).
    # Most accounts name no item: only the rows that have one.
    Index("record_index_qid", "qid", "leaf_index", sqlite_where=_not_null("qid"), postgresql_where=_not_null("qid")),
    Index("record_index_decided_at", "decided_at_ms"),
    # The log time rises with the leaf index: on PostgreSQL a BRIN index
    # (a few bytes per 128 heap pages) finds a range of it (0013_hashed_keys).
    Index("record_index_logged_at", "logged_at_ms").ddl_if(dialect="sqlite"),
    Index(
        "record_index_logged_at",
        "logged_at_ms",
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
    ).ddl_if(dialect="postgresql"),
    # Only appeals and amendments refer to a record (0010_storage). The feed's
    # follow-ups and a record's history read it.
    Index(
        "record_index_ref",
        "platform",
        "ref_record_id",
        sqlite_where=_not_null("ref_record_id"),
        postgresql_where=_not_null("ref_record_id"),
    ),
    # Text search on PostgreSQL: a pg_trgm GIN index. SQLite's is the FTS5
    # table ``record_search`` (SQLITE_VIRTUAL_TABLES), which SQLAlchemy
    # cannot describe.
    Index(
        "record_index_search",
        "search_text",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql"),
)

#: SQLite's FTS5 index of ``record_index.search_text`` (migrations 0003,
#: 0006 and 0010_storage) and the shadow tables FTS5 keeps for it: made by raw DDL, as
#: SQLAlchemy has no virtual tables; queries reach it through ``text()``.
SQLITE_VIRTUAL_TABLES = frozenset(("record_search", "record_search_config", "record_search_data", "record_search_idx"))

#: One row per published digest of the evenness statistics, from its
#: registry entry (migration 0005).
published_statistics = Table(
    "published_statistics",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("method_version", Integer, primary_key=True, autoincrement=False),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
    Column("document_sha256", String(64), nullable=False),
)

#: One row per cosignature the log holds: append-only, like the log (migration 0004).
cosignatures = Table(
    "cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),  # a size in ``checkpoints``
    Column("witness_key_id", String(8), primary_key=True),
    Column("witness_name", Text, nullable=False),
    Column("line", Text, nullable=False),  # "— <name> <base64>", without the newline
    Column("created_at_ms", BigInteger, nullable=False),
    Index("cosignatures_witness", "witness_key_id", "size"),
)

#: One row per logged coverage statement, from its record (migration
#: 0008_coverage): what the coverage comparison reads; ``counts`` is
#: ``ledger.records.coverage.counts_text`` of the statement's counts.
coverage_statements = Table(
    "coverage_statements",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("platform", String(63), nullable=False),
    Column("record_id", String(128), nullable=False),
    Column("period", String(7), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("criterion", String(32), nullable=False),
    Column("supersedes", String(128)),
    Column("counts", Text, nullable=False),
    Index("coverage_statements_scope", "platform", "period", "rule_id"),
)

WRITE_OPTION = "ledger_write"

#: PostgreSQL, every connection: TCP keepalives and a user timeout on both
#: ends, so a server that freezes or loses the network while it holds the
#: log's head lock is noticed in seconds rather than the kernel's two hours.
#: The user timeout also ends a backend blocked sending to a frozen client
#: (a zero window), where neither statement nor idle timeout runs: with 10 s
#: the other server's wait was 12.8 s in 3 of 12 runs of
#: tests/e2e/test_frozen_server.py, with 4 s it was 5.0 s in each of 6 runs.
PG_CONNECT_ARGS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 4_000,
    "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
    "-c tcp_user_timeout=4000",
}

#: PostgreSQL, each sequencer transaction (SET LOCAL, so readers, exports and
#: migrations keep the server's defaults): a writer waits at most 3 s for the
#: head lock (then 503 and Retry-After), a statement runs at most 5 s, and a
#: transaction left idle for 5 s (its server frozen, say, by SIGSTOP or a
#: lost network) is ended by PostgreSQL, which releases the head lock: the
#: other servers append again within seconds. Nothing acknowledged is lost
#: (the frozen writer never committed, so it never answered) and no fork is
#: possible (the head moves by compare-and-swap).
#:
#: One stall escapes both timeouts: a writer frozen in the middle of a
#: ``COPY ... FROM STDIN`` (``insert_values``). Its backend is "active",
#: waiting for the client's next rows, and PostgreSQL does not act on a
#: statement timeout while it waits for a client (only on a termination):
#: measured, a COPY left waiting held its locks for as long as its client
#: was stopped. Another server's sequencer, refused the head lock, ends
#: such a writer (``ledger.storage.end_stalled_writers``).
PG_WRITER_SETTINGS = (
    "SELECT set_config('lock_timeout', '3s', true), set_config('statement_timeout', '5s', true), "
    "set_config('idle_in_transaction_session_timeout', '5s', true)"
)

#: A head-lock holder whose statement has run this long and waits for its
#: client is stalled: a sequencer statement runs at most 5 s (its statement
#: timeout), and a second more lets a cancel land.
WRITER_STALLED_SECONDS = 6


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def insert_many(session: Session | Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (each with every column of ``table``) in the session's transaction.

    Values of :class:`Code` columns are given as text and written as codes.

    On SQLite straight through the driver's ``executemany`` with one
    prepared statement: SQLAlchemy's per-row parameter processing cost as
    much as SQLite's own inserting for the feed index's 30 columns (as
    profiled). On PostgreSQL with ``COPY ... FROM STDIN`` on the session's
    connection: SQLAlchemy's multi-row INSERTs spent most of a batch in
    psycopg parsing 30,000-placeholder statements, and psycopg's pipelined
    ``executemany`` left a frozen client's transaction without PostgreSQL's
    idle timer (see :data:`PG_WRITER_SETTINGS`); a COPY ends with
    ReadyForQuery like any statement. A COPY whose client stopped sending
    is bounded by no timeout of PostgreSQL's own (see
    :data:`PG_WRITER_SETTINGS` for what ends it). A few rows (a single record's) go as
    one multi-row INSERT instead, a round trip fewer.
    """
    if rows:
        insert_values(session, table, encode_rows(table, rows))


def encode_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """``rows`` as :func:`insert_values` takes them: tuples of every column of
    ``table`` in order, the closed vocabularies' values as their codes
    (strictly: a value without one raises ``ValueError``)."""
    columns = _COLUMNS.get(table.name)
    if columns is None:
        columns = _COLUMNS[table.name] = tuple(table.c.keys())
    values = [tuple(map(row.__getitem__, columns)) for row in rows]
    if table.name not in _ENCODERS:
        coded = [c.type.column if isinstance(c.type, Code) else None for c in table.c]
        _ENCODERS[table.name] = codes.row_encoder(coded) if any(coded) else None
    if encode := _ENCODERS[table.name]:
        # The driver takes the values as they are: the closed vocabularies'
        # codes are written here (strictly: a value without one is an error).
        try:
            values = list(map(encode, values))
        except KeyError as e:
            raise ValueError(f"{table.name}: {e} has no code (ledger/records/codes.py)") from None
    return values


def insert_values(session: Session | Connection, table: Table, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows given as :func:`encode_rows` gives them, as :func:`insert_many` says."""
    if not values:
        return
    columns = _COLUMNS.get(table.name)
    if columns is None:
        columns = _COLUMNS[table.name] = tuple(table.c.keys())
    if not on_sqlite(session):
        connection = session_connection(session)
        dbapi = connection.dialect.loaded_dbapi
        if len(values) <= _PG_INSERT_ROWS:
            _pg_insert(connection, table.name, columns, values)
            return
        # Binary: an entry's bytes go as they are, where the text format
        # spelt each byte in hex for the client to write and the server to
        # read (entries 7.5 -> 1.6 us a row, the feed index 4.0 -> 2.0 us).
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        cursor = connection.connection.cursor()
        try:
            with cursor.copy(sql) as copy:  # type: ignore[attr-defined]
                copy.set_types(_pg_types(table, connection.dialect))
                for value in values:
                    copy.write_row(value)
        except dbapi.Error as e:
            # As SQLAlchemy would have wrapped it: DataError, IntegrityError, ...
            raise _wrapped(connection, sql, None, e, cursor) from e
        finally:
            cursor.close()
        return
    sqlite_many(
        session, f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values
    )


def sqlite_many(session: Session | Connection, sql: str, values: Sequence[Sequence[Any]]) -> None:
    """``executemany`` of one statement straight on SQLite's cursor, in the
    session's transaction; errors wrapped as SQLAlchemy wraps them."""
    connection = session_connection(session)
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, values)
    except sqlite3.Error as e:
        raise _wrapped(connection, sql, None, e, cursor) from e
    finally:
        cursor.close()


#: Up to this many rows go to PostgreSQL as one INSERT rather than a COPY:
#: a COPY takes two round trips (the statement, then the data), an INSERT
#: one, and a single record's append writes four tables. Beyond it, COPY
#: (whose per-row cost is the lower) as above.
_PG_INSERT_ROWS = 16


def _pg_insert(connection: Connection, table: str, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
    """Insert ``values`` into ``table`` with one multi-row INSERT (PostgreSQL)."""
    row = f"({', '.join(['%s'] * len(columns))})"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * len(values))}"
    params = [v for value in values for v in value]
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
    except connection.dialect.loaded_dbapi.Error as e:
        raise _wrapped(connection, sql, None, e, cursor) from e
    finally:
        cursor.close()


_COLUMNS: dict[str, tuple[str, ...]] = {}
_ENCODERS: dict[str, Callable[[Sequence[Any]], tuple[Any, ...]] | None] = {}
_PG_TYPES: dict[str, list[str]] = {}


def _pg_types(table: Table, dialect: Any) -> list[str]:
    """The PostgreSQL type of each column of ``table``, as binary COPY needs
    them (``VARCHAR(63)`` -> ``varchar``: the length is the column's to check)."""
    types = _PG_TYPES.get(table.name)
    if types is None:
        types = [c.type.compile(dialect=dialect).split("(")[0].lower() for c in table.c]
        _PG_TYPES[table.name] = types
    return types


def driver_sql(
    session: Session | Connection, sql: str, params: Sequence[Any] = ()
) -> tuple[list[tuple[Any, ...]], int]:
    """Run one fixed statement (``?`` placeholders) on the DBAPI connection
    of the session's transaction; return its rows and rowcount.

    For the sequencer's few statements run on every append: building,
    caching and executing a Core statement cost 150-300 µs of Python each,
    more than SQLite or PostgreSQL take to run it, and a single record's
    transaction runs about ten (bench/writes.py profiles). Errors are raised
    as SQLAlchemy would wrap them (IntegrityError, DataError, ...), so the
    sequencer tells bad data from a lost compare-and-swap as before.
    """
    return connection_sql(session_connection(session), sql, params)


class DriverStatement:
    """A Core statement compiled once for :func:`driver_sql`: its SQL as
    SQLAlchemy sends it but with ``?`` placeholders, and how to fill them
    from the parameters by name that ``Session.execute`` would take (each
    processed as its type binds it, the values built into the statement
    kept); :meth:`rows` gives the rows as SQLAlchemy's result would (each
    column's result processing applied, e.g. SQLite's 0/1 to a ``Boolean``).

    For statements run many times in one shape (the feed's page, its
    counts, its follow-ups): SQLAlchemy's execution of a kept statement
    (its cache lookup, parameter processing, result set-up, psycopg's
    ``cursor.description``) was 29-38% of a JSON feed page's CPU
    (docs/performance.md, session 10). Post-compile parameters (a
    ``literal_execute`` value, an expanding IN) are rendered by SQLAlchemy's
    own ``construct_expanded_state``: once, where their values are built
    in; on each run for an expanding parameter the caller gives (the
    follow-ups' record IDs).
    """

    __slots__ = ("_compiled", "_fill", "_per_run", "_process", "_processors", "names", "sql", "statement")

    def __init__(self, statement: Any, dialect: Any) -> None:
        positional = dialect
        if dialect.paramstyle != "qmark":
            # The same dialect compiling ``?`` placeholders, in order
            # (:func:`connection_sql` makes them psycopg's ``%s``).
            positional = copy.copy(dialect)
            positional.paramstyle, positional.positional = "qmark", True
        compiled = statement.compile(dialect=positional)
        binds = compiled.binds
        given = [name for name in compiled.positiontup or () if binds[name].required]
        # As SQLAlchemy's execution binds each value: its type's processor
        # (a Code's text to its code); an expanded list's items have theirs
        # in the expanded state.
        processors: dict[str, Any] = {}
        for name, bind in binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        self._compiled = compiled
        self._processors = processors
        self._per_run = any(binds[name].expanding for name in given)
        #: The Core statement, as SQLAlchemy would run it.
        self.statement = statement
        #: The names of the values of a row, in order.
        self.names: tuple[str, ...] = tuple(statement.selected_columns.keys())
        self._fill: tuple[tuple[str | None, Any, Any], ...] = ()
        self.sql = ""
        if not self._per_run:
            state = compiled.construct_expanded_state(dict.fromkeys(given))
            self.sql = state.statement
            wanted = set(given)
            each = processors | dict(state.processors)
            self._fill = tuple(
                (name, None, each.get(name))
                if name in wanted
                else (None, _processed(each.get(name), state.parameters[name]), None)
                for name in state.positiontup or ()
            )
        results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in statement.selected_columns]
        self._process: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None
        if any(results):
            # ``lambda r: (r[0], _1(r[1]), ...)``, as ledger.records.codes'
            # row decoder is made: a loop over the columns cost more than
            # the rest of reading the row. Only positions go into the source.
            calls = {f"_{i}": p for i, p in enumerate(results) if p is not None}
            items = "".join(f"_{i}(r[{i}]), " if f"_{i}" in calls else f"r[{i}], " for i in range(len(results)))
            self._process = eval(f"lambda r: ({items})", calls)  # noqa: S307

    def rows(self, session: Session | Connection, params: Mapping[str, Any]) -> list[Any]:
        """The statement's rows with ``params`` (by name), in the session's transaction."""
        if self._per_run:
            state = self._compiled.construct_expanded_state(params)
            sql = state.statement
            each = self._processors | dict(state.processors)
            values = [_processed(each.get(name), state.parameters[name]) for name in state.positiontup or ()]
        else:
            sql = self.sql
            values = [
                value if name is None else params[name] if process is None else process(params[name])
                for name, value, process in self._fill
            ]
        rows, _ = driver_sql(session, sql, values)
        if self._process is None:
            return rows
        return [self._process(row) for row in rows]


def _processed(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None else process(value)


def session_connection(session: Session | Connection) -> Connection:
    """The connection of ``session``'s transaction; a Core ``Connection``
    (the sequencer's transaction) is its own."""
    return session if isinstance(session, Connection) else session.connection()


def on_sqlite(session: Session | Connection) -> bool:
    """Whether ``session`` (a Session or a Core Connection) talks to SQLite."""
    if isinstance(session, Connection):
        return session.dialect.name == "sqlite"
    return is_sqlite(session.get_bind())  # type: ignore[arg-type]


class SingleConnection:
    """A pooled DBAPI connection checked out for one statement outside any
    transaction (:func:`single_connection`), without SQLAlchemy's
    ``Connection`` around it: what :func:`connection_sql` and
    :func:`_wrapped` use of one (``engine``, ``dialect``, ``connection``,
    ``invalidated``, ``invalidate``)."""

    __slots__ = ("connection", "dialect", "engine", "invalidated")

    def __init__(self, engine: Engine, connection: PoolProxiedConnection) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.connection = connection
        self.invalidated = False

    def invalidate(self, e: BaseException | None = None) -> None:
        # Pool._invalidate has already invalidated a valid one; a second
        # invalidate of the same connection only warns.
        if self.connection.is_valid:
            self.connection.invalidate(e)
        self.invalidated = True


@contextmanager
def single_connection(engine: Engine) -> Iterator[SingleConnection]:
    """A pooled connection for single statements, each its own transaction
    (one statement reads one committed state), returned to the pool as the
    transactions' connections expect it.

    On PostgreSQL the driver's connection is put in autocommit for the
    statement and taken out again, directly: through ``engine.connect()``
    with ``isolation_level="AUTOCOMMIT"`` SQLAlchemy's ``Connection``, its
    isolation-level bookkeeping on checkout and on return, and the pool's
    reset cost about as much CPU as the statement itself (checkout,
    ``SELECT 1`` and return: 64-81 µs that way, 36-52 this way, in one
    process; docs/performance.md, session 10), once on every
    ``/checkpoint``, cached proof and tile miss. psycopg sends nothing to change autocommit outside a
    transaction. SQLite's connections are in autocommit already
    (:func:`_configure_sqlite`: ``BEGIN`` is ours). A connection that
    cannot be taken back out of autocommit is discarded, never pooled.
    """
    proxied = engine.raw_connection()
    single = SingleConnection(engine, proxied)
    pg = engine.dialect.name != "sqlite"
    try:
        if pg:
            try:
                proxied.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            except engine.dialect.loaded_dbapi.Error as e:
                # Not idle, or closed: discarded, and the statement, which
                # has not run, may be tried again on another (once_more_if_lost).
                proxied.invalidate(e)
                dbapi_error = engine.dialect.loaded_dbapi.Error
                raise DBAPIError.instance(
                    "autocommit", None, e, dbapi_error, connection_invalidated=True, dialect=engine.dialect
                ) from e
        yield single
    finally:
        if pg and proxied.is_valid:
            try:
                proxied.dbapi_connection.autocommit = False  # type: ignore[union-attr]
            except engine.dialect.loaded_dbapi.Error as e:
                proxied.invalidate(e)
        proxied.close()


def connection_sql(
    connection: Connection | SingleConnection, sql: str, params: Sequence[Any] = ()
) -> tuple[list[tuple[Any, ...]], int]:
    """:func:`driver_sql` on ``connection``: outside a Session, for the
    statements a read path runs on its own (``Log.head_now``)."""
    sqlite = connection.dialect.name == "sqlite"
    text_ = sql if sqlite else _PG_SQL.get(sql) or _pg_sql(sql)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(text_, params)
        rows: list[Any]
        if sqlite:
            rows = list(cursor.fetchall()) if cursor.description is not None else []
        else:
            # Whether it gave rows, from the result's field count: psycopg
            # builds ``cursor.description`` (a Column per field) on every
            # read of it, ~10% of a feed page's CPU when SQLAlchemy read it
            # for each statement (docs/performance.md, session 10).
            result = cursor.pgresult  # type: ignore[attr-defined]
            rows = list(cursor.fetchall()) if result is not None and result.nfields else []
        return rows, cursor.rowcount
    except connection.dialect.loaded_dbapi.Error as e:
        raise _wrapped(connection, text_, params, e, cursor) from e
    finally:
        cursor.close()


def pg_script(session: Session | Connection, script: str) -> list[tuple[Any, ...]]:
    """Run ``script``, PostgreSQL statements without parameters separated by
    semicolons, in one round trip (the simple query protocol, never
    prepared), in order; return the rows of the last. For the sequencer,
    whose fixed statements at the start of each append each cost a round
    trip of their own."""
    connection = session_connection(session)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(script, prepare=False)  # type: ignore[call-arg]
        while cursor.nextset():  # type: ignore[attr-defined]
            pass
        return list(cursor.fetchall())
    except connection.dialect.loaded_dbapi.Error as e:
        raise _wrapped(connection, script, None, e, cursor) from e
    finally:
        cursor.close()


_T = TypeVar("_T")


def once_more_if_lost(attempt: Callable[[], _T]) -> _T:
    """``attempt()``, and once more if it failed on a connection found lost
    (``DBAPIError.connection_invalidated``: :func:`_wrapped` and SQLAlchemy
    then mark every older pooled connection stale, so the second attempt
    connects afresh). The pool does not ping before a checkout, so this is
    where a restarted server or an ended backend shows: only for work that
    had written nothing when it failed, or whose writes are idempotent."""
    try:
        return attempt()
    except DBAPIError as e:
        if not e.connection_invalidated:
            raise
    return attempt()


def _wrapped(connection: Connection | SingleConnection, sql: str, params: Any, e: Exception, cursor: Any) -> DBAPIError:
    """``e``, raised by the driver on ``connection``, as SQLAlchemy's own
    execution path would raise it (IntegrityError, DataError, ...).

    A lost connection (the dialect's ``is_disconnect``: on psycopg a
    closed or broken connection) is handled as that path handles it too:
    every pooled connection opened before it is marked stale, as a server
    that dropped one has likely dropped them all (a restart), so the next
    checkout connects afresh; this one is invalidated, and the error says
    ``connection_invalidated``, which :meth:`ledger.log.Log.read` and the
    sequencer read to retry a transaction that did nothing yet.
    """
    dialect = connection.dialect
    lost = connection.invalidated
    if not lost:
        proxied = connection.connection
        lost = dialect.is_disconnect(e, proxied.dbapi_connection, cursor)  # type: ignore[arg-type]
        if lost:
            # Pool._invalidate is what Connection._handle_dbapi_exception
            # calls on a disconnect (SQLAlchemy 2.0, 2.1); it has no public name.
            connection.engine.pool._invalidate(proxied, e)
            connection.invalidate(e)
    dbapi_error = dialect.loaded_dbapi.Error
    wrapped = DBAPIError.instance(sql, params, e, dbapi_error, connection_invalidated=lost, dialect=dialect)
    if not isinstance(wrapped, DBAPIError):  # instance() makes a StatementError only of non-driver errors
        raise AssertionError(f"db: {type(e).__name__} is not a driver error")
    return wrapped


def in_list(n: int) -> str:
    """``(?, ?, ...)`` of ``n`` placeholders, for :func:`driver_sql`."""
    return f"({', '.join('?' * n)})"


_PG_SQL: dict[str, str] = {}
#: Bounded, as a statement with an expanding IN has a text per length of
#: its list (:class:`DriverStatement`): cleared when full.
_PG_SQL_MAX = 4096


def _pg_sql(sql: str) -> str:
    if len(_PG_SQL) >= _PG_SQL_MAX:
        _PG_SQL.clear()
    text_ = _PG_SQL[sql] = sql.replace("?", "%s")
    return text_


def make_engine(url: str, sqlite_busy_timeout_ms: int = 30_000, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings the ledger relies on.

    SQLite: WAL journal, ``synchronous=FULL`` (a commit survives power loss,
    so an acknowledged record is durable), a busy timeout, and transactions
    begun by us: ``BEGIN IMMEDIATE`` for writers (connections made with
    :func:`writer`), so the write lock is taken before the log head is read,
    and plain ``BEGIN`` for readers, which then see one consistent snapshot.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        timeout = sqlite_busy_timeout_ms / 1000
        engine = create_engine(u, connect_args={"timeout": timeout, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine, sqlite_busy_timeout_ms)
        return engine
    # No pre-ping: it cost a round trip on every checkout (about a quarter of
    # /checkpoint's CPU, as profiled). A pooled connection whose server end
    # died shows on its first statement instead (_wrapped), where a read
    # transaction, and a write that has done nothing yet, retry once on a
    # fresh connection (Log.read, Sequencer).
    connect_args = {**PG_CONNECT_ARGS, **kwargs.get("connect_args", {})}
    # The URL's own options (a search_path, say) come first; ours are added.
    url_options = u.query.get("options")
    if isinstance(url_options, str):
        connect_args["options"] = f"{url_options} {connect_args['options']}"
    kwargs["connect_args"] = connect_args
    engine = create_engine(u, **kwargs)
    # Any other many-row INSERT as multi-row INSERT statements rather than
    # psycopg's pipelined executemany: a client frozen right after a
    # pipelined executemany left its transaction idle without PostgreSQL's
    # idle-in-transaction timer running (seen on PostgreSQL 15), holding the
    # head lock for as long as the freeze; after a plain statement the timer
    # runs (tests/e2e/test_frozen_server.py). The sequencer's own bulk inserts
    # use COPY (insert_many).
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Stop pysqlite from issuing BEGIN itself; _on_begin does it.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Before WAL, which fixes it: 8 KiB pages for a new database (an
        # existing one keeps its own). A compressed entry is ~670 bytes, and
        # a page holds whole rows: a 4 KiB page lost ~12% of its bytes to
        # the row that did not fit, an 8 KiB one half that (bench/storage.py:
        # 2,306 B a record at 4 KiB, 2,212 B at 8 KiB; CPU per appended
        # record unchanged within the noise of bench/writes.py).
        cur.execute("PRAGMA page_size=8192")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the driver: through exec_driver_sql, the BEGIN of every read
        # transaction cost more Python than the rest of /checkpoint's reads
        # (as profiled); errors (a busy database) are wrapped as before.
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN"
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql)
        except sqlite3.Error as e:
            raise _wrapped(conn, sql, None, e, cursor) from e
        finally:
            cursor.close()


def writer(engine: Engine) -> Engine:
    """Return ``engine`` flagged for writing (SQLite: ``BEGIN IMMEDIATE``)."""
    return engine.execution_options(**{WRITE_OPTION: True})
