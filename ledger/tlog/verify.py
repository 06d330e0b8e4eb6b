"""Verification for auditors and clients: no Flask, no database.

Everything a client needs to check what the log serves: a checkpoint's
signature, an entry's inclusion in it, and one checkpoint extending another.
Each function returns nothing useful on success and raises
:class:`ledger.errors.ProofError` (or :class:`InvalidInput` for malformed
input) on failure.
"""

from __future__ import annotations

from collections.abc import Sequence

from keys.note import Verifier
from ledger.errors import ProofError
from ledger.tlog.checkpoint import Checkpoint, open_checkpoint
from ledger.tlog.merkle import check_record, check_tree, record_hash


def verify_checkpoint(note: bytes, vkey: str | Verifier) -> Checkpoint:
    """Check a signed checkpoint against the log's verifier key; return it."""
    verifier = vkey if isinstance(vkey, Verifier) else Verifier.from_key(vkey)
    return open_checkpoint(note, verifier).checkpoint


def verify_inclusion(leaf_hash: bytes, index: int, proof: Sequence[bytes], cp: Checkpoint) -> None:
    """Check that the leaf with ``leaf_hash`` is entry ``index`` of ``cp``'s tree."""
    check_record(proof, cp.size, cp.root, index, leaf_hash)


def verify_entry(entry: bytes, index: int, proof: Sequence[bytes], cp: Checkpoint) -> None:
    """Check that ``entry`` is entry ``index`` of ``cp``'s tree."""
    verify_inclusion(record_hash(entry), index, proof, cp)


def verify_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new``'s tree extends ``old``'s (RFC 9162 §2.1.4).

    The empty tree is extended by every tree (with an empty proof), and a
    tree of the same size must have the same root. Go's ``CheckTree``
    rejects size 0 outright; this accepts it, as C2SP witnesses do.
    """
    if old.origin != new.origin:
        raise ProofError("checkpoints are from different logs")
    if old.size > new.size:
        raise ProofError("the new checkpoint is smaller than the old one")
    if old.size == 0 or old.size == new.size:
        if proof or (old.size == new.size and old.root != new.root):
            raise ProofError("invalid proof")
        return
    check_tree(proof, new.size, new.root, old.size, old.root)
