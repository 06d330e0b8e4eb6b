"""The bench's bulk append (bench/ingest.py ``populate``): what it writes is
what the committer writes for new records, so every audit of it passes.

Its records are signed, and their entries, stored forms and rows made, in
a helper process for the leaf index the chunk is to have; these tests check
the result on both databases, byte for byte, and that a chunk made for
another tree size is refused with nothing written."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench import ingest
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus, entry_chunk
from bench.server import ORIGIN
from client.signing import record_entry
from ledger.audit import audit
from ledger.db import entries, record_index
from ledger.entry_codec import decode_entry, encode_entry
from ledger.log import LogProvider
from ledger.records.entries import format_time

CORPUS = Corpus(hashlib.sha256(b"test populate").digest())


def _provider(db_url: str, tmp_path: Path) -> LogProvider:
    provider = LogProvider(db_url, str(tmp_path / "log.key"), ORIGIN)
    log, _ = provider.initialise()
    log.registry.add_platform(PLATFORM, PLATFORM_NAME, CORPUS.key.public_key)
    return provider


def test_populate_writes_what_the_committer_writes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _provider(db_url, tmp_path)
    first = provider.log.latest_size()
    provider.close()
    # Small chunks, the last one short: several transactions, each with
    # rows made for its own first leaf index.
    monkeypatch.setattr(ingest, "MAX_BATCH", 7)
    target = first + 30
    seen: list[int] = []
    size, _ = ingest.populate(
        db_url, tmp_path / "log.key", CORPUS, target, time.monotonic() + 600, lambda n, _t: seen.append(n)
    )
    assert size == target
    assert seen[-1] == target

    provider = LogProvider(db_url, str(tmp_path / "log.key"), ORIGIN)
    log = provider.log
    try:
        with Session(log.engine) as s:
            report = audit(s, log.verifier)
            assert report.ok, report.problems
            assert report.size == target
            assert s.scalar(select(func.count()).select_from(record_index)) == 30
            stored = s.execute(select(entries.c.idx, entries.c.data).where(entries.c.idx >= first)).all()
            logged = {r.logged_at_ms for r in s.execute(select(record_index.c.logged_at_ms))}
        assert len(stored) == 30
        assert len(logged) == 1
        (logged_at_ms,) = logged
        for idx, data in stored:
            entry = decode_entry(bytes(data))
            # The very bytes a platform's client rebuilds, stored as the sequencer stores them.
            signed = CORPUS.sign_bulk(idx - first)
            assert entry == record_entry(format_time(logged_at_ms), signed.canonical, signed.signature)
            assert bytes(data) == encode_entry(entry)
    finally:
        provider.close()


def test_a_chunk_made_for_another_size_is_refused(db_url: str, tmp_path: Path) -> None:
    provider = _provider(db_url, tmp_path)
    try:
        log = provider.log
        first = log.latest_size()
        chunk = entry_chunk((CORPUS.seed, 0, 3, 1_700_000_000_000, first + 1))
        with pytest.raises(AssertionError, match="the chunk was made for"):
            ingest._append(log, chunk)
        assert log.latest_size() == first
        with Session(log.engine) as s:
            assert s.scalar(select(func.count()).select_from(record_index)) == 0
        assert ingest._append(log, entry_chunk((CORPUS.seed, 0, 3, 1_700_000_000_000, first))) == first + 3
    finally:
        provider.close()
