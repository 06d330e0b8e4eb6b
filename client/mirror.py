"""``mirror``: a complete, verified copy of the log in one SQLite file.

The file is plain SQLite (the stdlib ``sqlite3`` module writes it), for a
researcher to query offline with any SQLite tool::

    entries(idx INTEGER PRIMARY KEY, leaf_hash BLOB, data BLOB)
        every log entry: its bytes and RFC 9162 leaf hash SHA-256(0x00 || data)
    checkpoints(size INTEGER PRIMARY KEY, note TEXT)
        the signed checkpoints the mirror was completed at; all entries
        below the largest size are verified against its root
    records(idx INTEGER PRIMARY KEY, logged_at TEXT, platform TEXT, record_id TEXT,
            type TEXT, record_json TEXT, signature_json TEXT)
        the record entries, parsed (record_json is the record's RFC 8785 JSON,
        signature_json the platform's signature object); index on (platform, record_id)
    registry(idx INTEGER PRIMARY KEY, logged_at TEXT, event TEXT, platform TEXT,
             event_json TEXT, signature_json TEXT)
        the registry entries: platform_added, key_added, key_revoked
    frontier(level INTEGER PRIMARY KEY, hashes BLOB)
        bookkeeping: the right edge of the tree of the mirrored entries
        (ledger.tlog.frontier; level L holds the level-8L hashes not yet in a full
        tile, concatenated), so a later run verifies without rereading entries

The file's ``PRAGMA application_id`` is 0x6D646C6D ("mdlm"); ``mirror``
refuses to write into any other SQLite database.

Verification, in order: the checkpoint is signed by the log's key; it
extends the mirror's latest checkpoint (or the log forked: exit 4); the
entries already mirrored are the first entries of its tree (their root,
from ``frontier``, equals the tree hash computed from verified tiles); each
new entry bundle matches the verified tiles before any of it is written.

Exports (``--ndjson``, ``--csv``, ``--parquet``) are written from the
mirror once it verified, records only, each beside a ``FILE.checkpoint``
holding the signed checkpoint they belong to. NDJSON lines are the RFC 8785
JSON of ``{"index", "leaf_hash", "logged_at", "record", "signature"}``.
CSV and Parquet (needs pyarrow; ``index`` an int64, every other column a
string, as in the CSV) have the rows and columns of the server's CSV export,
defined once in :mod:`ledger.records.export` (``CSV_COLUMNS``, ``csv_row``), which
documents them: one flat row per record, nested fields by dotted path, and
text that a spreadsheet would run as a formula (beginning with ``= + - @``,
tab or carriage return; or with ``'``, so the prefix can be removed exactly)
prefixed with ``'``; numbers stay numbers. The CSV is byte for byte the
server's export of the same records. NDJSON stays the faithful form.
``--dsa-csv`` writes the records in the column layout of the DSA
Transparency Database's daily dumps, then this ledger's columns
(:mod:`ledger.records.dsa`): byte for byte the server's ``format=dsa-csv`` export
of the same records at the same checkpoint.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click

from client.audit import cli_errors, evidence_option, url_option, vkey_option, warn
from client.http import ClientError, Http
from client.tiles import TileClient, TileHashReader, check_extends, open_cp, verified_bundles
from client.verifying import VerificationFailed
from keys.note import Verifier
from ledger.errors import InvalidInput
from ledger.records import export
from ledger.records.dsa import DSA_CSV_COLUMNS, checkpoint_cell, dsa_row
from ledger.records.entries import canonical, parse_json
from ledger.records.entry_check import parse_canonical_entry
from ledger.records.export import CSV_COLUMNS, csv_row, csv_text
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.frontier import Frontier
from ledger.tlog.merkle import HASH_SIZE, tree_hash

#: ``PRAGMA application_id`` of a mirror file ("mdlm"), so that no other database is mistaken for one.
APPLICATION_ID = 0x6D646C6D
SCHEMA = """
CREATE TABLE entries(idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, data BLOB NOT NULL);
CREATE TABLE checkpoints(size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE records(idx INTEGER PRIMARY KEY, logged_at TEXT, platform TEXT, record_id TEXT,
    type TEXT, record_json TEXT, signature_json TEXT);
CREATE INDEX records_by_id ON records(platform, record_id);
CREATE TABLE registry(idx INTEGER PRIMARY KEY, logged_at TEXT, event TEXT, platform TEXT,
    event_json TEXT, signature_json TEXT);
CREATE TABLE frontier(level INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
"""


class Mirror:
    """The mirror file: its entries, checkpoints, and the frontier of its tree."""

    def __init__(self, path: Path, verifier: Verifier) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(path, isolation_level=None)
            self._create()
            # Write-ahead log while filling, without an fsync per commit: a
            # commit is atomic and survives the process's death (SIGKILL, a
            # crash) as before, since it is in the -wal file once COMMIT
            # returns; only a power loss or an OS crash can take back the
            # bundles since the last checkpoint of the WAL (every ~4 MB),
            # never part of one (WAL frames are checksummed, a torn tail is
            # dropped on recovery). The rollback journal's three fsyncs per
            # bundle were a third of a mirror's wall time. close() syncs
            # and returns the file to the rollback journal.
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            count, top = self.conn.execute("SELECT COUNT(*), COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()
            rows = self.conn.execute("SELECT level, hashes FROM frontier ORDER BY level").fetchall()
            last = self.conn.execute("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        except sqlite3.Error as e:
            raise ClientError(f"{path} is not a mirror database: {e}") from None
        partials = [[h[i : i + HASH_SIZE] for i in range(0, len(h), HASH_SIZE)] for _, h in rows]
        try:
            if count != top or [lv for lv, _ in rows] != list(range(len(rows))):
                raise AssertionError
            self.frontier = Frontier.from_partials(count, partials)
        except AssertionError:
            raise ClientError(f"{path} is damaged: its frontier does not describe its {count} entries") from None
        self.last: tuple[Checkpoint, bytes] | None = None
        if last is not None:
            try:
                self.last = (open_cp(last[1].encode(), verifier, "its latest checkpoint"), last[1].encode())
            except VerificationFailed as e:
                raise ClientError(f"{path} is a mirror of another log, or was altered: {e}") from None
            if last[0] != self.last[0].size or (count == last[0] and self.frontier.root() != self.last[0].root):
                raise ClientError(f"{path} is damaged: its entries do not hash to its latest checkpoint")

    def _create(self) -> None:
        """Create the tables in a new file; refuse a database that is not a mirror."""
        (app,) = self.conn.execute("PRAGMA application_id").fetchone()
        (tables,) = self.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        if app != APPLICATION_ID and (app or tables):
            raise ClientError(f"{self.path} is another SQLite database, not a mirror: refusing to touch it")
        if app != APPLICATION_ID:
            self.conn.executescript(f"BEGIN; {SCHEMA}; PRAGMA application_id = {APPLICATION_ID}; COMMIT;")

    @property
    def size(self) -> int:
        return self.frontier.size

    def close(self) -> None:
        """Checkpoint the WAL into the file, synced, and leave it a plain
        rollback-journal database with no -wal beside it, as any SQLite tool
        reads it (and read-only, which a WAL file is not without its -shm)."""
        try:
            self.conn.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as e:  # another connection has it open: it stays in WAL mode, still whole
            warn(f"{self.path} stays in WAL mode: {e}")
        self.conn.close()

    def append(self, batch: list[tuple[int, bytes, bytes]]) -> int:
        """Write a verified bundle's entries beyond ``size``, with the frontier, in one transaction.

        Commit point: the bundle's entries and the frontier describing them
        are committed together; a crash before leaves none of them, and the
        next run resumes after the last committed bundle. Committed means
        kept if the process dies (in the WAL, see ``__init__``); a power
        loss may take back whole bundles since the WAL's last checkpoint,
        and the next run fetches them again.
        """
        new = [(i, data, leaf) for i, data, leaf in batch if i >= self.size]
        parsed: dict[str, list[tuple[Any, ...]]] = {"record": [], "registry": []}
        for i, data, leaf in new:
            if i != self.size:
                raise AssertionError(f"mirror: entry {i} out of order (size {self.size})")
            self._parsed(i, data, parsed)
            self.frontier.append(leaf)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany("INSERT INTO entries VALUES (?, ?, ?)", [(i, leaf, data) for i, data, leaf in new])
            self.conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", parsed["record"])
            self.conn.executemany("INSERT INTO registry VALUES (?, ?, ?, ?, ?, ?)", parsed["registry"])
            self.conn.execute("DELETE FROM frontier")
            self.conn.executemany(
                "INSERT INTO frontier VALUES (?, ?)", [(lv, b"".join(p)) for lv, p in enumerate(self.frontier.partials)]
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return len(new)

    def _parsed(self, i: int, data: bytes, out: dict[str, list[tuple[Any, ...]]]) -> None:
        """Add entry ``i``'s row for the records or registry table to ``out``."""
        try:
            checked = parse_canonical_entry(data)
        except InvalidInput as exc:
            warn(f"entry {i} is in the log but is not a ledger entry ({exc}); kept in entries only")
            return
        e, body, sig = checked.entry, checked.body.decode(), checked.signature.decode()
        b = e.body
        if e.kind == "record":
            out["record"].append((i, e.logged_at, b.get("platform"), b.get("record_id"), b.get("type"), body, sig))
        else:
            out["registry"].append((i, e.logged_at, b.get("event"), b.get("platform"), body, sig))

    def add_checkpoint(self, cp: Checkpoint, note: bytes) -> None:
        """Record that the mirror is complete at ``cp`` (commit point: the run's result)."""
        if self.size != cp.size or self.frontier.root() != cp.root:
            raise AssertionError("mirror: the verified entries do not hash to the checkpoint")
        self.conn.execute("INSERT OR IGNORE INTO checkpoints VALUES (?, ?)", (cp.size, note.decode()))
        self.last = (cp, note)

    def records(self) -> Iterator[tuple[int, bytes, str, str, str]]:
        """(index, leaf hash, logged_at, record JSON, signature JSON) of each record, in log order."""
        size = self.last[0].size if self.last else 0
        yield from self.conn.execute(
            "SELECT r.idx, e.leaf_hash, r.logged_at, r.record_json, r.signature_json FROM records r "
            "JOIN entries e ON e.idx = r.idx WHERE r.idx < ? ORDER BY r.idx",
            (size,),
        )


def start(tiles: TileClient, mirror: Mirror, verifier: Verifier) -> tuple[TileHashReader, bytes]:
    """Fetch and verify the log's checkpoint, and check the mirror is a prefix of its tree."""
    note = tiles.checkpoint()
    cp = open_cp(note, verifier, "the log's checkpoint")
    if mirror.last and cp.size < mirror.last[0].size:
        raise VerificationFailed(
            f"the log's checkpoint (size {cp.size}) is older than the mirror's (size {mirror.last[0].size}): "
            "it rolled back, or serves a stale view"
        )
    if cp.size < mirror.size:
        raise VerificationFailed(f"the log's checkpoint has {cp.size} entries, fewer than the {mirror.size} mirrored")
    reader = TileHashReader(tiles, cp)
    if mirror.last:
        check_extends(reader, mirror.last[0], mirror.last[1], note)
    if mirror.size and tree_hash(mirror.size, reader) != mirror.frontier.root():
        raise VerificationFailed(
            f"the first {mirror.size} entries of the log's tree of size {cp.size} are not those mirrored "
            f"(by an interrupted run) in {mirror.path}: the log changed them; start a new mirror"
        )
    return reader, note


def fill(reader: TileHashReader, mirror: Mirror, progress: Callable[[int], None]) -> int:
    """Mirror the entries of the reader's tree beyond the mirror's, a verified bundle at a time."""
    added = 0
    for batch in verified_bundles(reader, mirror.size, reader.cp.size):
        n = mirror.append(batch)
        added += n
        progress(n)
    return added


# Exports -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextmanager
def replacing(path: Path, note: bytes) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it once the block
    completes, with the signed checkpoint written beside it as ``FILE.checkpoint``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
        path.with_name(path.name + ".checkpoint").write_bytes(note)
    finally:
        tmp.unlink(missing_ok=True)


def write_ndjson(mirror: Mirror, path: Path, note: bytes) -> int:
    """One RFC 8785 line per record: {"index", "leaf_hash", "logged_at", "record", "signature"}."""
    n = 0
    with replacing(path, note) as tmp, tmp.open("w", encoding="utf-8") as f:
        for idx, leaf, logged_at, rec, sig in mirror.records():
            # Keys in RFC 8785 order; record and signature are stored canonical.
            head = canonical({"index": idx, "leaf_hash": _b64(leaf), "logged_at": logged_at}).decode()[:-1]
            f.write(f'{head},"record":{rec},"signature":{sig}}}\n')
            n += 1
    return n


def _rows(mirror: Mirror) -> Iterator[list[str]]:
    for idx, leaf, logged_at, rec, sig in mirror.records():
        yield csv_row(idx, leaf, logged_at, parse_json(rec.encode()), parse_json(sig.encode()))


def write_csv(mirror: Mirror, path: Path, note: bytes) -> int:
    n = 0
    with replacing(path, note) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(csv_text([CSV_COLUMNS]))
        for row in _rows(mirror):
            f.write(csv_text([row]))
            n += 1
    return n


def write_dsa_csv(mirror: Mirror, path: Path, note: bytes) -> int:
    """The records in the DSA dump's columns and this ledger's (:mod:`ledger.records.dsa`)."""
    if mirror.last is None:
        raise AssertionError("mirror: export before any checkpoint was verified")
    cp = mirror.last[0]
    cell = checkpoint_cell(cp.origin, cp.size, cp.root)
    n = 0
    with replacing(path, note) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(csv_text([DSA_CSV_COLUMNS]))
        for idx, leaf, logged_at, rec, _ in mirror.records():
            f.write(csv_text([dsa_row(idx, leaf, logged_at, parse_json(rec.encode()), cell)]))
            n += 1
    return n


def write_parquet(mirror: Mirror, path: Path, note: bytes, batch: int = 10_000) -> int:
    """The CSV's columns and values, ``index`` as int64, the rest strings (:mod:`ledger.records.export`)."""
    with replacing(path, note) as tmp:
        return export.write_parquet(_rows(mirror), str(tmp), batch)


# The command ------------------------------------------------------------------------------


def _progress(total: int) -> Any:
    return click.progressbar(
        length=total, label="mirroring", file=sys.stderr, show_pos=True, show_eta=True, item_show_func=lambda s: s
    )


@click.command(name="mirror")
@url_option
@vkey_option
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The mirror's SQLite file.")
@click.option("--ndjson", type=click.Path(dir_okay=False, path_type=Path), help="Export the records as NDJSON here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Export them as CSV here.")
@click.option("--parquet", type=click.Path(dir_okay=False, path_type=Path), help="Export as Parquet (needs pyarrow).")
@click.option(
    "--dsa-csv",
    "dsa_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Export them as CSV in the DSA Transparency Database dump's columns here.",
)
@evidence_option
def mirror_cmd(
    url: str,
    vkey: Verifier,
    db: Path,
    ndjson: Path | None,
    csv_path: Path | None,
    parquet: Path | None,
    dsa_csv: Path | None,
    evidence: Path,
) -> None:
    """Copy the log into a local SQLite file, verifying every entry first.

    Incremental and resumable: each run fetches only what is new, and a
    killed run resumes after the last bundle it wrote. The module
    documentation of client/mirror.py describes the tables and exports.
    """
    with cli_errors(evidence):
        if parquet is not None:
            try:
                export.require_pyarrow()
            except ImportError as e:
                raise ClientError(f"--parquet: {e}; or use --csv or --ndjson") from None
        with Http(url, on_retry=warn) as http, closing(Mirror(db, vkey)) as m:
            reader, note = start(TileClient(http), m, vkey)
            cp = reader.cp
            with _progress(cp.size - m.size) as bar:
                began, done = time.monotonic(), 0

                def progress(n: int) -> None:
                    nonlocal done
                    done += n
                    bar.update(n, f"{done / max(time.monotonic() - began, 1e-3):.0f} entries/s")

                added = fill(reader, m, progress)
            m.add_checkpoint(cp, note)
            click.echo(f"mirrored {added} new entries: {db} holds all {m.size} entries, verified")
            click.echo(f"checkpoint: {cp.origin}, tree size {cp.size}, root {_b64(cp.root)}")
            exports = (
                (ndjson, write_ndjson),
                (csv_path, write_csv),
                (parquet, write_parquet),
                (dsa_csv, write_dsa_csv),
            )
            for path, write in exports:
                if path is not None:
                    n = write(m, path, note)
                    click.echo(f"wrote {n} records to {path} (checkpoint in {path}.checkpoint)")
