"""Files derived from full entry bundles, kept so bulk reads cost a file read.

What is derived from a full entry bundle (256 entries, c2sp.org/tlog-tiles)
alone is kept here once built: the gzip member of its export lines
(``/api/v1/export?...&layout=bundles``), and the whole file
``/api/v1/export/bundles/<N>.<fmt>.gz`` (which also names the smallest
checkpoint covering the bundle, fixed once signed). Building them costs
decompressing 256 stored entries (ledger/entry_codec.py), formatting and
gzip at level 6: 110 to 180 µs of CPU an entry on a busy machine
(docs/performance.md); reading them back, a file read.

A bundle never changes in an honest log, but the operator's database can:
an entry rewritten in ``entries`` without touching the stored hashes shows
on every page, and a file kept from before the rewrite would keep serving
the original bytes, hiding from whoever downloads what the pages display
(a split view; ``ledger audit`` finds the rewrite, a download would not).
So a file is served only if the database holds, at the time of the
request, exactly what it was built from. A file is named by the SHA-256
of its bundle's :class:`Source` (its 256 leaf hashes and 256 entries in
their stored form, not decoded: ledger.storage.stored_digest), and each
request reads that digest of what the database holds now
(``read_bundle_digests``, 16 bundles to a statement, computed by
PostgreSQL itself; on SQLite read and hashed here) and opens only the file
of that name. A miss builds from a fresh read of the bundle's source and
keeps the file under that source's digest. A rewritten entry (or leaf
hash) so names another file, built from the rewritten bytes; the one kept
before is never read again, and :func:`check` names it. The check costs
the read and hash of ~170 KB a bundle (on PostgreSQL in the database),
against the decompress, format and gzip it saves: the cached export went
from 1.1-1.7 million entries per CPU-second to about 290,000 on SQLite and
190,000 on PostgreSQL counting its backend's CPU
(docs/performance.md, "The bundle cache checks the database").

``/tile/entries/<N>`` is not served from here (api/tiles.py): verifiers
read the bundles from the database itself.

Each file is named by what it is derived from, so a file can only be found
by a request it answers: ``<dir>/<LAYOUT>/<kind>/<N>.<source digest>[.<checkpoint>]``,
where the source digest is :meth:`Source.digest` and the checkpoint is the
SHA-256 of the covering checkpoint's signed note. A database replaced
under the same directory (another log, a restored backup) names other
files, so it never reads this log's. (Releases before 2026-12-07 named
files by the bundle's stored level-1 hash; no request finds those, and the
audit names them: delete them.)

The files are derived data (ledger/derived.py's rule): :func:`check` derives
every one again from the log and names each that differs or that the
database no longer holds the source of, and ``flask ledger audit`` runs it.
Writes are crash-safe without a lock: written to ``<dir>/.tmp/``, fsynced,
renamed into place; two processes that build the same file write the same
bytes. A cache that cannot be written (a read-only disk, a full one) serves
what it builds without keeping it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger import query, storage
from ledger.errors import NotFound
from ledger.log import Log
from ledger.records.dsa import DSA_CSV_COLUMNS, checkpoint_cell, dsa_row
from ledger.records.export import csv_header, csv_row, csv_text, header_line, ndjson_line, stored_entry
from ledger.storage import StoredCheckpoint
from ledger.tlog.tile import TILE_WIDTH

FORMATS = ("ndjson", "csv", "dsa-csv")
#: Formats whose lines depend on the entries alone; dsa-csv names the checkpoint in every row.
MEMBER_FORMATS = ("ndjson", "csv")
TMP = ".tmp"
#: The naming scheme's folder. Files of an earlier scheme (named by the
#: bundle's level-1 hash directly under ``<dir>/<kind>/``, before 2026-12-07)
#: lie outside it: never read, never audited, and safe to delete.
LAYOUT = "by-source"
#: Full bundles whose stored digests one statement reads (4 MB of entries
#: at most, hashed by PostgreSQL or read here on SQLite): a round trip per
#: bundle made the export's wall time on a loaded machine several times its
#: CPU (docs/performance.md).
DIGEST_RUN = 16
_NAME = re.compile(r"(0|[1-9][0-9]{0,17})\.([0-9a-f]{64})(?:\.([0-9a-f]{64}))?")


def gzip_member(data: bytes) -> bytes:
    """``data`` as one gzip member, level 6, mtime 0: the same bytes every time."""
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    return gz.compress(data) + gz.flush()


def _gzip(first: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """One gzip member over ``first`` and each chunk, compressed as they come."""
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container, mtime 0: byte-for-byte reproducible
    yield gz.compress(first)
    for c in chunks:
        out = gz.compress(c)
        if out:
            yield out
    yield gz.flush()


def lines(fmt: str, lo: int, leaves: list[bytes], data: list[bytes], cp_cell: str = "") -> bytes:
    """The lines of entries ``lo, lo+1, ...`` in export format ``fmt`` (no header).

    CSV formats have one row per record; registry entries have none.
    ``cp_cell`` is the checkpoint column of dsa-csv.
    """
    if fmt == "ndjson":
        return b"".join(ndjson_line(lo + i, leaves[i], d) for i, d in enumerate(data))
    rows = []
    for i, d in enumerate(data):
        entry = stored_entry(d)
        if entry.kind != "record":
            continue
        if fmt == "csv":
            rows.append(csv_row(lo + i, leaves[i], entry.logged_at, entry.body, entry.signature))
        else:
            rows.append(dsa_row(lo + i, leaves[i], entry.logged_at, entry.body, cp_cell))
    return csv_text(rows).encode()


def head(log: Log, fmt: str, start: int, end: int, cp: StoredCheckpoint) -> bytes:
    """The first line(s) of an export file of [start, end) in ``fmt``."""
    if fmt == "ndjson":
        return header_line(log.origin, cp.size, cp.root, cp.note, start, end).encode()
    if fmt == "csv":
        return csv_header().encode()
    return csv_text([DSA_CSV_COLUMNS]).encode()


def read_batch(log: Log, lo: int, hi: int) -> tuple[list[bytes], list[bytes]]:
    """The leaf hashes and entries [lo, hi)."""
    with log.read() as s:
        return storage.read_level_hashes(s, 0, lo, hi), storage.read_entries(s, lo, hi)


def stream(log: Log, start: int, end: int, fmt: str, cp: StoredCheckpoint) -> Iterator[bytes]:
    """The export file of [start, end): one gzip member over the header and
    every line, a bundle read at a time (the layout every export had first,
    and the bundle files still have)."""
    cp_cell = checkpoint_cell(log.origin, cp.size, cp.root)
    batches = (
        lines(fmt, lo, *read_batch(log, lo, min(end, lo + TILE_WIDTH)), cp_cell) for lo in range(start, end, TILE_WIDTH)
    )
    return _gzip(head(log, fmt, start, end, cp), batches)


def covering_checkpoint(log: Log, end: int) -> StoredCheckpoint:
    """The smallest signed checkpoint of at least ``end`` entries: the one an export of [.., end) names."""
    with log.read() as s:
        cp = query.covering_checkpoint(s, end)
    if cp is None:
        raise NotFound(f"the log has fewer than {end} entries")
    return cp


@dataclass(frozen=True)
class Source:
    """What the files of full bundle ``n`` are built from, as the database
    held it at one read: its leaf hashes and its entries in their stored
    form (ledger/entry_codec.py), not decoded."""

    n: int
    leaves: list[bytes]
    stored: list[bytes]

    def digest(self) -> bytes:
        """:func:`ledger.storage.stored_digest` of the bundle: two sources
        with one digest are the same bytes, so build the same files."""
        return storage.stored_digest(self.leaves, self.stored)

    def entries(self) -> list[bytes]:
        """The entries, decoded; raise StorageError for one that does not decode."""
        lo = self.n * TILE_WIDTH
        return [storage.decode_stored(lo + i, d) for i, d in enumerate(self.stored)]


def read_source(log: Log, n: int) -> Source:
    """Full bundle ``n``'s :class:`Source`, as the database holds it now."""
    lo = n * TILE_WIDTH
    with log.read() as s:
        return Source(n, *storage.read_stored_bundle(s, lo, lo + TILE_WIDTH))


