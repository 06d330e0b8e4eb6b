"""Reads and writes of the log's tables. Every function takes the caller's
``Session`` and none commits (principle 8): the sequencer owns the one write
transaction, the read paths their read transactions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.orm import Session

from ledger.db import (
    PG_WRITER_SETTINGS,
    WRITER_STALLED_SECONDS,
    SingleConnection,
    checkpoints,
    connection_sql,
    driver_sql,
    entries,
    hashes,
    insert_values,
    is_sqlite,
    log_head,
    on_sqlite,
    pg_script,
)
from ledger.entry_codec import decode_entry, encode_entry
from ledger.errors import StorageError
from ledger.lru import LRU
from ledger.tlog.frontier import Frontier, Row, partial_ranges
from ledger.tlog.merkle import HASH_SIZE, stored_hash_index
from ledger.tlog.tile import ENTRIES_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, tile_for_index, tile_hash

#: Where a read statement runs: a read transaction's Session, a Connection,
#: or a pooled connection for one statement (``ledger.db.single_connection``).
Reads = Session | Connection | SingleConnection


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes
    created_at_ms: int


def read_head(session: Session | Connection, *, for_update: bool = False) -> Head | None:
    """Return the latest tree head, or None before the log is initialised.

    With ``for_update`` on PostgreSQL the row stays locked until the
    transaction ends: the sequencer's lock. (On SQLite the write lock was
    already taken by ``BEGIN IMMEDIATE``.)
    """
    lock = for_update and not on_sqlite(session)
    rows, _ = driver_sql(session, _READ_HEAD_FOR_UPDATE if lock else _READ_HEAD)
    return Head(rows[0][0], bytes(rows[0][1])) if rows else None


_READ_HEAD = "SELECT size, root FROM log_head WHERE id = 1"
_READ_HEAD_FOR_UPDATE = _READ_HEAD + " FOR UPDATE"
#: The writer's timeouts must be set before the head row is locked, since
#: ``lock_timeout`` bounds that very wait (ledger/db.py).
_BEGIN_APPEND_PG = f"{PG_WRITER_SETTINGS}; {_READ_HEAD_FOR_UPDATE}"


def begin_append(session: Session | Connection) -> Head | None:
    """The head at the start of an append transaction, for the sequencer.

    On PostgreSQL the writer's timeouts (``PG_WRITER_SETTINGS``) are set and
    the head row is locked ``FOR UPDATE`` in one round trip, in that order;
    on SQLite ``BEGIN IMMEDIATE`` has already taken the write lock."""
    if on_sqlite(session):
        rows, _ = driver_sql(session, _READ_HEAD)
    else:
        rows = pg_script(session, _BEGIN_APPEND_PG)
    return Head(rows[0][0], bytes(rows[0][1])) if rows else None


#: Backends holding the head row's lock (``FOR UPDATE`` holds
#: ``RowShareLock`` on ``log_head``; a read holds ``AccessShareLock``) whose
#: statement began longer ago than any sequencer statement may run
#: (:data:`ledger.db.WRITER_STALLED_SECONDS`) and that wait for their client
#: (``ClientRead`` while active: a ``COPY``, or a message left half-sent)
#: are ended. ``state_change`` is when the statement began; an idle
#: transaction PostgreSQL ends itself.
_END_STALLED_WRITERS = (
    "SELECT a.pid, pg_terminate_backend(a.pid) FROM pg_stat_activity a"
    " WHERE a.pid <> pg_backend_pid() AND a.state = 'active' AND a.wait_event = 'ClientRead'"
    f" AND a.state_change < clock_timestamp() - make_interval(secs => {WRITER_STALLED_SECONDS})"
    " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'"
    " AND l.relation = 'log_head'::regclass AND l.mode = 'RowShareLock')"
)


def end_stalled_writers(conn: SingleConnection) -> list[int]:
    """PostgreSQL: end the transactions, of any server on this database,
    that hold the log's head lock while stalled on their client
    (:data:`ledger.db.PG_WRITER_SETTINGS` says why no timeout ends them);
    return their backends' process IDs.

    For a sequencer refused the head lock (``lock_timeout``). Safe for the
    log: an ended transaction never committed, so its server never
    acknowledged what it held (its clients get 503 and retry), and the head
    moves only by compare-and-swap. The database role must be allowed to
    signal the other servers' backends: the same role for every server, or
    membership in ``pg_signal_backend`` (docs/deployment.md).
    """
    rows, _ = connection_sql(conn, _END_STALLED_WRITERS)
    return [pid for pid, ended in rows if ended]


def read_head_and_cosignatures(session: Reads) -> tuple[Head | None, tuple[str, ...]]:
    """The latest tree head and the cosignature lines stored for its size
    (without their newlines, ordered by witness name and key ID, as
    ``/checkpoint`` serves them): one statement, the first of every read
    transaction (``Log.read``). On a bare connection (``Log.head_now``) it
    needs no transaction: one statement reads one committed state."""
    rows, _ = _sql(session, _HEAD_AND_COSIGNATURES)
    if not rows:
        return None, ()
    return Head(rows[0][0], bytes(rows[0][1])), tuple(line for _, _, line in rows if line is not None)


_HEAD_AND_COSIGNATURES = (
    "SELECT h.size, h.root, c.line FROM log_head h LEFT JOIN cosignatures c ON c.size = h.size"
    " WHERE h.id = 1 ORDER BY c.witness_name, c.witness_key_id"
)


def advance_head(session: Session | Connection, old: Head, new: Head) -> bool:
    """Compare-and-swap the head from ``old`` to ``new``; False if it moved."""
    _, count = driver_sql(
        session,
        "UPDATE log_head SET size = ?, root = ? WHERE id = 1 AND size = ? AND root = ?",
        (new.size, new.root, old.size, old.root),
    )
    return count == 1


def sign_head(session: Session | Connection, old: Head, new: Head, cp: StoredCheckpoint) -> bool:
    """Store ``cp``, the checkpoint of ``new``, and compare-and-swap the head
    from ``old`` to ``new``; False if the head moved (then the caller must
    roll back: the checkpoint row is in its transaction).

    On PostgreSQL one statement (a data-modifying CTE always runs in full),
    one round trip fewer per append; on SQLite, whose statements cost no
    round trip, the two of :func:`insert_checkpoint` and :func:`advance_head`.
    """
    if on_sqlite(session):
        insert_checkpoint(session, cp)
        return advance_head(session, old, new)
    _, count = driver_sql(
        session,
        _SIGN_HEAD_PG,
        (cp.size, cp.root, cp.note, cp.created_at_ms, new.size, new.root, old.size, old.root),
    )
    return count == 1


_SIGN_HEAD_PG = (
    "WITH cp AS (INSERT INTO checkpoints (size, root, note, created_at_ms) VALUES (?, ?, ?, ?)) "
    "UPDATE log_head SET size = ?, root = ? WHERE id = 1 AND size = ? AND root = ?"
)


def insert_head(session: Session | Connection, head: Head) -> None:
    session.execute(insert(log_head).values(id=1, size=head.size, root=head.root))


def insert_checkpoint(session: Session | Connection, cp: StoredCheckpoint) -> None:
    driver_sql(
        session,
        "INSERT INTO checkpoints (size, root, note, created_at_ms) VALUES (?, ?, ?, ?)",
        (cp.size, cp.root, cp.note, cp.created_at_ms),
    )


def _checkpoint(row: object) -> StoredCheckpoint:
    return StoredCheckpoint(row.size, bytes(row.root), bytes(row.note), row.created_at_ms)  # type: ignore[attr-defined]


def checkpoint_at(session: Session | Connection, size: int) -> StoredCheckpoint | None:
    row = session.execute(select(checkpoints).where(checkpoints.c.size == size)).first()
    return _checkpoint(row) if row else None


def latest_checkpoint(session: Session) -> StoredCheckpoint | None:
    """Return the checkpoint of the current head (signed in the same commit)."""
    head = read_head(session)
    return checkpoint_at(session, head.size) if head else None


def iter_checkpoints(session: Session, start: int = 0, batch: int = 1000) -> Iterator[StoredCheckpoint]:
    """Yield every checkpoint with size >= start, in order of size."""
    while True:
        rows = session.execute(
            select(checkpoints).where(checkpoints.c.size >= start).order_by(checkpoints.c.size).limit(batch)
        ).all()
        for row in rows:
            yield _checkpoint(row)
        if len(rows) < batch:
            return
        start = rows[-1].size + 1


def insert_entries(
    session: Session | Connection, first: int, data: Sequence[bytes], stored: Sequence[bytes] | None = None
) -> None:
    """Store entries ``first``, ``first + 1``, ... in their stored form
    (ledger/entry_codec.py): ``stored``, one for each of ``data``, if the
    caller made them, else encoded here."""
    if stored is None:
        stored = [encode_entry(d) for d in data]
    elif len(stored) != len(data):
        raise AssertionError("insert_entries: not one stored form for each entry")
    # (idx, data) tuples in the table's column order: no dict per row to build and take apart again.
    insert_values(session, entries, list(enumerate(stored, first)))


def insert_hashes(session: Session | Connection, rows: Sequence[Row]) -> None:
    insert_values(session, hashes, [(i, lv, h) for lv, i, h in rows])  # the table's (idx, level, hash)


def read_entries(session: Session, start: int, end: int) -> list[bytes]:
    """Return entries [start, end), byte for byte as appended; raise if any
    is missing or does not decode."""
    return [decode_stored(i, d) for i, d in enumerate(_read_stored(session, start, end), start)]


def read_entries_or_damage(session: Session, start: int, end: int) -> tuple[list[bytes], dict[int, str]]:
    """For the audit: entries [start, end) as :func:`read_entries` returns
    them, except that an entry whose stored bytes do not decode comes back
    as those bytes, with why, by index: it is found, not fatal, and the
    tree recomputed over it shows where it differs."""
    out, damaged = [], {}
    for i, stored in enumerate(_read_stored(session, start, end), start):
        try:
            out.append(decode_entry(stored))
        except StorageError as e:
            out.append(stored)
            damaged[i] = str(e)
    return out, damaged


def decode_stored(index: int, stored: bytes) -> bytes:
    """Entry ``index`` from its stored form; every read of ``entries.data`` comes through here."""
    try:
        return decode_entry(stored)
    except StorageError as e:
        raise StorageError(f"entry {index}: {e}") from None


def read_stored_bundle(session: Session, start: int, end: int) -> tuple[list[bytes], list[bytes]]:
    """Return the leaf hashes of entries [start, end) and the entries in their
    stored form (ledger/entry_codec.py), not decoded; raise if any is missing.

    For a reader that must know exactly what the database holds (the bundle
    cache); it decodes entries through :func:`decode_stored`. Fixed
    statements through the driver: Core's statement building and row objects
    cost more than the read itself (docs/performance.md).
    """
    leaves, _ = driver_sql(session, _LEAF_HASHES, (start, end))
    if len(leaves) != end - start:
        raise StorageError(f"log storage is missing leaf hashes in [{start}, {end})")
    return [bytes(h) for (h,) in leaves], _read_stored(session, start, end)


def stored_digest(leaves: Sequence[bytes], stored: Sequence[bytes]) -> bytes:
    """SHA-256 over each entry's leaf hash (32 bytes), the length of its stored
    form (4 bytes, big-endian) and its stored form, in index order.

    Injective: the leaf hashes have a fixed size and the lengths mark where
    each stored entry ends, so no bytes can move from one entry to the next
    and leave the digest unchanged. :func:`read_bundle_digests` computes the
    same in PostgreSQL."""
    if len(leaves) != len(stored):
        raise AssertionError("stored_digest: a leaf hash per entry")
    if set(map(len, leaves)) - {HASH_SIZE}:
        # Injectivity needs the fixed size; the database does not enforce it.
        raise StorageError("log storage holds a leaf hash that is not 32 bytes")
    h = hashlib.sha256()
    for leaf, d in zip(leaves, stored, strict=True):
        h.update(leaf + len(d).to_bytes(4, "big"))
        h.update(d)
    return h.digest()


def read_bundle_digests(session: Session, n0: int, n1: int) -> list[bytes]:
    """Return :func:`stored_digest` of each full entry bundle [n0, n1) (256
    entries each) as the database holds it now; raise if any entry or leaf
    hash is missing.

    One statement for the run of bundles: on a loaded machine each round
    trip to PostgreSQL waits for the scheduler, and a statement per bundle
    made the export's wall time several times its CPU (docs/performance.md).
    On PostgreSQL the database computes the digests (``sha256``, PostgreSQL
    11+) and sends 32 bytes a bundle, not its ~170 KB hex-encoded. On
    SQLite, in this process, the rows are read and hashed here.
    """
    start, end = n0 * TILE_WIDTH, n1 * TILE_WIDTH
    if is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        leaves, stored = read_stored_bundle(session, start, end)
        return [
            stored_digest(leaves[i : i + TILE_WIDTH], stored[i : i + TILE_WIDTH])
            for i in range(0, end - start, TILE_WIDTH)
        ]
    rows, _ = driver_sql(session, _BUNDLE_DIGESTS_PG, (start, end, start, end))
    if [(n, count) for n, count, *_ in rows] != [(n, TILE_WIDTH) for n in range(n0, n1)]:
        raise StorageError(f"log storage is missing entries or leaf hashes in [{start}, {end})")
    if any((lo, hi) != (HASH_SIZE, HASH_SIZE) for *_, lo, hi, _ in rows):
        raise StorageError("log storage holds a leaf hash that is not 32 bytes")
    return [bytes(digest) for *_, digest in rows]


# The range on both tables: PostgreSQL does not carry it across the join, and
# without it scanned every leaf hash (21 ms a bundle at 10,000 entries).
_STORED_ROWS = (
    " FROM entries e JOIN hashes h ON h.level = 0 AND h.idx = e.idx"
    " WHERE e.idx >= ? AND e.idx < ? AND h.idx >= ? AND h.idx < ?"
)
# Two range scans, not the join: on SQLite the join looks each entry up by
# its key and took twice as long (10 ms against 5 for 16 bundles).
_LEAF_HASHES = "SELECT hash FROM hashes WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx"
# stored_digest per bundle; int4send is 4 bytes, big-endian (the binary send form of integer).
_BUNDLE_DIGESTS_PG = (
    f"SELECT e.idx / {TILE_WIDTH}, count(*), min(length(h.hash)), max(length(h.hash)),"
    " sha256(string_agg(h.hash || int4send(length(e.data)) || e.data, '' ORDER BY e.idx))"
    + _STORED_ROWS
    + f" GROUP BY e.idx / {TILE_WIDTH} ORDER BY 1"
)


def _read_stored(session: Session, start: int, end: int) -> list[bytes]:
    rows, _ = driver_sql(session, _READ_STORED, (start, end))
    if len(rows) != end - start:
        raise StorageError(f"log storage is missing entries in [{start}, {end})")
    return [bytes(r[0]) for r in rows]


# Fixed text on the driver, as _FIND_LEAF: every entry bundle a verifier or a
# mirror reads (/tile/entries) runs it, and building the Core statement per
# call was a tenth of that request's CPU.
_READ_STORED = "SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"


def read_level_hashes(session: Session, level: int, start: int, end: int) -> list[bytes]:
    """Return tile level ``level``'s hashes [start, end); raise if any is missing."""
    rows = session.execute(
        select(hashes.c.hash)
        .where(hashes.c.level == level, hashes.c.idx >= start, hashes.c.idx < end)
        .order_by(hashes.c.idx)
    ).all()
    if len(rows) != end - start:
        raise StorageError(f"log storage is missing level-{level} hashes in [{start}, {end})")
    return [bytes(r.hash) for r in rows]


