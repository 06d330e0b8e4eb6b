"""Verifying a checkpoint cosigned by k of n witnesses: no Flask, no database.

A client that trusts a set of witnesses (c2sp.org/tlog-cosignature) accepts
a checkpoint only if the log signed it and at least ``quorum`` of those
witnesses cosigned it: a log that shows different trees to different
clients then has to persuade that many witnesses to cosign a fork, which
each refuses once it has cosigned the other branch.

    from ledger.tlog.cosigned import verify_cosigned

    cp = verify_cosigned(note_bytes, "<log vkey>", ["<witness vkey>", ...], quorum=2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keys.cosignature import CosignatureVerifier, cosignature_timestamp
from keys.note import Verifier, open_note
from ledger.errors import InvalidInput, ProofError
from ledger.tlog.checkpoint import Checkpoint, parse_checkpoint


@dataclass(frozen=True)
class Cosigner:
    """A witness whose cosignature verified, and the time it states."""

    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True)
class CosignedCheckpoint:
    checkpoint: Checkpoint
    cosigners: tuple[Cosigner, ...]


def _witnesses(witness_vkeys: Sequence[str | CosignatureVerifier]) -> list[CosignatureVerifier]:
    out: list[CosignatureVerifier] = []
    for w in witness_vkeys:
        v = w if isinstance(w, CosignatureVerifier) else CosignatureVerifier.from_key(w)
        # A cosignature/v1 does not sign the witness's name: one key listed
        # twice, under any names, would count one witness twice.
        if any(o.public_key == v.public_key or (o.name, o.key_id) == (v.name, v.key_id) for o in out):
            raise InvalidInput(f"witness key {v.to_key()} is listed twice")
        out.append(v)
    return out


def open_cosigned(
    note: bytes,
    log_vkey: str | Verifier,
    witness_vkeys: Sequence[str | CosignatureVerifier],
    quorum: int,
) -> CosignedCheckpoint:
    """Verify the log's signature and at least ``quorum`` distinct witness cosignatures.

    Every signature line by a given key must verify (a bad one rejects the
    note, as c2sp.org/signed-note recommends); lines by other keys are
    ignored. Raises :class:`ProofError` when a check fails and
    :class:`InvalidInput` for malformed keys, notes or quorum.
    """
    log = log_vkey if isinstance(log_vkey, Verifier) else Verifier.from_key(log_vkey)
    witnesses = _witnesses(witness_vkeys)
    if not 0 <= quorum <= len(witnesses):
        raise InvalidInput(f"quorum must be between 0 and the number of witnesses ({len(witnesses)})")
    opened = open_note(note, log, *witnesses)
    if not any((s.name, s.key_id) == (log.name, log.key_id) for s in opened.verified):
        raise ProofError("checkpoint is not signed by the log")
    cp = parse_checkpoint(opened.text)
    if cp.origin != log.name:
        raise ProofError("checkpoint origin does not match the log's key name")
    keys = {(w.name, w.key_id) for w in witnesses}
    cosigners: dict[tuple[str, bytes], Cosigner] = {}
    for s in opened.verified:
        if (s.name, s.key_id) in keys:
            cosigners.setdefault((s.name, s.key_id), Cosigner(s.name, s.key_id, cosignature_timestamp(s.sig)))
    if len(cosigners) < quorum:
        raise ProofError(f"checkpoint has {len(cosigners)} of the {quorum} witness cosignatures required")
    return CosignedCheckpoint(cp, tuple(cosigners.values()))


def verify_cosigned(
    note: bytes,
    log_vkey: str | Verifier,
    witness_vkeys: Sequence[str | CosignatureVerifier],
    quorum: int,
) -> Checkpoint:
    """Check the log's signature and a quorum of witness cosignatures; return the checkpoint."""
    return open_cosigned(note, log_vkey, witness_vkeys, quorum).checkpoint
