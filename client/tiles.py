"""Reading a log through its tiles (c2sp.org/tlog-tiles), trusting none of them.

:class:`TileClient` fetches ``/checkpoint``, hash tiles and entry bundles.
:class:`TileHashReader` is a :class:`ledger.tlog.merkle.HashReader` over those
tiles for one verified checkpoint: a port of Go's ``tlog.TileHashReader``
(golang.org/x/mod/sumdb/tlog/tile.go). Before it returns any hash it has
checked every tile it used: the tiles on the tree's right edge by
recomputing the checkpoint's root from them, every other tile (a full one)
by its hash in its verified parent tile. Every hash it returns is therefore
proved to be in the checkpoint's tree, and so is anything computed from
them: a proof, an old tree's root, an entry bundle's leaf hashes
(:func:`verified_bundles`).

Fetched tiles are kept in memory only, unverified, and verified again on
every use; nothing from the server is written anywhere before it verifies.
"""

from __future__ import annotations

import base64
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from client.http import Http, ProblemResponse
from client.verifying import VerificationFailed
from keys.note import Verifier
from ledger.errors import InvalidInput, ProofError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.frontier import Frontier

# Go's tile reader uses tlog's subTreeIndex too: the stored hashes whose
# fold is the tree hash, i.e. the right edge of the tree.
from ledger.tlog.merkle import (
    HASH_SIZE,
    fold_peaks,
    node_hash,
    prove_tree,
    record_hash,
    stored_hash_index,
    sub_tree_index,
    tree_hash,
)
from ledger.tlog.tile import (
    ENTRIES_LEVEL,
    MAX_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    hash_from_tile,
    parse_bundle,
    tile_for_index,
    tile_hash,
)
from ledger.tlog.verify import verify_checkpoint

#: A checkpoint is a few lines; anything much longer is not one.
MAX_CHECKPOINT_BYTES = 1 << 16


class TileMismatch(VerificationFailed):
    """Tiles the log served do not hash to its checkpoint's root."""


class ForkDetected(VerificationFailed):
    """Two signed checkpoints of one log that no single append-only history explains.

    ``evidence`` maps file names to the bytes that prove it (the signed
    checkpoints, and the log's answer where there is one).
    """

    def __init__(self, message: str, evidence: dict[str, bytes]) -> None:
        super().__init__(message)
        self.evidence = evidence


class TileClient:
    """The C2SP read endpoints of one log. Tiles are cached in memory, unverified."""

    def __init__(self, http: Http, cache_tiles: int = 512) -> None:
        self.http = http
        self._cache: OrderedDict[Tile, bytes] = OrderedDict()
        self._max = cache_tiles

    def checkpoint(self) -> bytes:
        """The log's latest signed checkpoint, as served (not yet verified)."""
        data = self.http.request("GET", "/checkpoint").content
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise VerificationFailed(f"the log's /checkpoint is {len(data)} bytes long: not a checkpoint")
        return data

    def _get(self, tile: Tile) -> bytes | None:
        try:
            return self.http.request("GET", "/" + tile.path()).content
        except ProblemResponse as e:
            if e.status == 404:
                return None
            raise

    def _fetch(self, tile: Tile) -> tuple[Tile, bytes]:
        """Return the tile fetched and its bytes. A partial tile that 404s is
        fetched full instead, for the caller to cut: c2sp.org/tlog-tiles asks
        clients to, since a log may stop serving partial tiles it has outgrown."""
        data = self._get(tile)
        if data is None and tile.is_partial:
            full = Tile(tile.level, tile.n)
            data = self._get(full)
            if data is not None:
                return full, data
        if data is None:
            raise VerificationFailed(f"the log does not serve {tile.path()}, which its checkpoint commits to")
        return tile, data

    def hash_tile(self, tile: Tile) -> bytes:
        """Return the ``width`` hashes of a hash tile, checked only for length."""
        cached = self._cache.get(tile)
        if cached is not None:
            self._cache.move_to_end(tile)
            return cached
        got, data = self._fetch(tile)
        if len(data) != got.width * HASH_SIZE:
            raise VerificationFailed(f"{got.path()} is {len(data)} bytes long, not {got.width * HASH_SIZE}")
        data = data[: tile.width * HASH_SIZE]
        self._cache[tile] = data
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return data

    def raw_bundles(self, spans: Sequence[tuple[int, int]], ahead: int = 4) -> Iterator[tuple[Tile, bytes]]:
        """Yield the tile fetched and its bytes (:meth:`_fetch`, not yet split:
        :meth:`bundle` splits) for the entry bundle of each (n, width) in
        ``spans``, in order, with up to ``ahead`` requests in flight: the log
        serves the next bundles while the caller checks this one. A failure is
        raised where its bundle would be."""
        pool = ThreadPoolExecutor(ahead, thread_name_prefix="bundles")
        try:
            pending: deque[Future[tuple[Tile, bytes]]] = deque()
            for k in range(len(spans)):
                while len(pending) < ahead and k + len(pending) < len(spans):
                    pending.append(pool.submit(self._fetch, Tile(ENTRIES_LEVEL, *spans[k + len(pending)])))
                yield pending.popleft().result()
        finally:
            pool.shutdown(cancel_futures=True)

    def bundle(self, n: int, width: int) -> list[bytes]:
        """Return the ``width`` entries of entry bundle ``n``, parsed exactly, not yet verified."""
        got, data = self._fetch(Tile(ENTRIES_LEVEL, n, width))
        try:
            return parse_bundle(data, got.width)[:width]
        except InvalidInput as e:
            raise VerificationFailed(f"the entry bundle {got.path()} is malformed: {e}") from None


