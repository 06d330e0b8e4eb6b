"""What a serving process keeps for the latest head (``/checkpoint``'s
bytes, the checkpoint proofs are against) is never served once another
process moved the head or stored a cosignature: the head is read on every
request. Two ``Log`` objects on one database stand for two workers (or two
servers sharing PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger.db import cosignatures, writer
from ledger.log import Log
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.merkle import check_record, record_hash


def _size(log: Log, note: bytes) -> int:
    return open_checkpoint(note, log.verifier).checkpoint.size


def test_checkpoint_follows_another_process(engine: Engine, signer: Signer) -> None:
    server, other = Log(engine, signer), Log(engine, signer)
    server.sequencer.init()
    server.sequencer.append([b"a", b"b"])
    first = server.checkpoint_note()
    assert server.checkpoint_note() is first  # kept while the head stays
    assert _size(server, first) == 2
    other.sequencer.append([b"c"])
    moved = server.checkpoint_note()
    assert _size(server, moved) == 3
    # A cosignature stored by another process for the current size shows at once.
    line = "— witness.example AAAAAAAA"
    with Session(writer(engine)) as s, s.begin():
        s.execute(
            cosignatures.insert().values(
                size=3, witness_key_id="00000000", witness_name="witness.example", line=line, created_at_ms=0
            )
        )
    assert server.checkpoint_note() == moved + (line + "\n").encode()


def test_proofs_follow_another_process(engine: Engine, signer: Signer) -> None:
    server, other = Log(engine, signer), Log(engine, signer)
    server.sequencer.init()
    data = [f"entry {i}".encode() for i in range(300)]
    server.sequencer.append(data)
    for i in range(300):  # warm every cache the fast path reads
        server.inclusion(i)
    other.sequencer.append([b"late"])
    data.append(b"late")
    for i in (0, 255, 299, 300):
        for proof in (server.inclusion(i), server.inclusion_by_hash(record_hash(data[i]))):
            assert (proof.index, proof.checkpoint.size) == (i, 301)
            check_record(proof.proof, 301, proof.checkpoint.root, i, record_hash(data[i]))
