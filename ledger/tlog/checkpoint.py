"""Checkpoints, per c2sp.org/tlog-checkpoint.

A checkpoint body is three lines, ``<origin>\\n<size>\\n<base64 root>\\n``,
optionally followed by extension lines (this log writes none). It is signed
as a c2sp.org/signed-note by the log's key, whose name is the origin.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from keys.note import Note, Signer, Verifier, b64decode_exact, open_note, sign_note
from ledger.errors import InvalidInput, NoteError, ProofError
from ledger.tlog.merkle import HASH_SIZE

MAX_SIZE = (1 << 63) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or not self.origin.isprintable():
            raise InvalidInput("checkpoint origin must be one non-empty printable line")
        if not 0 <= self.size <= MAX_SIZE:
            raise InvalidInput("checkpoint size out of range")
        if len(self.root) != HASH_SIZE:
            raise InvalidInput("checkpoint root must be 32 bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise InvalidInput("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """Return the note text of this checkpoint."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    def sign(self, signer: Signer) -> bytes:
        """Return the signed note; the signer's name must be the origin."""
        if signer.name != self.origin:
            raise AssertionError("checkpoint signer name must equal the origin")
        return sign_note(self.body(), signer)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body exactly: re-encoding must give the same text."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint must have at least three lines")
    origin, size_s, root_s, *ext = lines
    if not _DECIMAL.fullmatch(size_s) or int(size_s) > MAX_SIZE:
        raise NoteError("checkpoint size is not a canonical decimal")
    root = b64decode_exact(root_s, "checkpoint root")
    try:
        cp = Checkpoint(origin, int(size_s), root, tuple(ext))
    except InvalidInput as e:
        raise NoteError(str(e)) from None
    if cp.body() != text:
        raise AssertionError("checkpoint: re-encoding differs after an exact parse")
    return cp


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint together with the signed note it came in."""

    checkpoint: Checkpoint
    note: Note

    def encode(self) -> bytes:
        return self.note.encode()


def open_checkpoint(msg: bytes, verifier: Verifier) -> SignedCheckpoint:
    """Verify a signed checkpoint from the log whose key is ``verifier``.

    The origin must equal the key's name (c2sp.org/tlog-checkpoint).
    """
    note = open_note(msg, verifier)
    if not any(s.name == verifier.name and s.key_id == verifier.key_id for s in note.verified):
        raise ProofError("checkpoint is not signed by the log")
    cp = parse_checkpoint(note.text)
    if cp.origin != verifier.name:
        raise ProofError("checkpoint origin does not match the log's key name")
    return SignedCheckpoint(cp, note)
