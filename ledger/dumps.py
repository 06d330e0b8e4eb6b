"""Full dumps of the log, one folder per signed checkpoint, with SHA-256 sums.

``write_dump`` writes, for the checkpoint of a tree size, into
``<dumps dir>/<tree size>/``:

* ``records-<size>.csv`` and ``records-<size>.parquet``: every record, in the
  columns of ledger/records/export.py (those of ``mirror --csv`` and the
  feed downloads);
* ``entries-<size>.ndjson``: every entry, registry entries included, each
  line the entry with ``index`` and ``leaf_hash`` spliced in, so the tree
  (and so the checkpoint's root) can be recomputed from this file alone;
* ``checkpoint``: the signed checkpoint the files belong to;
* ``SHA256SUMS``: ``sha256sum -c`` form, over every file above.

The folder is built beside its final place and renamed into it, so a reader
never sees a partial dump, and a dump is never rewritten: the bytes of a
checkpoint's dump are fixed once published. ``list_dumps`` reads what is
there back for the downloads page and ``GET /api/v1/dumps``: the sums as
written (hashing every file on every request would cost a full read of each
dump; a reader checks them with ``sha256sum -c``), and each checkpoint
verified against the log's key.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger import storage
from ledger.errors import InvalidInput, NotFound
from ledger.log import Log
from ledger.records.export import csv_header, csv_row, csv_text, ndjson_line, stored_entry, write_parquet
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.verify import verify_checkpoint

#: Entries read per database round trip.
BATCH = 1024
SUMS = "SHA256SUMS"
CHECKPOINT = "checkpoint"
_SUM_LINE = re.compile(r"([0-9a-f]{64})  ([A-Za-z0-9._-]+)")


@dataclass(frozen=True)
class DumpFile:
    name: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Dump:
    """One checkpoint's dump: its tree size, signed checkpoint and files (``SHA256SUMS`` last)."""

    tree_size: int
    checkpoint: Checkpoint
    note: bytes
    files: tuple[DumpFile, ...]


def file_names(size: int) -> tuple[str, str, str]:
    return f"records-{size}.csv", f"records-{size}.parquet", f"entries-{size}.ndjson"


def _entries(log: Log, size: int) -> Iterator[tuple[int, bytes, bytes]]:
    for lo in range(0, size, BATCH):
        hi = min(size, lo + BATCH)
        with log.read() as s:
            data = storage.read_entries(s, lo, hi)
            leaves = storage.read_level_hashes(s, 0, lo, hi)
        for i, d in enumerate(data):
            yield lo + i, leaves[i], d


def _record_rows(log: Log, size: int) -> Iterator[list[str]]:
    for index, leaf, data in _entries(log, size):
        e = stored_entry(data)
        if e.kind == "record":
            yield csv_row(index, leaf, e.logged_at, e.body, e.signature)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_dump(log: Log, directory: Path, tree_size: int | None = None) -> tuple[Path, bool]:
    """Write the dump of the checkpoint of ``tree_size`` (default: the latest).

    Returns its folder and whether it was written now (False: it existed).
    Raises :class:`NotFound` if no checkpoint has that size.
    """
    with log.read() as s:
        cp = log.latest(s) if tree_size is None else storage.checkpoint_at(s, tree_size)
    if cp is None:
        raise NotFound(f"no signed checkpoint has tree size {tree_size}")
    final = directory / str(cp.size)
    if final.exists():
        return final, False
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{cp.size}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        csv_name, parquet_name, ndjson_name = file_names(cp.size)
        with (tmp / csv_name).open("w", encoding="utf-8", newline="") as f:
            f.write(csv_header())
            for row in _record_rows(log, cp.size):
                f.write(csv_text([row]))
        write_parquet(_record_rows(log, cp.size), str(tmp / parquet_name))
        with (tmp / ndjson_name).open("wb") as f:
            for index, leaf, data in _entries(log, cp.size):
                f.write(ndjson_line(index, leaf, data))
        (tmp / CHECKPOINT).write_bytes(cp.note)
        names = [csv_name, parquet_name, ndjson_name, CHECKPOINT]
        (tmp / SUMS).write_text("".join(f"{_sha256(tmp / n)}  {n}\n" for n in names))
        for p in tmp.iterdir():
            with p.open("rb") as f:
                os.fsync(f.fileno())
        # The rename is the commit point: before it, a crash leaves only a
        # hidden temporary folder that the next run removes and rebuilds.
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def read_dump(log: Log, folder: Path) -> Dump:
    """Read one dump folder back, checking its checkpoint's signature and that every summed file is there."""
    try:
        size = int(folder.name)
        note = (folder / CHECKPOINT).read_bytes()
        sums = (folder / SUMS).read_text()
    except (ValueError, OSError) as e:
        raise InvalidInput(f"{folder} is not a dump: {e}") from None
    cp = verify_checkpoint(note, log.verifier)
    if cp.size != size:
        raise InvalidInput(f"{folder}: its checkpoint is of tree size {cp.size}")
    files = []
    for line in sums.splitlines():
        m = _SUM_LINE.fullmatch(line)
        if m is None or not (folder / m.group(2)).is_file():
            raise InvalidInput(f"{folder}: {SUMS} does not list the dump's files")
        files.append(DumpFile(m.group(2), (folder / m.group(2)).stat().st_size, m.group(1)))
    files.append(DumpFile(SUMS, (folder / SUMS).stat().st_size, hashlib.sha256(sums.encode()).hexdigest()))
    return Dump(size, cp, note, tuple(files))


def list_dumps(log: Log, directory: Path) -> list[Dump]:
    """Every complete dump in ``directory``, newest (largest tree) first."""
    if not directory.is_dir():
        return []
    folders = [p for p in directory.iterdir() if p.is_dir() and re.fullmatch(r"0|[1-9][0-9]*", p.name)]
    return [read_dump(log, p) for p in sorted(folders, key=lambda p: int(p.name), reverse=True)]
