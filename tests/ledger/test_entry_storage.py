"""Entries are stored compressed (ledger/entry_codec.py) and served byte for
byte as appended, on both databases; a damaged stored row is found by the
audit; migration 0010_storage converts the rows an earlier release wrote."""

from __future__ import annotations

import random
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from keys.note import Signer
from keys.records import PlatformKey
from ledger import entry_codec, query, storage
from ledger.audit import audit
from ledger.db import make_engine
from ledger.entry_dictionary import DICTIONARY
from ledger.errors import StorageError
from ledger.log import Log
from ledger.migrate import current_revision, upgrade
from ledger.records.entries import ENTRY_HEAD_LENGTH, canonical, entry_bytes, entry_head
from ledger.submit import verify_items
from ledger.tlog.merkle import record_hash
from ledger.tlog.tile import ENTRIES_LEVEL, MAX_ENTRY_SIZE, Tile, parse_bundle
from tests.checklog import check_log
from tests.recordkit import amendment, appeal, coverage, decision, sign
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


def _split(data: bytes) -> tuple[bytes, bytes]:
    return data[:ENTRY_HEAD_LENGTH], data[ENTRY_HEAD_LENGTH:]


def test_an_entry_encoded_in_two_parts_decodes_to_its_bytes() -> None:
    """The committer's stored form (head once per group, tail in the request
    thread) is format 1 that the one decoder reads back byte for byte; the
    tail's references into the dictionary keep their distances, and a tail
    that repeats the head's text cannot refer to it."""
    logged = varied_entries()[:5]
    for data in logged:
        head, tail = _split(data)
        for other_head in (head, entry_head(0), entry_head(253_402_300_799_999)):
            packed = entry_codec.encode_tail(tail, ENTRY_HEAD_LENGTH)
            stored = entry_codec.join_encoded(
                other_head, entry_codec.encode_head(other_head), tail, packed, ENTRY_HEAD_LENGTH
            )
            assert stored[0] == entry_codec.DEFLATE_1
            assert entry_codec.decode_entry(stored) == other_head + tail
            # Hardly larger than the entry compressed whole.
            assert len(stored) <= len(entry_codec.encode_entry(other_head + tail)) + 24
    # A tail made of the head's own text, and of text the dictionary holds.
    head = entry_head(1_765_000_000_123)
    tail = head[1:] * 3 + b',"record":{"platform":"x"}}'
    stored = entry_codec.join_encoded(
        head, entry_codec.encode_head(head), tail, entry_codec.encode_tail(tail, ENTRY_HEAD_LENGTH), ENTRY_HEAD_LENGTH
    )
    assert entry_codec.decode_entry(stored) == head + tail


def test_a_two_part_encoding_falls_back_where_it_cannot_hold() -> None:
    head = entry_head(1_765_000_000_123)
    # A NUL byte could match the head's stand-in: the tail is not encoded alone.
    assert entry_codec.encode_tail(b"a\x00b", ENTRY_HEAD_LENGTH) is None
    stored = entry_codec.join_encoded(head, entry_codec.encode_head(head), b"a\x00b", None, ENTRY_HEAD_LENGTH)
    assert stored == entry_codec.encode_entry(head + b"a\x00b")
    # A head of another length than the tail was encoded for.
    tail = varied_entries()[0][ENTRY_HEAD_LENGTH:]
    packed = entry_codec.encode_tail(tail, ENTRY_HEAD_LENGTH)
    short = head[:-1]
    stored = entry_codec.join_encoded(short, entry_codec.encode_head(short), tail, packed, ENTRY_HEAD_LENGTH)
    assert entry_codec.decode_entry(stored) == short + tail
    # Never larger than the entry stored raw, which is chosen when the parts are.
    noise = random.Random(15).randbytes(3000).replace(b"\x00", b"\x01")
    stored = entry_codec.join_encoded(
        head, entry_codec.encode_head(head), noise, entry_codec.encode_tail(noise, ENTRY_HEAD_LENGTH), ENTRY_HEAD_LENGTH
    )
    assert entry_codec.decode_entry(stored) == head + noise
    assert len(stored) <= 1 + len(head) + len(noise)
    stored = entry_codec.join_encoded(head, head + head, noise, noise, ENTRY_HEAD_LENGTH)
    assert stored == bytes((entry_codec.RAW,)) + head + noise


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 253_402_300_799_999), st.binary(max_size=3000), st.sampled_from([b"", DICTIONARY[100:400]]))
def test_any_tail_without_nul_round_trips(logged_at_ms: int, noise: bytes, vocabulary: bytes) -> None:
    head = entry_head(logged_at_ms)
    tail = (vocabulary + noise + head + vocabulary).replace(b"\x00", b"\x01")
    packed = entry_codec.encode_tail(tail, ENTRY_HEAD_LENGTH)
    stored = entry_codec.join_encoded(head, entry_codec.encode_head(head), tail, packed, ENTRY_HEAD_LENGTH)
    assert entry_codec.decode_entry(stored) == head + tail


def test_the_committer_stores_entries_in_two_parts_that_decode(log: Log) -> None:
    """A submission's entries are stored as the group's head and each
    record's tail, compressed apart (the tail in the request's thread), and
    every reader and the audit get the entry back byte for byte."""
    key = PlatformKey(bytes([7]) * 32)
    log.registry.add_platform("example-social", "Example Social", key.public_key)
    items = [sign(decision(f"split-{i}"), key) for i in range(3)]
    recs = verify_items(log.registry_cache, items, int(time.time() * 1000))
    placed = log.committer.submit(recs).placed
    indexes = [p.leaf_index for p in placed]
    stored = stored_rows(log.engine)
    with log.read() as s:
        entries = storage.read_entries(s, indexes[0], indexes[-1] + 1)
    head = entries[0][:ENTRY_HEAD_LENGTH]
    assert head == entry_head(placed[0].logged_at_ms)
    packed_head = entry_codec.encode_head(head)
    for index, entry, rec in zip(indexes, entries, recs, strict=True):
        assert entry == head + rec.entry_tail
        assert stored[index] == bytes((entry_codec.DEFLATE_1,)) + packed_head + rec.packed_tail
        assert entry_codec.decode_entry(stored[index]) == entry
    check_log(log)
