"""Signed notes, per c2sp.org/signed-note, with Ed25519 keys.

A port of the parts of Go's ``golang.org/x/mod/sumdb/note`` this project
needs. A note is UTF-8 text ending in a newline, then a blank line, then one
or more signature lines ``— <name> <base64(key ID || signature)>``.

Key strings:

* verifier key ``<name>+<hex key ID>+<base64(0x01 || public key)>``
* signer key ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``

The key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).

:func:`open_note` takes any :class:`NoteVerifier`, so witness cosignatures
(``keys.cosignature``, algorithm 0x04) verify through the same code.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

import nacl.exceptions
import nacl.signing

from keys.errors import KeyFormatError, NoteError, ProofError

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash and space
MAX_SIGNATURES = 100


def b64decode_exact(s: str, what: str) -> bytes:
    """Decode standard padded base64, rejecting any other spelling."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what}: not valid base64") from None
    if base64.b64encode(raw).decode() != s:
        raise NoteError(f"{what}: base64 not in canonical form")
    return raw


def key_id(name: str, key: bytes) -> bytes:
    """Return the 4-byte key ID for ``key`` (algorithm byte included) under ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]


def check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise KeyFormatError(f"invalid key name {name!r}")


class NoteVerifier(Protocol):
    """What :func:`open_note` needs of a key: its name, its ID, and a check.

    ``verify`` gets the note text and the signature bytes after the key ID;
    how the signed message is built from the text is the key type's business
    (plain Ed25519 signs the text, a cosignature/v1 a prefixed text).
    """

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, msg: bytes, sig: bytes) -> bool: ...


def parse_verifier_key(vkey: str, alg: int) -> tuple[str, bytes, bytes]:
    """Parse ``<name>+<hex key ID>+<base64(alg || 32-byte Ed25519 key)>`` exactly.

    Returns (name, key ID, public key). The key ID must be the one computed
    from the name and the key, algorithm byte included, so a key string
    cannot claim another key's ID.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("malformed verifier key: expected name+keyid+key")
    name, hex_id, b64 = parts
    check_name(name)
    if len(hex_id) != 8 or hex_id != hex_id.lower():
        raise KeyFormatError("malformed verifier key: key ID must be 8 lower-case hex digits")
    try:
        kid = bytes.fromhex(hex_id)
        key = b64decode_exact(b64, "verifier key")
    except (ValueError, NoteError) as e:
        raise KeyFormatError(f"malformed verifier key: {e}") from None
    if len(key) != 33 or key[0] != alg:
        kind = "an Ed25519 key" if alg == ALG_ED25519 else f"a key of type 0x{alg:02x}"
        raise KeyFormatError(f"malformed verifier key: not {kind}")
    if key_id(name, key) != kid:
        raise KeyFormatError("malformed verifier key: key ID does not match the key")
    return name, kid, key[1:]


