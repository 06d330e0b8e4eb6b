"""The witness protocol, per c2sp.org/tlog-witness: pure, no I/O.

A log submits each new checkpoint to a witness with ``POST
<prefix>/add-checkpoint``, whose body is::

    old <size the witness last cosigned>
    <zero to 63 consistency-proof hashes, base64, one a line>
    <empty line>
    <the signed checkpoint note>

The witness answers 200 with one or more cosignature lines, or:

* 404 for an origin it does not witness (:class:`UnknownLog`);
* 403 when no signature verifies under a key it trusts for that origin
  (:class:`UntrustedCheckpoint`);
* 400 for a malformed body or an old size beyond the checkpoint's
  (:class:`ledger.errors.InvalidInput`);
* 409 when the old size is not the size it last cosigned, or that size with
  another root: the body is that size and a newline, ``Content-Type:
  text/x.tlog.size`` (:class:`SizeConflict`);
* 422 when the consistency proof fails (:class:`ledger.errors.ProofError`).

This module formats and parses both directions exactly (principle 4) and
decides a request (:func:`check_add_checkpoint`); the HTTP servers and
clients around it live in ``client/witness.py`` and ``ledger/cosign.py``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keys.note import Note, NoteVerifier, Signature, b64decode_exact, open_note, parse_signature_line
from ledger.errors import Conflict, InvalidInput, NoteError, NotFound, ProofError
from ledger.tlog.checkpoint import MAX_SIZE, Checkpoint, parse_checkpoint
from ledger.tlog.merkle import EMPTY_ROOT, HASH_SIZE
from ledger.tlog.verify import verify_consistency

#: c2sp.org/tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
#: The signature lines a witness may answer with, at most (as many as a note holds).
MAX_COSIGNATURE_LINES = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class UnknownLog(NotFound):
    """The witness does not witness this origin: 404."""


class UntrustedCheckpoint(ProofError):
    """No signature on the checkpoint verifies under a key trusted for its origin: 403."""


class SizeConflict(Conflict):
    """The witness last cosigned another size, or this size with another root: 409.

    ``size`` is the witness's size, which the 409 body carries.
    """

    def __init__(self, size: int, message: str) -> None:
        super().__init__(message)
        self.size = size


def _parse_size(s: str, what: str) -> int:
    if not _DECIMAL.fullmatch(s) or int(s) > MAX_SIZE:
        raise InvalidInput(f"{what} is not a canonical decimal tree size")
    return int(s)


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request body: old size, consistency proof, signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, as sent (possibly with several signatures)

    def __post_init__(self) -> None:
        if not 0 <= self.old_size <= MAX_SIZE:
            raise InvalidInput("old size out of range")
        if len(self.proof) > MAX_PROOF_LINES:
            raise InvalidInput(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
        if any(len(h) != HASH_SIZE for h in self.proof):
            raise InvalidInput("consistency proof hashes are 32 bytes")
        if not self.checkpoint:
            raise InvalidInput("the request holds no checkpoint")

    def encode(self) -> bytes:
        head = f"old {self.old_size}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in self.proof)
        return head.encode() + b"\n" + self.checkpoint

    @property
    def origin(self) -> str:
        """The checkpoint's first line, unverified: which keys to verify it with."""
        first, _, _ = self.checkpoint.partition(b"\n")
        try:
            return first.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("checkpoint origin is not valid UTF-8") from None


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint request body exactly (the note itself is checked later).

    The head ends at the first empty line; every head line ends in a newline.
    """
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise InvalidInput("add-checkpoint body: no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise InvalidInput("add-checkpoint body: the old size and proof lines must be ASCII") from None
    first, proof_lines = lines[0], lines[1:]
    if not first.startswith("old "):
        raise InvalidInput("add-checkpoint body: the first line must be `old <size>`")
    old = _parse_size(first[len("old ") :], "add-checkpoint body: old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise InvalidInput(f"add-checkpoint body: more than {MAX_PROOF_LINES} consistency proof lines")
    try:
        proof = tuple(b64decode_exact(line, "consistency proof line") for line in proof_lines)
    except NoteError as e:
        raise InvalidInput(f"add-checkpoint body: {e}") from None
    req = AddCheckpoint(old, proof, note)
    if req.encode() != body:
        raise AssertionError("add-checkpoint: re-encoding differs after an exact parse")
    return req


def format_size(size: int) -> bytes:
    """The body of a 409 answer: the witness's size and a newline."""
    if not 0 <= size <= MAX_SIZE:
        raise AssertionError("tree size out of range")
    return f"{size}\n".encode()