def tile_parent(t: Tile, k: int, n: int) -> Tile | None:
    """Return ``t``'s k'th parent tile in the tiles of a tree of size ``n``
    (k = 0: ``t`` itself at its width in that tree); None if there is none."""
    level = t.level + k
    index = t.n >> (k * TILE_HEIGHT)
    count = n >> (level * TILE_HEIGHT)  # hashes at this tile level in the tree
    if index * TILE_WIDTH >= count:
        return None
    return Tile(level, index, min(TILE_WIDTH, count - index * TILE_WIDTH))


class TileHashReader:
    """A HashReader over the tiles of the tree of checkpoint ``cp``: every
    hash it returns has been proved to be in that tree (see the module doc)."""

    def __init__(self, client: TileClient, cp: Checkpoint) -> None:
        self.client = client
        self.cp = cp

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the stored hashes at ``indexes``, from tiles verified against the root."""
        tiles, edge, pos = self._plan(indexes)
        data = {t: self.client.hash_tile(t) for t in tiles}
        self._authenticate(tiles, edge, data)
        return [hash_from_tile(tiles[j], data[tiles[j]], x) for j, x in zip(pos, indexes, strict=True)]

    def verify_tile(self, tile: Tile, data: bytes) -> None:
        """Check that ``data`` (say, hashed from an entry bundle) is ``tile`` of this tree."""
        if tile_parent(tile, 0, self.cp.size) != tile or len(data) != tile.width * HASH_SIZE:
            raise AssertionError(f"{tile.path()} is not a tile of the tree of size {self.cp.size}")
        tiles, edge, _ = self._plan([stored_hash_index(TILE_HEIGHT * tile.level, tile.n * TILE_WIDTH)])
        self._authenticate(tiles, edge, {t: data if t == tile else self.client.hash_tile(t) for t in tiles})

    def _plan(self, indexes: Sequence[int]) -> tuple[list[Tile], list[Tile | None], list[int]]:
        """Return the tiles to read (the right edge's first, then parents before
        children), the tile of each right-edge hash, and for each index the
        position of the tile it is read from."""
        n = self.cp.size
        if n == 0:
            raise InvalidInput("the empty tree has no tiles")
        edge = [tile_parent(tile_for_index(x)[0], 0, n) for x in sub_tree_index(0, n, [])]
        order: dict[Tile, int] = {}
        for p in edge:
            if p is None:
                raise AssertionError(f"tiles: bad math in the right edge of the tree of size {n}")
            order.setdefault(p, len(order))
        pos = []
        for x in indexes:
            if not 0 <= x < stored_hash_index(0, n):
                raise InvalidInput(f"stored hash {x} is not in the tree of size {n}")
            t = tile_for_index(x)[0]
            # Walk up to a tile already planned, hence authenticated, then
            # plan the chain back down: each tile in it is full, as it has a parent.
            k = next((k for k in range(MAX_LEVEL + 1) if tile_parent(t, k, n) in order), None)
            if k is None:
                raise AssertionError(f"tiles: no planned parent for stored hash {x} in the tree of size {n}")
            for j in range(k - 1, -1, -1):
                p = tile_parent(t, j, n)
                if p is None or p.is_partial:
                    raise AssertionError(f"tiles: bad math for stored hash {x} in the tree of size {n}")
                order[p] = len(order)
            pos.append(order[tile_parent(t, 0, n)])  # type: ignore[index]
        return list(order), edge, pos

    def _authenticate(self, tiles: list[Tile], edge: list[Tile | None], data: dict[Tile, bytes]) -> None:
        """Check the right-edge tiles against the root, then every other tile
        against its parent, which comes before it in ``tiles``."""
        n = self.cp.size
        stx = sub_tree_index(0, n, [])
        hashes = [hash_from_tile(t, data[t], x) for t, x in zip(edge, stx, strict=True) if t is not None]
        th = hashes[-1]
        for h in reversed(hashes[:-1]):
            th = node_hash(h, th)
        distinct = list(dict.fromkeys(t for t in edge if t is not None))
        if th != self.cp.root:
            # One of them is wrong; which, the root cannot tell.
            names = ", ".join(t.path() for t in distinct)
            raise TileMismatch(f"the tiles {names} do not hash to the root of the log's checkpoint of size {n}")
        for t in tiles[len(distinct) :]:
            p = tile_parent(t, 1, n)
            if p is None or p not in data:
                raise AssertionError(f"tiles: lost the parent of {t.path()} in the tree of size {n}")
            if hash_from_tile(p, data[p], stored_hash_index(TILE_HEIGHT * p.level, t.n)) != tile_hash(data[t]):
                raise TileMismatch(f"{t.path()} does not match its hash in {p.path()}")


def bundle_span(size: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Yield (bundle index, its width in the tree of ``size``) for the bundles holding [start, end)."""
    for b in range(start // TILE_WIDTH, -(-end // TILE_WIDTH)):
        yield b, min(TILE_WIDTH, size - b * TILE_WIDTH)


def _altered(size: int, b: int, width: int, index: int) -> VerificationFailed:
    return VerificationFailed(
        f"entry {index} in {Tile(ENTRIES_LEVEL, b, width).path()} is not the entry the log's checkpoint "
        f"of size {size} commits to: the entry bundle was altered"
    )


def verified_bundles(reader: TileHashReader, start: int, end: int) -> Iterator[list[tuple[int, bytes, bytes]]]:
    """Yield, a bundle at a time, (index, entry, leaf hash) for entries [start, end)
    of the reader's tree, each bundle checked against the verified tiles first.

    A full bundle is hashed into its level-0 tile and checked against the
    verified level-1 tile, so it costs no extra request; only when that
    fails are the log's own level-0 hashes read, to name the altered entry.
    """
    size = reader.cp.size
    if not 0 <= start <= end <= size:
        raise InvalidInput(f"entries [{start}, {end}) are not in the tree of size {size}")
    for b, width in bundle_span(size, start, end):
        first = b * TILE_WIDTH
        entries = reader.client.bundle(b, width)
        leaves = [record_hash(e) for e in entries]
        try:
            reader.verify_tile(Tile(0, b, width), b"".join(leaves))
        except TileMismatch:
            # The tiles' own error, if they are what is wrong; else the entry.
            want = reader.read_hashes([stored_hash_index(0, first + i) for i in range(width)])
            bad = [first + i for i in range(width) if leaves[i] != want[i]]
            if not bad:
                raise VerificationFailed(f"the log served inconsistent tiles for {Tile(0, b, width).path()}") from None
            raise _altered(size, b, width, bad[0]) from None
        lo, hi = max(start, first), min(end, first + width)
        yield [(i, entries[i - first], leaves[i - first]) for i in range(lo, hi)]


# Checks built on the reader ------------------------------------------------------


def open_cp(note: bytes, verifier: Verifier, what: str) -> Checkpoint:
    """Verify a signed checkpoint; a failure names ``what`` it was."""
    try:
        return verify_checkpoint(note, verifier)
    except InvalidInput as e:
        raise VerificationFailed(f"{what} is not a well-formed checkpoint: {e}") from None
    except ProofError as e:
        raise VerificationFailed(f"{what} is not signed by the log's key {verifier.to_key()}: {e}") from None


def fork(message: str, *notes: tuple[Checkpoint, bytes], extra: dict[str, bytes] | None = None) -> ForkDetected:
    """A :class:`ForkDetected` whose evidence is the signed ``notes`` (and ``extra`` files)."""
    files = {f"checkpoint-{cp.size}-{cp.root.hex()[:16]}.txt": note for cp, note in notes}
    return ForkDetected(message, {**files, **(extra or {})})


def check_extends(reader: TileHashReader, old: Checkpoint, old_note: bytes, new_note: bytes) -> None:
    """Check that the reader's tree extends ``old``'s, by recomputing the old root
    from the verified tiles (what a consistency proof, RFC 9162 §2.1.4, proves).

    If it does not, raise :class:`ForkDetected` whose evidence is both signed
    checkpoints and, for different sizes, the consistency proof computed from
    the larger tree: ``check_tree`` accepts it for the root that tree gives
    the smaller size, which is not the root the smaller checkpoint signs.
    """
    new = reader.cp
    if old.size > new.size:
        raise AssertionError("check_extends: the old tree is the larger")
    if old.size == new.size:
        if old.root != new.root:
            raise fork(f"two different signed checkpoints of size {old.size}", (old, old_note), (new, new_note))
        return
    root = old.root if old.size == 0 else tree_hash(old.size, reader)
    if root != old.root:
        b64 = base64.b64encode
        proof = [b64(h).decode() for h in prove_tree(new.size, old.size, reader)]
        lines = [f"tree size {new.size}, root {b64(new.root).decode()}", f"its tree of size {old.size} has the root"]
        lines += [b64(root).decode(), "consistency proof:", *proof]
        raise fork(
            f"the log's checkpoint of size {new.size} does not extend its checkpoint of size {old.size}: "
            f"its tiles give the tree of size {old.size} the root {b64(root).decode()}, not {b64(old.root).decode()}",
            (old, old_note),
            (new, new_note),
            extra={"consistency-proof.txt": ("\n".join(lines) + "\n").encode()},
        )


def check_inclusion(reader: TileHashReader, indexes: Sequence[int]) -> dict[int, bytes]:
    """Check entries ``indexes`` as a tile client proves inclusion: each entry's
    leaf hash must be the hash that the verified level-0 tile holds at its index.
    Return the entries."""
    size = reader.cp.size
    by_bundle: dict[int, list[int]] = {}
    for i in sorted(set(indexes)):
        if not 0 <= i < size:
            raise InvalidInput(f"there is no entry {i} in the tree of size {size}")
        by_bundle.setdefault(i // TILE_WIDTH, []).append(i)
    found: dict[int, bytes] = {}
    for b, group in by_bundle.items():
        width = min(TILE_WIDTH, size - b * TILE_WIDTH)
        entries = reader.client.bundle(b, width)
        for i, h in zip(group, reader.read_hashes([stored_hash_index(0, i) for i in group]), strict=True):
            found[i] = entries[i - b * TILE_WIDTH]
            if record_hash(found[i]) != h:
                raise _altered(size, b, width, i)
    return {i: found[i] for i in indexes}


class BundleAudit(Protocol):
    """What :func:`recompute_root` hands the entry bundles to (:class:`client.checks.ParallelEntryAudit`)."""

    def bundle(self, first: int, width: int, served: int, data: bytes, path: str) -> None: ...

    def hashes(self) -> list[bytes]: ...


def root_of_bundles(size: int, parts: Sequence[bytes]) -> bytes:
    """The tree hash of a log of ``size`` entries from its bundles' hashes in
    order: each full bundle's level-0 tile hash, then, if ``size`` is not a
    multiple of 256, the last (partial) bundle's leaf hashes concatenated.

    RFC 9162's root is the right fold of the maximal perfect subtrees, one per
    set bit of the size. Those of 256 leaves or more are built of whole
    bundles exactly as a tree whose leaves are the tile hashes (a tile hash is
    the root of its 256 leaves); the rest are the partial bundle's, and their
    fold is the tree hash of its leaves, so it is folded in last.
    """
    full, rest = divmod(size, TILE_WIDTH)
    if len(parts) != full + (rest > 0) or any(len(p) != HASH_SIZE for p in parts[:full]):
        raise AssertionError(f"root_of_bundles: {len(parts)} bundle hashes for a tree of size {size}")
    tiles = Frontier()
    for part in parts[:full]:
        tiles.append(part)
    peaks = [h for _, _, h in tiles.subtrees()]
    if rest:
        if len(parts[-1]) != rest * HASH_SIZE:
            raise AssertionError(f"root_of_bundles: the last bundle's hashes are not {rest} leaves")
        tail = Frontier()
        for i in range(0, len(parts[-1]), HASH_SIZE):
            tail.append(parts[-1][i : i + HASH_SIZE])
        peaks.append(tail.root())
    return fold_peaks(peaks)


def recompute_root(reader: TileHashReader, audit: BundleAudit, progress: Callable[[int], None]) -> None:
    """Hash every entry bundle into the tree and compare the root with the checkpoint's.

    Streams the bundles to ``audit``, which splits them, hashes their leaves
    and checks their entries, and returns a hash per bundle (:func:`root_of_bundles`):
    this holds O(n / 256) hashes. The entries' first failure is ``audit``'s to
    raise, once this returned: the entries are then known to be the log's. A
    root mismatch is pinned to the first altered bundle through the verified tiles.
    """
    cp = reader.cp
    spans = list(bundle_span(cp.size, 0, cp.size))
    for (b, width), (got, data) in zip(spans, reader.client.raw_bundles(spans), strict=True):
        audit.bundle(b * TILE_WIDTH, width, got.width, data, got.path())
        progress(width)
    if root_of_bundles(cp.size, audit.hashes()) != cp.root:
        for _ in verified_bundles(reader, 0, cp.size):
            pass
        raise VerificationFailed(f"the entry bundles do not hash to the root of the checkpoint of size {cp.size}")
