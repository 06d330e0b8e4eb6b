"""Entries are stored compressed (ledger/entry_codec.py) and served byte for
byte as appended, on both databases; a damaged stored row is found by the
audit; migration 0010_storage converts the rows an earlier release wrote."""

from __future__ import annotations

import random
import zlib

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from keys.note import Signer
from ledger import entry_codec, query, storage
from ledger.audit import audit
from ledger.db import make_engine
from ledger.entry_dictionary import DICTIONARY
from ledger.errors import StorageError
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from ledger.records.entries import canonical, entry_bytes
from ledger.tlog.merkle import record_hash
from ledger.tlog.tile import ENTRIES_LEVEL, MAX_ENTRY_SIZE, Tile, parse_bundle
from tests.recordkit import amendment, appeal, coverage, decision
from tests.tamper import store_entries_uncompressed, tamper

SIGNATURE = {"alg": "ed25519", "key_id": "0123456789abcdef", "value": "A" * 86 + "=="}


def varied_entries() -> list[bytes]:
    """Record entries of every type, and entries compression cannot shrink or
    shrinks to almost nothing, up to the largest the log takes. Appended
    without their derived rows, so the audits here check the tree alone."""
    records = [decision("d-1"), decision("d-2", name="decision-ordinary-user"), appeal("a-1", "d-1")]
    records += [amendment("m-1", "d-1"), coverage("c-1")]
    logged = [entry_bytes(1_765_000_000_123 + i, "record", canonical(r), SIGNATURE) for i, r in enumerate(records)]
    noise = random.Random(14)  # incompressible, and the same bytes every run
    return [*logged, b"x", b"", noise.randbytes(3000), bytes(MAX_ENTRY_SIZE), noise.randbytes(MAX_ENTRY_SIZE)]


def stored_rows(engine: Engine) -> dict[int, bytes]:
    with engine.connect() as conn:
        return {i: bytes(d) for i, d in conn.execute(text("SELECT idx, data FROM entries"))}


def test_every_reader_gets_the_entries_byte_exact(log: Log) -> None:
    appended = varied_entries()
    first = log.sequencer.append(appended).first
    end = first + len(appended)
    with log.read() as s:
        assert storage.read_entries(s, first, end) == appended
        by_query = query.entries_at(s, list(range(first, end)))
    assert [data for _, _, data in by_query] == appended
    assert [leaf for _, leaf, _ in by_query] == [record_hash(d) for d in appended]
    assert [log.entry(i)[0] for i in range(first, end)] == appended
    assert parse_bundle(log.tile(Tile(ENTRIES_LEVEL, 0, end)), end)[first:] == appended
    # The record entries are stored compressed, to well under half; the
    # rest as they are, one format byte more.
    stored = stored_rows(log.engine)
    for i, data in enumerate(appended, first):
        if i < first + 5:
            assert stored[i][0] == entry_codec.DEFLATE_1
            assert len(stored[i]) < len(data) / 2
        elif i in (first + 7, first + 9):  # random bytes
            assert stored[i] == bytes((entry_codec.RAW,)) + data
    assert len(stored[first + 9]) == MAX_ENTRY_SIZE + 1
    assert len(stored[first + 8]) < 200  # sixty-four KiB of zeros
    with log.read() as s:
        assert audit(s, log.verifier, derived_rows=False).ok


@pytest.mark.parametrize("damage", ["flip", "truncate", "format"])
def test_the_audit_finds_a_damaged_compressed_row(log: Log, damage: str) -> None:
    appended = varied_entries()[:5]
    first = log.sequencer.append(appended).first
    victim = first + 2
    with log.read() as s:
        assert audit(s, log.verifier, derived_rows=False).ok
    row = stored_rows(log.engine)[victim]
    assert row[0] == entry_codec.DEFLATE_1
    if damage == "flip":
        bad = row[:-40] + bytes((row[-40] ^ 0x10,)) + row[-39:]
    elif damage == "truncate":
        bad = row[: len(row) // 2]
    else:
        bad = bytes((0x02,)) + row[1:]
    tamper(log.engine, "UPDATE entries SET data = :data WHERE idx = :idx", [{"idx": victim, "data": bad}])
    with log.read() as s:
        report = audit(s, log.verifier, derived_rows=False)
        assert not report.ok
        assert f"level 0 hash {victim} " in report.problems[0], report.problems
        try:
            served, why = storage.read_entries(s, victim, victim + 1)[0], ""
        except StorageError as e:
            served, why = b"", str(e)
    if why:
        # Served nowhere: every reader decodes, and refuses.
        assert damage != "flip" or "does not inflate" in why
        assert why.startswith(f"entry {victim}: ")
        assert report.problems[0] == (
            f"level 0 hash {victim} cannot be recomputed: its entry does not decode ({why[len(f'entry {victim}: ') :]})"
        )
    else:
        # A flipped bit that still inflates gives other bytes, which the
        # recomputed leaf hash rejects (raw deflate has no checksum: the
        # leaf hash is the checksum).
        assert damage == "flip"
        assert served != appended[2]
        assert report.problems[0] == f"level 0 hash {victim} differs from the recomputed hash"


def test_the_codec_round_trips_and_refuses_what_it_did_not_write() -> None:
    for data in varied_entries():
        assert entry_codec.decode_entry(entry_codec.encode_entry(data)) == data
    packed = entry_codec.encode_entry(varied_entries()[0])
    with pytest.raises(StorageError, match="no format byte"):
        entry_codec.decode_entry(b"")
    with pytest.raises(StorageError, match="unknown format byte 0x7b"):
        entry_codec.decode_entry(b'{"logged_at":')  # an entry stored before migration 0010
    with pytest.raises(StorageError, match="truncated or followed"):
        entry_codec.decode_entry(packed + b"\x00")
    with pytest.raises(StorageError, match="truncated or followed"):
        entry_codec.decode_entry(packed[:-3])
    # A stored row cannot inflate beyond the largest entry.
    c = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY)
    bomb = bytes((entry_codec.DEFLATE_1,)) + c.compress(bytes(MAX_ENTRY_SIZE + 1)) + c.flush()
    with pytest.raises(StorageError, match="inflates beyond 65535 bytes"):
        entry_codec.decode_entry(bomb)


def test_migration_compresses_the_entries_an_earlier_release_stored(db_url: str, signer: Signer) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0009_person_qid")
        log = Log(engine, signer)
        log.sequencer.init()
        appended = varied_entries()
        first = log.sequencer.append(appended).first
        store_entries_uncompressed(engine)  # as release 0009 stored them
        assert stored_rows(engine)[first] == appended[0]
        upgrade(engine, "0010_storage")
        assert current_revision(engine) == "0010_storage"
        stored = stored_rows(engine)
        assert stored[first][0] == entry_codec.DEFLATE_1
        with log.read() as s:
            assert storage.read_entries(s, first, first + len(appended)) == appended
            assert audit(s, log.verifier, derived_rows=False).ok
        # The append-only triggers are back.
        with pytest.raises(DBAPIError, match="ledger: "), engine.begin() as conn:
            conn.execute(text("UPDATE entries SET data = data WHERE idx = 0"))
    finally:
        engine.dispose()


def test_a_new_sqlite_database_has_8_kib_pages(engine: Engine) -> None:
    """Half the space a 4 KiB page loses to the compressed entry that did not fit (ledger/db.py)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page size")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == 8192
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
