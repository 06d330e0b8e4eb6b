"""Files derived from full entry bundles, kept so bulk reads cost a file read.

A full entry bundle (256 entries, c2sp.org/tlog-tiles) never changes, and
nor does anything computed from it alone: the gzip member of its export lines
(``/api/v1/export?...&layout=bundles``), and the whole file
``/api/v1/export/bundles/<N>.<fmt>.gz`` (which also names the smallest
checkpoint covering the bundle, fixed once signed). Building them costs a
database read, decompressing 256 stored entries (ledger/entry_codec.py),
formatting and gzip at level 6: 110 to 180 µs of CPU an entry on a busy
machine (docs/performance.md); reading them back, a file read.

``/tile/entries/<N>`` is not served from here (api/tiles.py): verifiers
read the bundles from the database, so an entry rewritten there after its
bundle was kept is what they see and reject, not hidden behind a file.

Each file is named by what it is derived from, so a file can only be found
by a request it answers: ``<dir>/<kind>/<N>.<bundle hash>[.<checkpoint>]``,
where the bundle hash is the stored Merkle hash of the bundle's 256 leaves
(the level-1 tile hash, which the audit ties to the entries and the signed
roots) and the checkpoint is the SHA-256 of the covering checkpoint's signed
note. A database replaced under the same directory (another log, a restored
backup) names other files, so it never reads this log's.

The files are derived data (ledger/derived.py's rule): :func:`check` derives
every one again from the log and names each that differs, and
``flask ledger audit`` runs it. Writes are crash-safe without a lock:
written to ``<dir>/.tmp/``, fsynced, renamed into place; two processes that
build the same file write the same bytes. A cache that cannot be written
(a read-only disk, a full one) serves what it builds without keeping it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator
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
_NAME = re.compile(r"(0|[1-9][0-9]{0,17})\.([0-9a-f]{64})(?:\.([0-9a-f]{64}))?")


def gzip_member(data: bytes) -> bytes:
    """``data`` as one gzip member, level 6, mtime 0: the same bytes every time."""
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    return gz.compress(data) + gz.flush()


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
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container, mtime 0: byte-for-byte reproducible
    yield gz.compress(head(log, fmt, start, end, cp))
    cp_cell = checkpoint_cell(log.origin, cp.size, cp.root)
    for lo in range(start, end, TILE_WIDTH):
        hi = min(end, lo + TILE_WIDTH)
        leaves, data = read_batch(log, lo, hi)
        chunk = gz.compress(lines(fmt, lo, leaves, data, cp_cell))
        if chunk:
            yield chunk
    yield gz.flush()


def covering_checkpoint(log: Log, end: int) -> StoredCheckpoint:
    """The smallest signed checkpoint of at least ``end`` entries: the one an export of [.., end) names."""
    with log.read() as s:
        cp = query.covering_checkpoint(s, end)
    if cp is None:
        raise NotFound(f"the log has fewer than {end} entries")
    return cp


class BundleCache:
    """The cache directory; see the module docstring. ``root`` None keeps nothing."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._serial = 0
        self._lock = threading.Lock()

    def _path(self, kind: str, n: int, bundle_hash: bytes, cp: StoredCheckpoint | None) -> Path:
        if self.root is None:
            raise AssertionError("bundle cache: no directory")
        name = f"{n}.{bundle_hash.hex()}"
        if cp is not None:
            name += "." + hashlib.sha256(cp.note).hexdigest()
        return self.root / kind / name

    def get_or_make(
        self, kind: str, n: int, bundle_hash: bytes, make: Callable[[], bytes], cp: StoredCheckpoint | None = None
    ) -> bytes:
        """The file ``kind`` of bundle ``n`` (hash ``bundle_hash``), built by ``make`` and kept if absent."""
        if self.root is None:
            return make()
        path = self._path(kind, n, bundle_hash, cp)
        try:
            return path.read_bytes()
        except OSError:
            pass  # absent, or a cache that cannot be read: build it
        data = make()
        # Served, not kept, if it cannot be written: the cache is an
        # optimisation, never a reason to fail a read.
        with contextlib.suppress(OSError):
            self._put(path, data)
        return data

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
        """Every kept file: (kind, bundle index, bundle hash, checkpoint note hash or None, path)."""
        if self.root is None or not self.root.is_dir():
            return
        for kind_dir in sorted(self.root.iterdir()):
            if kind_dir.name == TMP or not kind_dir.is_dir():
                continue
            for p in sorted(kind_dir.iterdir()):
                m = _NAME.fullmatch(p.name)
                if m is None:
                    yield kind_dir.name, -1, b"", None, p
                    continue
                cp_hash = bytes.fromhex(m.group(3)) if m.group(3) else None
                yield kind_dir.name, int(m.group(1)), bytes.fromhex(m.group(2)), cp_hash, p


def bundle_hashes(log: Log, n0: int, n1: int) -> list[bytes]:
    """The stored Merkle hashes of full bundles [n0, n1) (tile level 1's hashes)."""
    with log.read() as s:
        return storage.read_level_hashes(s, 1, n0, n1)


def member(log: Log, fmt: str, n: int) -> bytes:
    """The gzip member of full bundle ``n``'s lines in ``fmt`` (ndjson or csv), from the database."""
    lo = n * TILE_WIDTH
    leaves, data = read_batch(log, lo, lo + TILE_WIDTH)
    return gzip_member(lines(fmt, lo, leaves, data))


def bundle_file(log: Log, fmt: str, n: int, cp: StoredCheckpoint) -> bytes:
    """The bytes of ``/api/v1/export/bundles/<n>.<fmt>.gz``, from the database."""
    return b"".join(stream(log, n * TILE_WIDTH, (n + 1) * TILE_WIDTH, fmt, cp))


def check(log: Log, cache: BundleCache) -> list[str]:
    """Derive every kept file again; return a problem for each that differs or is not the cache's."""
    problems = []
    size = log.latest_size()
    for kind, n, bundle_hash, cp_hash, path in cache.files():
        if n < 0 or (n + 1) * TILE_WIDTH > size:
            problems.append(f"{path}: not a file of a full bundle of this log")
            continue
        if bundle_hashes(log, n, n + 1)[0] != bundle_hash:
            problems.append(f"{path}: named for a bundle hash this log's bundle {n} does not have")
            continue
        if kind in MEMBER_FORMATS and cp_hash is None:
            want = member(log, kind, n)
        elif kind.startswith("bundle-") and kind[7:] in FORMATS and cp_hash is not None:
            cp = covering_checkpoint(log, (n + 1) * TILE_WIDTH)
            if hashlib.sha256(cp.note).digest() != cp_hash:
                problems.append(f"{path}: named for a checkpoint that does not cover bundle {n}")
                continue
            want = bundle_file(log, kind[7:], n, cp)
        else:
            problems.append(f"{path}: not a kind of file the cache keeps")
            continue
        if path.read_bytes() != want:
            problems.append(f"{path}: differs from the bundle it is derived from")
    return problems
