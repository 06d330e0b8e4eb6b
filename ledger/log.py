"""The log as the read paths and the operator see it: checkpoints, tiles,
entry bundles and proofs, each answered from one read transaction.

Proofs are always computed against a signed checkpoint, which the answer
carries, so nothing the log says is unverifiable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction

from keys.keyfile import load_or_create_signer, read_signer
from keys.note import Signer, Verifier
from ledger import storage
from ledger.db import SingleConnection, is_sqlite, make_engine, once_more_if_lost, single_connection
from ledger.errors import InvalidInput, KeyFormatError, NotFound, ProofError, StorageError
from ledger.intake import Intake
from ledger.lru import LRU
from ledger.migrate import upgrade
from ledger.registry import Registry, RegistryCache
from ledger.sequencer import Sequencer
from ledger.shared_read import SharedRead
from ledger.storage import CacheMiss, StoredCheckpoint, TileCache, TileHashReader
from ledger.submit import Committer
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.frontier import AppendedTree, Frontier
from ledger.tlog.merkle import (
    HASH_SIZE,
    NodeReader,
    prove_record,
    prove_record_nodes,
    prove_tree,
    prove_tree_nodes,
    stored_hash_index,
)
from ledger.tlog.tile import ENTRIES_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, encode_bundle

#: Where a read session keeps what its first statement read: the head and
#: the cosignature lines of its size (Log.read).
_HEAD = "ledger.head"
_T = TypeVar("_T")


@dataclass(frozen=True)
class InclusionProof:
    index: int
    leaf_hash: bytes
    proof: list[bytes]
    checkpoint: StoredCheckpoint


@dataclass(frozen=True)
class ConsistencyProof:
    first: StoredCheckpoint
    second: StoredCheckpoint
    proof: list[bytes]


class Log:
    """One Merkle log in one database, signed by one key."""

    def __init__(
        self, engine: Engine, signer: Signer, tile_cache_size: int = 4096, rendezvous: str | None = None
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = signer.name
        self.verifier: Verifier = signer.verifier
        self.sequencer = Sequencer(engine, signer)
        #: Key states and platforms, invalidated by registry entries: the
        #: committer's, checked against the head, and the request threads'.
        self.registry_cache = RegistryCache(self.read)
        self.registry = Registry(self.sequencer, signer, self.registry_cache)
        self.committer = Committer(self.sequencer, registry=self.registry_cache)
        #: Records from every worker of the server go through one committer
        #: (ledger/intake.py); without a rendezvous this process's own.
        self.intake = Intake(self, rendezvous)
        self._tiles = TileCache(tile_cache_size)
        #: Full tiles' inner nodes (storage.tile_tree, 8 KiB each), so a
        #: proof through a tile read before hashes nothing.
        self._trees = TileCache(tile_cache_size)
        #: By (size, root, n): the proof of full level-0 tile n's root in
        #: that tree, the part of its leaves' proofs above the tile
        #: (:meth:`_kept_proof`); the same for its 256 leaves, so a proof
        #: against the latest checkpoint walks no tree.
        self._uppers: LRU[tuple[bytes, ...]] = LRU(tile_cache_size)
        #: Signed checkpoints by size, as consistency proofs start from them:
        #: the log signs one per size and never replaces it.
        self._signed: LRU[StoredCheckpoint] = LRU(SIGNED_KEPT)
        # The partial tiles of the newest tree a read has needed: proofs
        # against it (or any tree sharing its partial tiles) read no tile.
        self._edge: Frontier | None = None
        self._latest: StoredCheckpoint | None = None
        # (head and cosignature lines, /checkpoint's bytes): latest_note.
        self._note: tuple[tuple[storage.Head | None, tuple[str, ...]], bytes] | None = None
        # PostgreSQL: the request threads' head statements shared, each
        # answer from a statement begun after the request asked (head_now).
        self._head_reads: SharedRead[tuple[storage.Head | None, tuple[str, ...]]] | None = (
            None if is_sqlite(engine) else SharedRead(self._read_head_now)
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: on SQLite one snapshot of the whole log.

        Its first statement reads the head and the cosignature lines of its
        size (kept in the session for :meth:`latest` and :meth:`latest_note`):
        every read path needs the head, and a pooled connection whose
        server end died (PostgreSQL restarted, its backend ended, a proxy's
        idle timeout) fails there. Then the transaction, which has done
        nothing yet and only reads, is begun once more on a fresh connection
        (the failure marked every pooled connection as old as it stale:
        ``ledger.db._wrapped``), where a pre-ping cost a round trip on every
        checkout. Any other database error, or a second lost connection,
        becomes :class:`StorageError` (503 with Retry-After).
        """
        try:
            session, transaction = self._begin_read()
            with session, transaction:
                yield session
        except DBAPIError as e:
            raise StorageError(f"the database is unavailable: {type(e.orig).__name__}") from e

    def _begin_read(self) -> tuple[Session, SessionTransaction]:
        def begin() -> tuple[Session, SessionTransaction]:
            session = Session(self.engine)
            transaction = session.begin()
            try:
                session.info[_HEAD] = storage.read_head_and_cosignatures(session)
            except BaseException:
                session.close()
                raise
            return session, transaction

        return once_more_if_lost(begin)

    def _single_statement(self, read: Callable[[SingleConnection], _T]) -> _T:
        """``read`` on a pooled connection in autocommit (one statement, one
        committed state; on PostgreSQL one round trip, where psycopg's
        implicit BEGIN and the pool's ROLLBACK made three), once more if the
        connection proves lost; a database error is :class:`StorageError`."""

        def attempt() -> _T:
            with single_connection(self.engine) as conn:
                return read(conn)

        try:
            return once_more_if_lost(attempt)
        except DBAPIError as e:
            raise StorageError(f"the database is unavailable: {type(e.orig).__name__}") from e

    def head_now(self) -> tuple[storage.Head | None, tuple[str, ...]]:
        """The head and the cosignature lines of its size, as committed now:
        one statement on a pooled connection, without a Session or an
        explicit transaction (one statement reads one committed state).

        For the hot read paths (``/checkpoint``, proofs against the latest
        checkpoint), whose answer is then built from what this process
        keeps for exactly that head (:meth:`checkpoint_note`,
        :meth:`inclusion`), or read in a full transaction when it keeps
        nothing for it: a Session's begin and commit cost more CPU than
        the rest of a cached proof (bench/reads_cpu.py). A lost pooled
        connection is retried once, as in :meth:`read`.

        On PostgreSQL, where the statement is a round trip, the threads
        that ask while one runs share the next (:class:`SharedRead`): each
        gets the answer of a statement begun after it asked, so a head
        committed before the request, by any process or server, is seen.
        """
        if self._head_reads is None:
            return self._read_head_now()
        return self._head_reads.get()

    def _read_head_now(self) -> tuple[storage.Head | None, tuple[str, ...]]:
        return self._single_statement(storage.read_head_and_cosignatures)

    def checkpoint_note(self) -> bytes:
        """``GET /checkpoint``: :meth:`latest_note` as of the head now, from
        the bytes kept for that head and its cosignatures when they match
        (the head is read every time: another process or server may have
        moved it); else read and kept."""
        state = self.head_now()
        kept = self._note
        if kept is not None and kept[0] == state:
            return kept[1]
        with self.read() as s:
            return self.latest_note(s)

    def check_key(self) -> None:
        """Refuse to run with a key that did not sign this log's checkpoints."""
        with self.read() as s:
            cp = storage.latest_checkpoint(s)
        if cp is None:
            return
        try:
            open_checkpoint(cp.note, self.verifier)
        except (ProofError, InvalidInput):
            raise StorageError(
                "the configured signing key (name and key) did not sign this log's latest checkpoint: "
                "check LEDGER_KEY_FILE and LEDGER_ORIGIN"
            ) from None

    def latest(self, session: Session) -> StoredCheckpoint:
        """The checkpoint of the head as ``session`` sees it.

        The head is always read; the checkpoint row only when the head has
        moved since the last call, since the log signs one checkpoint per
        size and never replaces it (the head's root must match, too).
        """
        state = session.info.get(_HEAD)
        head = storage.read_head(session) if state is None else state[0]
        return self.checkpoint_of_head(session, head)

    def latest_note(self, session: Session) -> bytes:
        """The latest checkpoint's note followed by the cosignature lines
        stored for its size, as ``session`` read them when it began
        (``GET /checkpoint``).

        Built once per head and set of cosignatures, and kept: the key is
        what this request's transaction read, so another process (or
        server) that moved the head or stored a cosignature is seen at
        once, and nothing older is ever served.
        """
        state = session.info.get(_HEAD)
        if state is None:
            state = session.info[_HEAD] = storage.read_head_and_cosignatures(session)
        head, lines = state
        kept = self._note
        if kept is not None and kept[0] == state:
            return kept[1]
        cp = self.checkpoint_of_head(session, head)
        note = cp.note + "".join(line + "\n" for line in lines).encode()
        self._note = (state, note)
        return note

    def checkpoint_of_head(self, session: Session, head: storage.Head | None) -> StoredCheckpoint:
        """The checkpoint of ``head``, read in ``session`` (as :meth:`latest`)."""
        cached = self._latest
        if head is not None and cached is not None and (cached.size, cached.root) == (head.size, head.root):
            return cached
        cp = None if head is None else storage.checkpoint_at(session, head.size)
        if cp is None:
            raise StorageError("the log is not initialised: run `flask --app app ledger init`")
        self._latest = cp
        return cp

    def latest_size(self) -> int:
        with self.read() as s:
            return self.latest(s).size

    def checkpoint_for(self, session: Session, size: int | None) -> StoredCheckpoint:
        """Return the checkpoint of ``size``, or the latest when None."""
        if size is None:
            return self.latest(session)
        cp = storage.checkpoint_at(session, size)
        if cp is None:
            latest = self.latest(session)
            if size > latest.size:
                raise NotFound(f"tree size {size} is beyond the latest checkpoint ({latest.size})")
            raise NotFound(f"the log signed no checkpoint for tree size {size}")
        return cp

    def _reader(self, session: Session, cp: StoredCheckpoint, memo: bool = False) -> TileHashReader:
        """A hash reader for proofs in ``cp``'s tree, from cached tiles where it can."""
        edge = self._edge
        if edge is None or edge.size < cp.size:
            # Read inside the caller's transaction, where cp is committed.
            edge = self._edge = storage.load_frontier(session, cp.size)
        return TileHashReader(session, self._tiles, memo=memo, edge=edge, trees=self._trees)

    def tile(self, tile: Tile) -> bytes:
        """Return a hash tile or entry bundle within the latest tree."""
        if tile.level == ENTRIES_LEVEL:
            with self.read() as s:
                size = self.latest(s).size
                if not storage.tile_within(tile, size):
                    raise NotFound(f"{tile.path()} is beyond the tree of size {size}")
                start = tile.n * TILE_WIDTH
                return encode_bundle(storage.read_entries(s, start, start + tile.width))
        # Only full tiles read inside a committed tree enter the cache, and a
        # full tile (and every partial form of it) is part of every later
        # tree: no statement, no look at the head.
        key = (tile.level, tile.n)
        cached = self._tiles.get(key)
        if cached is not None:
            return cached[: tile.width * HASH_SIZE]
        # Else one statement: the head and the tile's rows, one committed state.
        head, read = self._single_statement(lambda conn: storage.read_tiles(conn, [tile], with_head=True))
        if head is None:
            raise StorageError("the log is not initialised: run `flask --app app ledger init`")
        if not storage.tile_within(tile, head.size):
            raise NotFound(f"{tile.path()} is beyond the tree of size {head.size}")
        data = read.get(key)
        if data is None:
            start = tile.n * TILE_WIDTH
            raise StorageError(f"log storage is missing level-{tile.level} hashes in [{start}, {start + tile.width})")
        if not tile.is_partial:
            self._tiles.put(key, data)
        return data

    def entry(self, index: int) -> tuple[bytes, StoredCheckpoint]:
        with self.read() as s:
            cp = self.latest(s)
            if not 0 <= index < cp.size:
                raise NotFound(f"no entry {index} in the tree of size {cp.size}")
            return storage.read_entries(s, index, index + 1)[0], cp

    def inclusion(self, index: int, tree_size: int | None = None) -> InclusionProof:
        if tree_size is None:
            kept = self._kept()
            if kept is not None and 0 <= index < kept[0].size:
                proof = self._kept_proof(*kept, index, None)
                if proof is not None:
                    return proof
        with self.read() as s:
            cp = self.checkpoint_for(s, tree_size)
            if not 0 <= index < cp.size:
                raise NotFound(f"no entry {index} in the tree of size {cp.size}")
            reader = self._reader(s, cp)
            leaf = reader.read_hashes([stored_hash_index(0, index)])[0]
            return InclusionProof(index, leaf, prove_record(cp.size, index, reader), cp)

    def _kept(self) -> tuple[StoredCheckpoint, Frontier] | None:
        """The checkpoint kept as the latest, with the partial tiles of its
        tree, if this process keeps both; not checked against the head."""
        cp, edge = self._latest, self._edge
        if cp is None or edge is None or edge.size < cp.size:
            return None
        return cp, edge

    def _kept_proof(
        self, cp: StoredCheckpoint, edge: Frontier, index: int, head: storage.Head | None
    ) -> InclusionProof | None:
        """The proof of ``index`` against ``cp``, kept as the latest, if the
        head (read here unless given) is still ``cp``'s; else None.

        The proof's nodes come from what the process keeps (:meth:`_kept_walk`).
        A leaf of a full level-0 tile keeps the part of its proof above the
        tile, which its 256 leaves share, so that the tile's next leaves take
        theirs from the tile and that part (:meth:`_tile_proof`).
        """
        n = index >> TILE_HEIGHT
        full = (n + 1) * TILE_WIDTH <= cp.size
        if full:
            upper = self._uppers.get((cp.size, cp.root, n))
            if upper is not None:
                return self._tile_proof(cp, index, upper, head)
        got = self._kept_walk(cp, edge, lambda node: (node(0, index), prove_record_nodes(cp.size, index, node)), head)
        if got is None:
            return None
        leaf, path = got
        if full:
            self._uppers.put((cp.size, cp.root, n), tuple(path[TILE_HEIGHT:]))
        return InclusionProof(index, leaf, path, cp)

    def _kept_walk(
        self, cp: StoredCheckpoint, edge: Frontier, walk: Callable[[NodeReader], _T], head: storage.Head | None
    ) -> _T | None:
        """``walk`` over the nodes of ``cp``'s tree from what the process
        keeps, if the head (read here unless given) is still ``cp``'s; else
        None, as when the edge lacks a partial tile of ``cp``'s tree (then a
        full read transaction answers).

        The full tiles a first pass finds missing (:func:`storage.kept_nodes`:
        which nodes a proof reads depends on the sizes and index only) are
        read in the head's statement, so a miss costs one statement and no
        Session, whatever the tree's size. They are full in ``cp``'s
        committed tree and never change: kept even if the head has moved.
        """
        missing: set[tuple[int, int]] = set()
        try:
            got = walk(storage.kept_nodes(cp.size, self._tiles, self._trees, edge, missing=missing))
            if not missing and head is None:
                head = self.head_now()[0]  # shared with the other threads asking (PostgreSQL)
            elif missing:
                tiles = [Tile(level, n) for level, n in sorted(missing)]
                read_head, read = self._single_statement(
                    lambda conn: storage.read_tiles(conn, tiles, with_head=head is None)
                )
                head = head or read_head
                for key, data in read.items():
                    self._tiles.put(key, data)
                if len(read) != len(tiles):
                    raise StorageError(f"log storage is missing hashes of the tiles {sorted(missing)}")
            if head is None or (head.size, head.root) != (cp.size, cp.root):
                return None
            if missing:
                got = walk(storage.kept_nodes(cp.size, self._tiles, self._trees, edge, read=read))
        except CacheMiss:
            return None
        return got

    def _tile_proof(
        self, cp: StoredCheckpoint, index: int, upper: tuple[bytes, ...], head: storage.Head | None
    ) -> InclusionProof | None:
        """:meth:`_kept_proof` for a leaf of a full level-0 tile whose root's
        proof in ``cp``'s tree (``upper``) is kept: the leaf and its path
        within the tile are slices of the tile and its inner nodes
        (:func:`storage.tile_leaf_path`), then ``upper``. A tile not kept is
        read in the head's statement; None if the head is not ``cp``'s."""
        key = (0, index >> TILE_HEIGHT)
        data = self._tiles.get(key)
        if data is None:
            tile = Tile(0, key[1])
            read_head, read = self._single_statement(
                lambda conn: storage.read_tiles(conn, [tile], with_head=head is None)
            )
            head = head or read_head
            data = read.get(key)
            if data is None:
                raise StorageError(f"log storage is missing hashes of the tiles {[key]}")
            self._tiles.put(key, data)
        elif head is None:
            head = self.head_now()[0]  # shared with the other threads asking (PostgreSQL)
        if head is None or (head.size, head.root) != (cp.size, cp.root):
            return None
        tree = self._trees.get(key)
        if tree is None:
            tree = storage.tile_tree(data)
            self._trees.put(key, tree)
        leaf, path = storage.tile_leaf_path(data, tree, index & (TILE_WIDTH - 1))
        path.extend(upper)
        return InclusionProof(index, leaf, path, cp)

    def inclusions(
        self, indexes: list[int], cp: StoredCheckpoint, tree: AppendedTree | None = None
    ) -> list[InclusionProof]:
        """Proofs for many entries against one checkpoint, sharing tile reads.

        Entries that ``tree`` (the batch just appended, whose tree is
        ``cp``'s) covers are proved from memory; only the rest read tiles,
        in one read transaction opened if any needs it.
        """
        if tree is not None and tree.size != cp.size:
            raise AssertionError("log: the appended tree is not the checkpoint's tree")
        out: dict[int, InclusionProof] = {}
        rest = []
        for index in indexes:
            if not 0 <= index < cp.size:
                raise NotFound(f"no entry {index} in the tree of size {cp.size}")
            if tree is not None and tree.covers(index):
                out[index] = InclusionProof(index, tree.leaf_hash(index), tree.prove(index), cp)
            else:
                rest.append(index)
        if rest:
            with self.read() as s:
                reader = self._reader(s, cp, memo=True)
                for index in rest:
                    leaf = reader.read_hashes([stored_hash_index(0, index)])[0]
                    out[index] = InclusionProof(index, leaf, prove_record(cp.size, index, reader), cp)
        return [out[i] for i in indexes]

    def inclusion_by_hash(self, leaf_hash: bytes, tree_size: int | None = None) -> InclusionProof:
        found: int | None = None  # the lowest index of the leaf, found outside the transaction
        if tree_size is None:
            kept = self._kept()
            if kept is not None:
                cp, edge = kept
                head, found = self._single_statement(lambda conn: storage.head_and_leaf(conn, leaf_hash))
                if head is not None and (head.size, head.root) == (cp.size, cp.root):
                    if found is None or found >= cp.size:
                        raise NotFound(f"no entry with that leaf hash in the tree of size {cp.size}")
                    proof = self._kept_proof(cp, edge, found, head)
                    if proof is not None:
                        return proof
        with self.read() as s:
            cp = self.checkpoint_for(s, tree_size)
            # The head never shrinks and leaves never change: the lowest index
            # found above (at any size), if below this size, is the lowest below it.
            index = found if found is not None and found < cp.size else storage.find_leaf(s, leaf_hash, cp.size)
            if index is None:
                raise NotFound(f"no entry with that leaf hash in the tree of size {cp.size}")
            reader = self._reader(s, cp)
            return InclusionProof(index, leaf_hash, prove_record(cp.size, index, reader), cp)

    def consistency(self, first: int, second: int | None = None) -> ConsistencyProof:
        if second is None:
            kept = self._kept_consistency(first)
            if kept is not None:
                return kept
        with self.read() as s:
            new = self.checkpoint_for(s, second)
            old = self.checkpoint_for(s, first)
            if old.size > new.size:
                raise InvalidInput(f"first ({old.size}) must not exceed second ({new.size})")
            if old.size == 0 or old.size == new.size:
                # Every tree extends the empty tree; a tree extends itself.
                return ConsistencyProof(old, new, [])
            proof = prove_tree(new.size, old.size, self._reader(s, new))
            return ConsistencyProof(old, new, proof)

    def _kept_consistency(self, first: int) -> ConsistencyProof | None:
        """The proof from the checkpoint of ``first`` to the one kept as the
        latest, if the head is still that one's, from what the process keeps
        (:meth:`_kept_walk`): the head's statement, shared on PostgreSQL,
        or with the older checkpoint read beside it when it is not kept.
        None when this cannot answer (nothing kept, the head moved, no
        checkpoint of ``first``, ``first`` beyond the latest): the read
        transaction does, and words any error."""
        kept = self._kept()
        if kept is None:
            return None
        cp, edge = kept
        old = self._signed.get(first)
        head: storage.Head | None = None
        if old is None:
            head, old = self._single_statement(lambda conn: storage.head_and_checkpoint(conn, first))
            if old is None:
                return None
            self._signed.put(first, old)
        if old.size > cp.size:
            return None
        size = old.size
        if size == 0 or size == cp.size:
            # Every tree extends the empty tree; a tree extends itself.
            proof: list[bytes] | None = self._kept_walk(cp, edge, lambda node: [], head)
        else:
            proof = self._kept_walk(cp, edge, lambda node: prove_tree_nodes(cp.size, size, node), head)
        return None if proof is None else ConsistencyProof(old, cp, proof)