def member(fmt: str, src: Source) -> bytes:
    """The gzip member of a full bundle's lines in ``fmt`` (ndjson or csv)."""
    return gzip_member(lines(fmt, src.n * TILE_WIDTH, src.leaves, src.entries()))


def bundle_file(log: Log, fmt: str, src: Source, cp: StoredCheckpoint) -> bytes:
    """The bytes of ``/api/v1/export/bundles/<n>.<fmt>.gz``: those :func:`stream` yields for the bundle."""
    lo, hi = src.n * TILE_WIDTH, (src.n + 1) * TILE_WIDTH
    cp_cell = checkpoint_cell(log.origin, cp.size, cp.root)
    return b"".join(_gzip(head(log, fmt, lo, hi, cp), [lines(fmt, lo, src.leaves, src.entries(), cp_cell)]))


class BundleCache:
    """The cache directory; see the module docstring. ``root`` None keeps nothing."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._serial = 0
        self._lock = threading.Lock()

    def members(self, log: Log, fmt: str, n0: int, n1: int) -> Iterator[bytes]:
        """The gzip members of full bundles [n0, n1)'s lines in ``fmt``, for what the database holds now."""
        return self._files(log, fmt, n0, n1, lambda src: member(fmt, src))

    def bundle_file(self, log: Log, fmt: str, n: int, cp: StoredCheckpoint) -> bytes:
        """``/api/v1/export/bundles/<n>.<fmt>.gz`` naming ``cp``, for what the database holds now."""
        return next(self._files(log, f"bundle-{fmt}", n, n + 1, lambda src: bundle_file(log, fmt, src, cp), cp))

    def _path(self, kind: str, n: int, digest: bytes, cp: StoredCheckpoint | None) -> Path:
        if self.root is None:
            raise AssertionError("bundle cache: no directory")
        name = f"{n}.{digest.hex()}"
        if cp is not None:
            name += "." + hashlib.sha256(cp.note).hexdigest()
        return self.root / LAYOUT / kind / name

    def _files(
        self, log: Log, kind: str, n0: int, n1: int, make: Callable[[Source], bytes], cp: StoredCheckpoint | None = None
    ) -> Iterator[bytes]:
        """The files ``kind`` of full bundles [n0, n1), for the bytes the database holds now.

        The stored bundles' digests are read :data:`DIGEST_RUN` bundles to a
        statement, as the files are served. A hit is the file named by the
        digest just read. A miss reads the bundle's :class:`Source`, builds
        the file from it by ``make`` and keeps it under that source's own
        digest, not the one looked up: a rewrite between the two reads then
        names the file for what it was built from. So a name always holds
        what is derived from the bytes it names (module docstring)."""
        if self.root is None:
            for n in range(n0, n1):
                yield make(read_source(log, n))
            return
        for r0 in range(n0, n1, DIGEST_RUN):
            r1 = min(n1, r0 + DIGEST_RUN)
            with log.read() as s:
                digests = storage.read_bundle_digests(s, r0, r1)
            for n, digest in zip(range(r0, r1), digests, strict=True):
                try:
                    data = self._path(kind, n, digest, cp).read_bytes()
                except OSError:  # absent, or a cache that cannot be read: build it
                    src = read_source(log, n)
                    data = make(src)
                    # Served, not kept, if it cannot be written: the cache is
                    # an optimisation, never a reason to fail a read.
                    with contextlib.suppress(OSError):
                        self._put(self._path(kind, n, src.digest(), cp), data)
                yield data

    def _put(self, path: Path, data: bytes) -> None:
        tmp_dir = self.root / TMP  # type: ignore[operator]
        tmp_dir.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._serial += 1
            tmp = tmp_dir / f"{os.getpid()}.{threading.get_ident()}.{self._serial}"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # Atomic: a reader sees no file or all of it. Another process
            # renaming the same bytes over it first changes nothing.
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def files(self) -> Iterator[tuple[str, int, bytes, bytes | None, Path]]:
        """Every kept file: (kind, bundle index, source digest, checkpoint note hash or None, path)."""
        if self.root is None or not (self.root / LAYOUT).is_dir():
            return
        for kind_dir in sorted((self.root / LAYOUT).iterdir()):
            if not kind_dir.is_dir():
                continue
            for p in sorted(kind_dir.iterdir()):
                m = _NAME.fullmatch(p.name)
                if m is None:
                    yield kind_dir.name, -1, b"", None, p
                    continue
                cp_hash = bytes.fromhex(m.group(3)) if m.group(3) else None
                yield kind_dir.name, int(m.group(1)), bytes.fromhex(m.group(2)), cp_hash, p