@dataclass(frozen=True)
class Verifier:
    """Checks Ed25519 signatures of one named key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Parse a verifier key string exactly."""
        name, kid, pub = parse_verifier_key(vkey, ALG_ED25519)
        return cls(name, kid, pub)

    def to_key(self) -> str:
        key = bytes([ALG_ED25519]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(key).decode()}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(self.public_key).verify(msg, sig)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """Signs with one named Ed25519 key. Never logged or printed whole."""

    name: str
    key_id: bytes
    seed: bytes

    def __repr__(self) -> str:  # keep the seed out of logs and tracebacks
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()})"

    @classmethod
    def generate(cls, name: str) -> Signer:
        check_name(name)
        seed = bytes(nacl.signing.SigningKey.generate())
        return cls.from_seed(name, seed)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        check_name(name)
        if len(seed) != 32:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        pub = bytes(nacl.signing.SigningKey(seed).verify_key)
        return cls(name, key_id(name, bytes([ALG_ED25519]) + pub), seed)

    @classmethod
    def from_key(cls, skey: str) -> Signer:
        """Parse a ``PRIVATE+KEY+...`` signer key string exactly."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("malformed signer key: expected PRIVATE+KEY+name+keyid+key")
        name, hex_id, b64 = parts[2:]
        try:
            key = b64decode_exact(b64, "signer key")
        except NoteError as e:
            raise KeyFormatError(f"malformed signer key: {e}") from None
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise KeyFormatError("malformed signer key: not an Ed25519 key")
        signer = cls.from_seed(name, key[1:])
        if signer.key_id.hex() != hex_id:
            raise KeyFormatError("malformed signer key: key ID does not match the key")
        return signer

    def to_key(self) -> str:
        key = bytes([ALG_ED25519]) + self.seed
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{base64.b64encode(key).decode()}"

    @property
    def verifier(self) -> Verifier:
        pub = bytes(nacl.signing.SigningKey(self.seed).verify_key)
        return Verifier(self.name, self.key_id, pub)

    def sign(self, msg: bytes) -> bytes:
        return self._signing_key.sign(msg).signature

    @functools.cached_property
    def _signing_key(self) -> nacl.signing.SigningKey:
        # Expanding the seed into a key pair costs about a third of a
        # signature; the sequencer signs a checkpoint per group commit.
        return nacl.signing.SigningKey(self.seed)


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    sig: bytes  # the signature proper, without the key ID

    def line(self) -> str:
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(self.key_id + self.sig).decode()}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures verified, and the others kept."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    def encode(self) -> bytes:
        sigs = "".join(s.line() for s in self.verified + self.unverified)
        return (self.text + "\n" + sigs).encode()


#: C0 controls other than newline (a regular expression: the per-character
#: loop was a tenth of a single record's append, checkpoint texts included).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    if _CONTROL.search(text):
        raise NoteError("note text must not hold control characters other than newline")


def sign_note(text: str, *signers: Signer) -> bytes:
    """Return the signed note for ``text``."""
    check_text(text)
    msg = text.encode()
    sigs = [Signature(s.name, s.key_id, s.sign(msg)) for s in signers]
    return Note(text, tuple(sigs), ()).encode()


def open_note(msg: bytes, *verifiers: NoteVerifier) -> Note:
    """Parse a signed note exactly and verify its signatures.

    At least one signature must be by one of ``verifiers`` and every
    signature by a known key must verify. Signatures by unknown keys are kept
    in ``Note.unverified`` (cosignatures, for instance), never dropped. A
    known key is a (name, key ID) pair (c2sp.org/signed-note): a line that
    shares only one of them with a verifier is unknown.
    """
    try:
        s = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not valid UTF-8") from None
    split = s.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, block = s[: split + 1], s[split + 2 :]
    check_text(text)
    if not block.endswith("\n"):
        raise NoteError("note signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("note has too many signatures")
    known: dict[tuple[str, bytes], NoteVerifier] = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for line in lines:
        sig = _parse_signature_line(line)
        v = known.get((sig.name, sig.key_id))
        if v is None:
            unverified.append(sig)
        elif v.verify(text.encode(), sig.sig):
            verified.append(sig)
        else:
            raise ProofError(f"invalid signature by {sig.name}")
    if not verified:
        raise ProofError("note has no signature by a known key")
    return Note(text, tuple(verified), tuple(unverified))


def parse_signature_line(line: str) -> Signature:
    """Parse one signature line, with or without its final newline, exactly."""
    return _parse_signature_line(line[:-1] if line.endswith("\n") else line)


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(SIG_PREFIX):
        raise NoteError("malformed signature line")
    name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
    if not sep:
        raise NoteError("malformed signature line")
    try:
        check_name(name)
    except KeyFormatError:
        raise NoteError("malformed signature line: bad key name") from None
    raw = b64decode_exact(b64, "signature")
    if len(raw) < 5:
        raise NoteError("malformed signature line: signature too short")
    return Signature(name, raw[:4], raw[4:])
