"""Signing records: what a platform hands the log.

A platform signs each record with its Ed25519 key (the bytes
``mdl/record/v1\\n`` + RFC 8785 canonical record; docs/signing.md). A
:class:`SignedItem` checks its own shape when built; the signature itself can
only be checked by the log, which holds the public keys. The log entry of a
record is rebuilt here from the record, its signature and the ``logged_at``
the log assigned, so that a submitter can check the leaf hash it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from keys.note import b64decode_exact
from keys.records import ALG, RECORD_CONTEXT, PlatformKey
from ledger.errors import InvalidInput
from ledger.records import times
from ledger.records.entries import canonical, entry_bytes, format_time

_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class SignedItem:
    """A record and the platform's signature over it: what the log accepts.

    Checks its own shape when built (the signature itself can only be
    checked by the log, which holds the public keys); ``line`` is where it
    came from in an NDJSON file, if anywhere.
    """

    record: dict[str, Any]
    signature: dict[str, str]
    line: int | None = None
    canonical_record: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sig = self.signature
        if not isinstance(self.record, dict):
            raise InvalidInput("record: must be a JSON object")
        if not isinstance(sig, dict) or set(sig) != {"key_id", "alg", "value"}:
            raise InvalidInput("signature: expected exactly the keys 'key_id', 'alg' and 'value'")
        if not isinstance(sig["key_id"], str) or not _KEY_ID.fullmatch(sig["key_id"]):
            raise InvalidInput("signature.key_id: must be 16 lower-case hex digits")
        if sig["alg"] != ALG:
            raise InvalidInput(f"signature.alg: must be {ALG!r}")
        if not isinstance(sig["value"], str) or len(b64decode_exact(sig["value"], "signature.value")) != 64:
            raise InvalidInput("signature.value: must be the base64 of a 64-byte Ed25519 signature")
        object.__setattr__(self, "canonical_record", canonical(self.record))

    @classmethod
    def from_json(cls, obj: Any, line: int | None = None) -> SignedItem:
        """Build an item from a parsed submission item ``{"record", "signature"}``."""
        if not isinstance(obj, dict) or set(obj) != {"record", "signature"}:
            raise InvalidInput("expected an object with exactly the keys 'record' and 'signature'")
        return cls(obj["record"], obj["signature"], line)

    def to_bytes(self) -> bytes:
        """The item's canonical JSON ("record" sorts before "signature")."""
        return b'{"record":' + self.canonical_record + b',"signature":' + canonical(self.signature) + b"}"

    def where(self, number: int) -> str:
        """How error messages name this item: ``record N (line L)``."""
        return f"record {number}" + (f" (line {self.line})" if self.line is not None else "")


def sign_record(key: PlatformKey, record: Any, line: int | None = None) -> SignedItem:
    """Sign a record; raise :class:`InvalidInput` if the log could never take it."""
    if not isinstance(record, dict):
        raise InvalidInput("a record must be a JSON object")
    item = SignedItem(record, key.sign(RECORD_CONTEXT, canonical(record)), line)
    entry_bytes(0, "record", item.canonical_record, item.signature)  # every logged_at has the same length
    return item


# Log entries ----------------------------------------------------------------


def parse_time(s: str) -> int:
    """Parse the log's ``logged_at`` (``YYYY-MM-DDTHH:MM:SS.mmmZ``, as ``format_time`` writes it) to Unix ms."""
    ms = times.date_time_ms(s)  # InvalidInput unless exactly an RFC 3339 UTC time
    if format_time(ms) != s:  # three fraction digits, no more, no fewer: what the log writes
        raise InvalidInput(f"not an RFC 3339 UTC time with milliseconds: {s!r}")
    return ms


def record_entry(logged_at: str, canonical_record: bytes, signature: dict[str, str]) -> bytes:
    """The log entry of a record logged at ``logged_at`` (the log's string), via
    :func:`ledger.records.entries.entry_bytes`, the one producer of entry bytes."""
    return entry_bytes(parse_time(logged_at), "record", canonical_record, signature)