def level_hashes_by_index(session: Session, level: int, start: int, end: int) -> dict[int, bytes]:
    """Return whatever level-``level`` hashes exist in [start, end), by index."""
    rows = session.execute(
        select(hashes.c.idx, hashes.c.hash).where(hashes.c.level == level, hashes.c.idx >= start, hashes.c.idx < end)
    ).all()
    return {r.idx: bytes(r.hash) for r in rows}


def entry_count(session: Session) -> int:
    """Return 1 + the highest stored entry index (an index lookup, not a scan)."""
    top = session.execute(select(func.max(entries.c.idx))).scalar_one()
    return 0 if top is None else top + 1


def _sql(session: Reads, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
    if isinstance(session, Session):
        return driver_sql(session, sql, params)
    return connection_sql(session, sql, params)


def find_leaf(session: Reads, leaf_hash: bytes, size: int) -> int | None:
    """Return the lowest index < size whose leaf hash is ``leaf_hash``.

    One probe of the partial index ``hashes_leaf (hash) WHERE level = 0``,
    whatever the planner's statistics: the level is a literal (a bound
    parameter cannot prove the index's predicate, on PostgreSQL or SQLite),
    and the size is checked here rather than in SQL, where a range on
    ``idx`` invites a scan of the primary key over every leaf below the
    size. The lowest match decides: if it is not below the size, none is.
    """
    rows, _ = _sql(session, _FIND_LEAF, (leaf_hash,))
    return rows[0][0] if rows and rows[0][0] < size else None


# The statement is fixed text run on the driver: a Core statement built per
# request cost more Python than the index probe takes.
_FIND_LEAF = "SELECT idx FROM hashes WHERE level = 0 AND hash = ? ORDER BY idx LIMIT 1"


def head_and_leaf(conn: Reads, leaf_hash: bytes) -> tuple[Head | None, int | None]:
    """The head and the lowest index whose leaf hash is ``leaf_hash`` (at
    any size: the caller compares it with the head's), in one statement,
    so one committed state: :func:`find_leaf`'s probe beside the head."""
    rows, _ = _sql(conn, _HEAD_AND_LEAF, (leaf_hash,))
    if not rows:
        return None, None
    return Head(rows[0][0], bytes(rows[0][1])), rows[0][2]


_HEAD_AND_LEAF = f"SELECT h.size, h.root, ({_FIND_LEAF}) FROM log_head h WHERE h.id = 1"


def head_and_checkpoint(conn: Reads, size: int) -> tuple[Head | None, StoredCheckpoint | None]:
    """The head and the checkpoint of ``size`` if the log signed one, in one
    statement, so one committed state (the consistency proof's older tree)."""
    rows, _ = _sql(conn, _HEAD_AND_CHECKPOINT, (size,))
    if not rows:
        return None, None
    head_size, head_root, cp_size, root, note, created_at_ms = rows[0]
    head = Head(head_size, bytes(head_root))
    return head, None if cp_size is None else StoredCheckpoint(cp_size, bytes(root), bytes(note), created_at_ms)


_HEAD_AND_CHECKPOINT = (
    "SELECT h.size, h.root, c.size, c.root, c.note, c.created_at_ms"
    " FROM log_head h LEFT JOIN checkpoints c ON c.size = ? WHERE h.id = 1"
)


def load_frontier(session: Session | Connection, size: int) -> Frontier:
    """Read the partial tiles of the tree of ``size``: at most 255 rows per level."""
    tiles = [Tile(lv, start // TILE_WIDTH, end - start) for lv, start, end in partial_ranges(size) if end > start]
    read = read_tile_rows(session, tiles)
    partials = []
    for lv, start, end in partial_ranges(size):
        data = read[(lv, start // TILE_WIDTH)] if end > start else b""
        partials.append([data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)])
    return Frontier.from_partials(size, partials)


def read_tiles(
    session: Reads, tiles: Sequence[Tile], *, with_head: bool = False
) -> tuple[Head | None, dict[tuple[int, int], bytes]]:
    """The rows of hash tiles ``tiles`` (distinct, not overlapping), and with
    ``with_head`` the head too, in one statement: by (level, n), the bytes
    of each tile whose ``width`` hashes are all stored; a tile missing any
    is left out (one beyond the head read with it; the caller decides).

    One statement, not one per tile: a proof or tile that misses what the
    process keeps was a Session and a statement per tile (and the Core
    statement's building and row objects cost more than the rows), which is
    why reads grew slower as the log outgrew the kept tiles
    (docs/performance.md). One statement reads one committed state, so the
    head read with the rows is the head of a tree that holds them.
    """
    ordered = sorted(tiles, key=lambda t: (t.level, t.n))
    if not ordered and not with_head:
        return None, {}
    params: list[int] = []
    for t in ordered:
        if t.level == ENTRIES_LEVEL:
            raise AssertionError("read_tiles reads hash tiles")
        params += (t.level, t.n * TILE_WIDTH, t.n * TILE_WIDTH + t.width)
    bind = session.get_bind() if isinstance(session, Session) else session
    pg = bind.dialect.name != "sqlite"
    key = (len(ordered), with_head, pg)
    sql = _TILES_SQL.get(key)
    if sql is None:
        head_row, tile_rows = (_HEAD_ROW_PG, _TILE_PG) if pg else (_HEAD_ROW, _TILE_ROWS)
        parts = ([head_row] if with_head else []) + [tile_rows] * len(ordered)
        sql = _TILES_SQL.setdefault(key, " UNION ALL ".join(parts) + " ORDER BY 1, 2")
    rows, _ = _sql(session, sql, params)
    head = None
    at = 0
    if with_head and rows and rows[0][0] == -1:
        head = Head(rows[0][1], bytes(rows[0][-1]))
        at = 1
    out: dict[tuple[int, int], bytes] = {}
    if pg:
        # A row per tile: its level, first index, count and hashes. Indexes
        # are unique and in the tile's range, so ``width`` of them from its
        # first are all of them.
        found = {(lv, first): (count, data) for lv, first, count, data in rows[at:]}
        for t in ordered:
            count, data = found.get((t.level, t.n * TILE_WIDTH), (0, b""))
            if count == t.width:
                out[(t.level, t.n)] = bytes(data)
        return head, out
    for t in ordered:
        start, end = t.n * TILE_WIDTH, t.n * TILE_WIDTH + t.width
        # Rows come sorted by (level, idx), unique (the primary key): the
        # next ``width`` rows are this tile's exactly if the first and last
        # are its first and last.
        run = rows[at : at + t.width]
        if len(run) == t.width and run[0][:2] == (t.level, start) and run[-1][:2] == (t.level, end - 1):
            out[(t.level, t.n)] = b"".join([r[2] for r in run])
            at += t.width
        else:
            while at < len(rows) and (rows[at][0], rows[at][1]) < (t.level, end):
                at += 1
    return head, out


_HEAD_ROW = "SELECT -1, size, root FROM log_head WHERE id = 1"
_TILE_ROWS = "SELECT level, idx, hash FROM hashes WHERE level = ? AND idx >= ? AND idx < ?"
# On PostgreSQL the database joins each tile's hashes: one row, not 256
# (each row costs the driver more Python than SQLite's).
_HEAD_ROW_PG = "SELECT -1, size, 0, root FROM log_head WHERE id = 1"
_TILE_PG = (
    "SELECT level, min(idx), count(*), string_agg(hash, ''::bytea ORDER BY idx)"
    " FROM hashes WHERE level = ? AND idx >= ? AND idx < ? GROUP BY level"
)
#: read_tiles' statements by (number of tiles, with the head, on PostgreSQL).
_TILES_SQL: dict[tuple[int, bool, bool], str] = {}


def read_tile_rows(session: Reads, tiles: Sequence[Tile]) -> dict[tuple[int, int], bytes]:
    """:func:`read_tiles` without the head; raise if any tile is missing a hash."""
    _, out = read_tiles(session, tiles)
    for t in tiles:
        if (t.level, t.n) not in out:
            start = t.n * TILE_WIDTH
            raise StorageError(f"log storage is missing level-{t.level} hashes in [{start}, {start + t.width})")
    return out


class TileCache(LRU[bytes]):
    """A bounded LRU of full tiles. Full tiles never change, so entries never
    go stale; one cache per database, shared by threads. (Also used for
    other immutable bytes: full tiles' inner nodes, single tree nodes.)"""

    def __init__(self, max_tiles: int = 4096) -> None:
        super().__init__(max_tiles)


class CacheMiss(Exception):
    """A read from what the process keeps (:func:`kept_nodes`) needed the database."""


def read_tile_data(session: Session, tile: Tile, cache: TileCache | None = None, edge: Frontier | None = None) -> bytes:
    """Return the bytes of a hash tile (level >= 0): ``width`` hashes of 32 bytes.

    Full tiles may come from ``cache``, partial ones from ``edge``, the
    frontier of a committed tree. The caller checks that the tile lies
    within a committed tree.
    """
    if tile.level == ENTRIES_LEVEL:
        raise AssertionError("read_tile_data reads hash tiles; use read_bundle for entries")
    data = _kept_tile(tile, cache, edge)
    if data is not None:
        return data
    data = read_tile_rows(session, [tile])[(tile.level, tile.n)]
    if cache is not None and not tile.is_partial:
        cache.put((tile.level, tile.n), data)
    return data


def tile_tree(data: bytes) -> bytes:
    """The inner nodes of a full tile's subtree, level by level from the
    bottom: 128 hashes, then 64, ... then the tile's root (255 in all).

    Level ``l`` (1 to 8) of the tile starts at hash ``256 - (512 >> l)``.
    """
    if len(data) != TILE_WIDTH * HASH_SIZE:
        raise AssertionError("tile_tree: not a full tile")
    pair, sha256, out = 2 * HASH_SIZE, hashlib.sha256, []
    while len(data) > HASH_SIZE:
        data = b"".join([sha256(b"\x01" + data[i : i + pair]).digest() for i in range(0, len(data), pair)])
        out.append(data)
    return b"".join(out)


def tile_leaf_path(data: bytes, tree: bytes, offset: int) -> tuple[bytes, list[bytes]]:
    """Leaf ``offset`` of a full level-0 tile (``data``, its inner nodes
    ``tree`` from :func:`tile_tree`) and its inclusion path within the tile:
    the sibling at each height 0 to 7, leaf upwards.

    In any tree that holds the whole tile, the tile is a complete subtree
    (RFC 9162 section 2.1.3.1 splits at powers of two, and its 256 leaves
    start at a multiple of 256), so these are the first ``TILE_HEIGHT``
    hashes of every leaf's proof in it; the rest is the proof of the tile's
    root, the same for all of its leaves."""
    leaf = data[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
    sibling = offset ^ 1
    path = [data[sibling * HASH_SIZE : (sibling + 1) * HASH_SIZE]]
    for height in range(1, TILE_HEIGHT):
        at = TILE_WIDTH - (2 * TILE_WIDTH >> height) + ((offset >> height) ^ 1)
        path.append(tree[at * HASH_SIZE : (at + 1) * HASH_SIZE])
    return leaf, path


class TileHashReader:
    """A :class:`ledger.tlog.merkle.HashReader` over the stored tiles.

    Each stored hash is recomputed from the one tile that holds it (as Go's
    ``tlog.TileHashReader`` does), so a proof reads O(log n) tiles: kept
    ones, and those a call lacks in one statement (:func:`read_tiles`). With ``trees``, a full tile's inner nodes
    (:func:`tile_tree`) are hashed once and kept: full tiles never change,
    so a proof through a kept tile hashes nothing. ``trees`` also keeps the
    nodes computed from partial tiles, by stored hash index: a node of a
    committed tree is the root of a complete subtree and never changes.
    """

    def __init__(
        self,
        session: Session,
        cache: TileCache | None = None,
        memo: bool = False,
        edge: Frontier | None = None,
        trees: TileCache | None = None,
    ) -> None:
        self._session = session
        self._cache = cache
        self._edge = edge
        # Only tiles full in a committed tree (the edge's) are full tiles.
        self._trees = trees if edge is not None else None
        # With memo, hashes already computed are kept: many proofs in one
        # tree share most of their upper hashes.
        self._memo: dict[int, bytes] | None = {} if memo else None

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        memo = self._memo
        if memo is None:
            return self._read(indexes)
        missing = [i for i in indexes if i not in memo]
        if missing:
            memo.update(zip(missing, self._read(missing), strict=True))
        return [memo[i] for i in indexes]

    def _is_full(self, level: int, n: int) -> bool:
        """Whether tile (level, n) is full in the edge's committed tree (and inner nodes are kept)."""
        edge = self._edge
        return self._trees is not None and edge is not None and (n + 1) * TILE_WIDTH <= edge.size >> TILE_HEIGHT * level

    def _read(self, indexes: Sequence[int]) -> list[bytes]:
        located = [tile_for_index(i) for i in indexes]
        out: list[bytes | None] = [None] * len(located)
        trees = self._trees
        kept_trees: dict[tuple[int, int], bytes] = {}
        want_tree: set[tuple[int, int]] = set()
        widths: dict[tuple[int, int], int] = {}
        for k, (t, start, end) in enumerate(located):
            key = (t.level, t.n)
            if end - start > HASH_SIZE and trees is not None:
                if self._is_full(t.level, t.n):
                    tree = kept_trees.get(key) or trees.get(key)
                    if tree is not None:
                        kept_trees[key] = tree
                        continue
                    want_tree.add(key)
                    widths[key] = TILE_WIDTH
                    continue
                out[k] = trees.get(indexes[k])
                if out[k] is not None:
                    continue
            widths[key] = max(widths.get(key, 0), t.width)
        data = self._tiles_data(widths)
        for key in want_tree:
            kept_trees[key] = tree = tile_tree(data[key][: TILE_WIDTH * HASH_SIZE])
            trees.put(key, tree)  # type: ignore[union-attr]  # want_tree implies trees
        hashes_ = []
        for k, (t, start, end) in enumerate(located):
            h_ = out[k]
            if h_ is None:
                key = (t.level, t.n)
                tree = kept_trees.get(key) if end - start > HASH_SIZE else None
                if tree is not None:
                    # The node of height h = log2(count) over hashes from start.
                    h = ((end - start) // HASH_SIZE).bit_length() - 1
                    at = TILE_WIDTH - (2 * TILE_WIDTH >> h) + (start // HASH_SIZE >> h)
                    h_ = tree[at * HASH_SIZE : (at + 1) * HASH_SIZE]
                else:
                    h_ = tile_hash(data[key][start:end])
                    if end - start > HASH_SIZE and trees is not None:
                        trees.put(indexes[k], h_)
            hashes_.append(h_)
        return hashes_

    def _tiles_data(self, widths: dict[tuple[int, int], int]) -> dict[tuple[int, int], bytes]:
        """Tiles (level, n) at least ``width`` hashes wide: kept ones, and
        the rest read in one statement (:func:`read_tiles`)."""
        data: dict[tuple[int, int], bytes] = {}
        need = []
        for (level, n), w in widths.items():
            t = Tile(level, n, w)
            kept = _kept_tile(t, self._cache, self._edge)
            if kept is None:
                need.append(t)
            else:
                data[(level, n)] = kept
        if need:
            read = read_tile_rows(self._session, need)
            for t in need:
                data[(t.level, t.n)] = read[(t.level, t.n)]
                if self._cache is not None and not t.is_partial:
                    self._cache.put((t.level, t.n), read[(t.level, t.n)])
        return data


def _kept_tile(tile: Tile, cache: TileCache | None, edge: Frontier | None) -> bytes | None:
    """Hash tile ``tile`` from ``cache`` (its full tile) or ``edge`` (a partial tile), if either has it."""
    if cache is not None:
        full = cache.get((tile.level, tile.n))
        if full is not None:
            return full[: tile.width * HASH_SIZE]
    if edge is not None and tile.is_partial:
        return edge.tile_data(tile.level, tile.n, tile.width)
    return None


def kept_nodes(
    size: int,
    cache: TileCache,
    trees: TileCache,
    edge: Frontier,
    read: dict[tuple[int, int], bytes] | None = None,
    missing: set[tuple[int, int]] | None = None,
) -> Callable[[int, int], bytes]:
    """A :data:`ledger.tlog.merkle.NodeReader` over the tree of ``size``
    (``edge`` the partial tiles of a tree at least as large) from what
    :class:`TileHashReader` keeps: full tiles and their inner nodes, and the
    edge's partial tiles; :class:`CacheMiss` for anything else. A node of
    height ``level`` is in tile level ``level // 8``; within the tile, a
    full tile's kept inner nodes (:func:`tile_tree`) hold it, a partial
    tile's hashes give it by :func:`tile_hash` (and it is kept).

    ``read``: full tiles just read for this proof, looked at before
    ``cache`` (which may have dropped them already). With ``missing``, a
    full tile found in neither is added to it and the node is a stand-in
    (zeros), not a miss: which nodes a proof reads depends on the tree
    size and index only, so one pass names every tile a proof lacks, to
    be read in one statement (:func:`read_tiles`) before the real pass."""

    # Inner nodes hashed in this pass: ``trees`` may drop them at once.
    hashed: dict[tuple[int, int], bytes] = {}

    def full_tile(key: tuple[int, int]) -> bytes | None:
        data = read.get(key) if read is not None else None
        return data if data is not None else cache.get(key)

    def node(level: int, i: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        n, offset = divmod(i << height, TILE_WIDTH)
        count = size >> TILE_HEIGHT * tile_level  # hashes at that tile level in the tree
        if (n + 1) * TILE_WIDTH <= count:
            key = (tile_level, n)
            if height == 0:
                data = full_tile(key)
                if data is None:
                    if missing is None:
                        raise CacheMiss
                    missing.add(key)
                    return _STAND_IN
                return data[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
            tree = hashed.get(key) or trees.get(key)
            if tree is None:
                data = full_tile(key)
                if data is None:
                    if missing is None:
                        raise CacheMiss
                    missing.add(key)
                    return _STAND_IN
                tree = hashed[key] = tile_tree(data)
                trees.put(key, tree)
            at = TILE_WIDTH - (2 * TILE_WIDTH >> height) + (offset >> height)
            return tree[at * HASH_SIZE : (at + 1) * HASH_SIZE]
        data = edge.tile_data(tile_level, n, count - n * TILE_WIDTH)
        if data is None:
            raise CacheMiss
        run = data[offset * HASH_SIZE : (offset + (1 << height)) * HASH_SIZE]
        if height == 0:
            return run
        key_ = stored_hash_index(level, i)  # as TileHashReader keeps a partial tile's nodes
        h = trees.get(key_)
        if h is None:
            h = tile_hash(run)
            trees.put(key_, h)
        return h

    return node


_STAND_IN = bytes(HASH_SIZE)


def tile_within(tile: Tile, size: int) -> bool:
    """Whether ``tile`` exists in the tree of ``size`` leaves."""
    count = size if tile.level == ENTRIES_LEVEL else size >> TILE_HEIGHT * tile.level
    return tile.n * TILE_WIDTH + tile.width <= count