def parse_size(body: bytes) -> int:
    """Parse a 409 answer's body exactly: a canonical decimal and one newline."""
    if not body.endswith(b"\n"):
        raise InvalidInput("409 body: must be a tree size and a newline")
    try:
        text = body[:-1].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput("409 body: not ASCII") from None
    return _parse_size(text, "409 body")


def format_cosignatures(sigs: Sequence[Signature]) -> bytes:
    """The body of a 200 answer: signature lines."""
    if not sigs:
        raise AssertionError("a witness answers with at least one cosignature")
    return "".join(s.line() for s in sigs).encode()


def parse_cosignatures(body: bytes) -> list[Signature]:
    """Parse a 200 answer's body exactly: one or more signature lines, each ending in a newline."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("cosignature response: not valid UTF-8") from None
    if not text.endswith("\n"):
        raise InvalidInput("cosignature response: must be signature lines, each ending in a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_COSIGNATURE_LINES:
        raise InvalidInput("cosignature response: too many signature lines")
    try:
        sigs = [parse_signature_line(line) for line in lines]
    except NoteError as e:
        raise InvalidInput(f"cosignature response: {e}") from None
    if format_cosignatures(sigs) != body:
        raise AssertionError("cosignature response: re-encoding differs after an exact parse")
    return sigs


@dataclass(frozen=True)
class TreeHead:
    """What a witness remembers of a log: the size and root it last cosigned."""

    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.size <= MAX_SIZE or len(self.root) != HASH_SIZE:
            raise InvalidInput("tree head out of range")


#: A witness that has cosigned nothing for a log holds the empty tree.
EMPTY_TREE = TreeHead(0, EMPTY_ROOT)


@dataclass(frozen=True)
class Accepted:
    """A request the witness may cosign: the verified note and its new tree head."""

    note: Note
    checkpoint: Checkpoint

    @property
    def head(self) -> TreeHead:
        return TreeHead(self.checkpoint.size, self.checkpoint.root)


def check_add_checkpoint(
    req: AddCheckpoint, trusted: Mapping[str, Sequence[NoteVerifier]], known: TreeHead | None
) -> Accepted:
    """Decide an add-checkpoint request, in the order c2sp.org/tlog-witness lists the checks.

    ``trusted`` maps each witnessed origin to its log keys; ``known`` is what
    the witness last cosigned for ``req``'s origin (None: nothing yet). The
    caller must hold its state lock from reading ``known`` until it has
    persisted :attr:`Accepted.head`, or two requests could roll it back.
    """
    origin = req.origin
    keys = trusted.get(origin)
    if not keys:
        raise UnknownLog(f"this witness does not witness the log {origin!r}")
    try:
        note = open_note(req.checkpoint, *keys)
    except ProofError:
        raise UntrustedCheckpoint("no signature on the checkpoint verifies under the log's key") from None
    cp = parse_checkpoint(note.text)
    if req.old_size > cp.size:
        raise InvalidInput(f"old size {req.old_size} exceeds the checkpoint's size {cp.size}")
    head = known or EMPTY_TREE
    if req.old_size != head.size:
        raise SizeConflict(head.size, f"the witness last cosigned size {head.size}, not {req.old_size}")
    if cp.size == head.size and cp.root != head.root:
        raise SizeConflict(head.size, f"the witness cosigned another tree of size {head.size}: the log forked")
    old = Checkpoint(origin, head.size, head.root)
    # The empty tree is a prefix of every tree (with an empty proof, as the
    # spec requires for old size 0), and a tree of itself.
    verify_consistency(old, cp, req.proof)
    return Accepted(note, cp)