#: Signed checkpoints a process keeps by size (:meth:`Log._kept_consistency`),
#: some 300 bytes each.
SIGNED_KEPT = 1024

#: Database connections a worker keeps open for reuse. They are opened only
#: as threads need them, so this bounds what is kept, not what is opened;
#: it must exceed LEDGER_THREADS plus the committer, or every request beyond
#: the pool size opens a connection and closes it again (on SQLite about
#: 10 ms of PRAGMAs each, as profiled with 16 threads).
POOL_SIZE = 40
POOL_OVERFLOW = 20


class LogProvider:
    """Opens the log on first use, so an app can be created before the log
    (or its key) exists, and each process opens its own engine after fork."""

    def __init__(
        self,
        database_url: str,
        key_file: str,
        origin: str,
        sqlite_busy_timeout_ms: int = 30_000,
        tile_cache_size: int = 4096,
    ) -> None:
        self.database_url = database_url
        self.key_file = key_file
        self.origin = origin
        self._busy_ms = sqlite_busy_timeout_ms
        self._tile_cache_size = tile_cache_size
        self._log: Log | None = None
        self._lock = threading.Lock()

    @property
    def log(self) -> Log:
        if self._log is None:
            with self._lock:
                if self._log is None:
                    self._log = self._open()
        return self._log

    def _open(self) -> Log:
        signer = read_signer(Path(self.key_file))
        if signer.name != self.origin:
            raise KeyFormatError(
                f"key file {self.key_file} holds a key named {signer.name!r}, but the origin is {self.origin!r}"
            )
        engine = make_engine(self.database_url, self._busy_ms, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        log = Log(engine, signer, self._tile_cache_size, rendezvous=f"{self.key_file}.intake")
        log.check_key()
        return log

    def initialise(self) -> tuple[Log, bool]:
        """Migrate the database, create the key if absent, sign checkpoint 0.

        Returns (log, whether a new key was created). Idempotent.
        """
        _, created = load_or_create_signer(Path(self.key_file), self.origin)
        engine = make_engine(self.database_url, self._busy_ms)
        upgrade(engine)
        engine.dispose()
        log = self.log
        log.sequencer.init()
        return log, created

    def close(self) -> None:
        if self._log is not None:
            self._log.intake.close()
            self._log.engine.dispose()
            self._log = None