def check(log: Log, cache: BundleCache) -> list[str]:
    """Derive every kept file again; return a problem for each that differs, is
    named for a source the database no longer holds, or is not the cache's."""
    problems = []
    size = log.latest_size()
    for kind, n, digest, cp_hash, path in cache.files():
        if n < 0 or (n + 1) * TILE_WIDTH > size:
            problems.append(f"{path}: not a file of a full bundle of this log")
            continue
        src = read_source(log, n)
        if src.digest() != digest:
            # Never served (no request names it), but kept from bytes the
            # database no longer holds: a rewritten entry or leaf hash (the
            # audit's tree check says which), or another log's file.
            problems.append(f"{path}: named for stored bytes this log's bundle {n} does not hold")
            continue
        if kind in MEMBER_FORMATS and cp_hash is None:
            want = member(kind, src)
        elif kind.startswith("bundle-") and kind[7:] in FORMATS and cp_hash is not None:
            cp = covering_checkpoint(log, (n + 1) * TILE_WIDTH)
            if hashlib.sha256(cp.note).digest() != cp_hash:
                problems.append(f"{path}: named for a checkpoint that does not cover bundle {n}")
                continue
            want = bundle_file(log, kind[7:], src, cp)
        else:
            problems.append(f"{path}: not a kind of file the cache keeps")
            continue
        if path.read_bytes() != want:
            problems.append(f"{path}: differs from the bundle it is derived from")
    return problems
