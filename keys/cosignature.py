"""Witness cosignatures, per c2sp.org/tlog-cosignature: ``cosignature/v1`` (Ed25519).

A cosignature is a signed-note signature line whose signature is a
``timestamped_signature``: a u64 big-endian POSIX timestamp followed by an
Ed25519 signature over::

    cosignature/v1
    time <timestamp>
    <the checkpoint's note text, final newline included>

The key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4], and the
verifier key ``<name>+<hex key ID>+<base64(0x04 || public key)>`` (signed-note
signature type 0x04). Private keys are written as the log's are,
``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``.

A v1 cosignature states that, at that time, the checkpoint was the largest
consistent tree the witness had seen for the log. The signed message does
not commit to the witness's name, so one public key must never be trusted
under two names: a line could be copied from one to the other.

:class:`CosignatureVerifier` is a :class:`keys.note.NoteVerifier`, so
:func:`keys.note.open_note` verifies cosignatures alongside the log's own
signature.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from keys.errors import KeyFormatError, NoteError
from keys.note import (
    Signature,
    b64decode_exact,
    check_name,
    check_text,
    key_id,
    parse_verifier_key,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1\n"
#: c2sp.org/tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP = (1 << 63) - 1
TIMESTAMP_SIZE = 8
ED25519_SIGNATURE_SIZE = 64
#: The signature bytes after the key ID: timestamp and Ed25519 signature.
SIGNATURE_SIZE = TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key ID of a cosignature/v1 key."""
    return key_id(name, bytes([ALG_COSIGNATURE_V1]) + public_key)


def cosigned_message(text: str, timestamp: int) -> bytes:
    """Return the message a cosignature/v1 signs for note ``text`` at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp out of range")
    check_text(text)
    return f"{HEADER}time {timestamp}\n{text}".encode()


def cosignature_timestamp(sig: bytes) -> int:
    """Return the timestamp of a cosignature's signature bytes (key ID excluded)."""
    if len(sig) != SIGNATURE_SIZE:
        raise NoteError("a cosignature/v1 signature is 72 bytes")
    ts = int.from_bytes(sig[:TIMESTAMP_SIZE], "big")
    if ts > MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp out of range")
    return ts


@dataclass(frozen=True)
class CosignatureVerifier:
    """Checks cosignature/v1 signatures of one named witness key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> CosignatureVerifier:
        """Parse a cosignature/v1 verifier key string exactly."""
        name, kid, pub = parse_verifier_key(vkey, ALG_COSIGNATURE_V1)
        return cls(name, kid, pub)

    def to_key(self) -> str:
        key = bytes([ALG_COSIGNATURE_V1]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(key).decode()}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Check ``sig`` (timestamp || Ed25519 signature) over the note text ``msg``."""
        try:
            ts = cosignature_timestamp(sig)
            signed = cosigned_message(msg.decode("utf-8"), ts)
            nacl.signing.VerifyKey(self.public_key).verify(signed, sig[TIMESTAMP_SIZE:])
        except (NoteError, UnicodeDecodeError, nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True


@dataclass(frozen=True)
class CosignatureSigner:
    """Cosigns checkpoints with one named Ed25519 witness key. Never logged whole."""

    name: str
    key_id: bytes
    seed: bytes

    def __repr__(self) -> str:  # keep the seed out of logs and tracebacks
        return f"CosignatureSigner(name={self.name!r}, key_id={self.key_id.hex()})"

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        return cls.from_seed(name, bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> CosignatureSigner:
        check_name(name)
        if len(seed) != 32:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        pub = bytes(nacl.signing.SigningKey(seed).verify_key)
        return cls(name, cosignature_key_id(name, pub), seed)

    @classmethod
    def from_key(cls, skey: str) -> CosignatureSigner:
        """Parse a ``PRIVATE+KEY+<name>+<id>+<base64(0x04 || seed)>`` string exactly."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("malformed witness key: expected PRIVATE+KEY+name+keyid+key")
        name, hex_id, b64 = parts[2:]
        try:
            key = b64decode_exact(b64, "witness key")
        except NoteError as e:
            raise KeyFormatError(f"malformed witness key: {e}") from None
        if len(key) != 33 or key[0] != ALG_COSIGNATURE_V1:
            raise KeyFormatError("malformed witness key: not a cosignature/v1 (0x04) key")
        signer = cls.from_seed(name, key[1:])
        if signer.key_id.hex() != hex_id:
            raise KeyFormatError("malformed witness key: key ID does not match the key")
        return signer

    def to_key(self) -> str:
        key = bytes([ALG_COSIGNATURE_V1]) + self.seed
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{base64.b64encode(key).decode()}"

    @property
    def verifier(self) -> CosignatureVerifier:
        pub = bytes(nacl.signing.SigningKey(self.seed).verify_key)
        return CosignatureVerifier(self.name, self.key_id, pub)

    def cosign(self, text: str, timestamp: int) -> Signature:
        """Return the cosignature of note ``text`` at POSIX time ``timestamp``."""
        signed = nacl.signing.SigningKey(self.seed).sign(cosigned_message(text, timestamp)).signature
        return Signature(self.name, self.key_id, timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signed)
