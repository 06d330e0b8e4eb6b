"""Platform keys and record signatures.

A platform signs the bytes ``mdl/record/v1\\n`` followed by the RFC 8785
canonical form of its record (``ledger.records.entries.canonical`` makes it). The
domain-separation prefix keeps a record signature from ever being valid as
anything else, and vice versa. A key's ID is the lower-case hex of the first
8 bytes of SHA-256 of the 32-byte Ed25519 public key.

The log signs its registry events the same way under ``mdl/registry/v1\\n``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from keys.errors import KeyFormatError, ProofError
from keys.note import b64decode_exact

RECORD_CONTEXT = b"mdl/record/v1\n"
REGISTRY_CONTEXT = b"mdl/registry/v1\n"
ALG = "ed25519"


def platform_key_id(public_key: bytes) -> str:
    """Return the key ID of a 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise KeyFormatError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(public_key).digest()[:8].hex()


@dataclass(frozen=True)
class PlatformKey:
    """A platform's signing key (private part: ``seed``). Never printed whole."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")

    def __repr__(self) -> str:
        return f"PlatformKey(key_id={self.key_id})"

    @classmethod
    def generate(cls) -> PlatformKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    @property
    def key_id(self) -> str:
        return platform_key_id(self.public_key)

    def to_text(self) -> str:
        """The private key file format: ``mdl-platform-key-v1 <base64 seed>``."""
        return f"mdl-platform-key-v1 {base64.b64encode(self.seed).decode()}"

    @classmethod
    def from_text(cls, text: str) -> PlatformKey:
        kind, _, b64 = text.strip().partition(" ")
        if kind != "mdl-platform-key-v1":
            raise KeyFormatError("not a platform key file (expected 'mdl-platform-key-v1 <base64>')")
        try:
            return cls(b64decode_exact(b64, "platform key"))
        except KeyFormatError:
            raise
        except Exception as e:  # NoteError from the base64 check
            raise KeyFormatError(f"malformed platform key: {e}") from None

    def sign(self, context: bytes, canonical: bytes) -> dict[str, str]:
        """Return the signature object ``{key_id, alg, value}`` over context + canonical."""
        sig = nacl.signing.SigningKey(self.seed).sign(context + canonical).signature
        return {"key_id": self.key_id, "alg": ALG, "value": base64.b64encode(sig).decode()}


def public_key_from_text(text: str) -> bytes:
    """Parse a public key given as standard padded base64 of 32 bytes."""
    try:
        raw = b64decode_exact(text.strip(), "public key")
    except Exception as e:
        raise KeyFormatError(f"malformed public key: {e}") from None
    if len(raw) != 32:
        raise KeyFormatError("an Ed25519 public key is 32 bytes")
    return raw


def verify_signature(public_key: bytes, context: bytes, canonical: bytes, value: bytes) -> None:
    """Raise :class:`ProofError` unless ``value`` signs context + canonical."""
    try:
        nacl.signing.VerifyKey(public_key).verify(context + canonical, value)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise ProofError("the signature does not verify") from None
