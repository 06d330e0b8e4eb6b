"""Signed records for the benchmarks, made before any timing starts.

Records are the decisions of docs/examples, moved to the bench platform,
with only ``record_id`` varying, signed as a platform signs them
(docs/signing.md): Ed25519 over ``mdl/record/v1\\n`` + the RFC 8785 form.

Signing a million records is the costly part of preparing a run, so each
template is canonicalised once with a placeholder ``record_id`` that is
then substituted in the bytes (RFC 8785 orders members by key, never by
value, and the IDs need no escaping), and one ``SigningKey`` signs them
all. :meth:`Corpus.check` proves this fast path gives the very bytes that
``ledger.records.entries.canonical`` and ``PlatformKey.sign`` (what the client
uses) give, before any of its output is used.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.signing

from keys.records import ALG, RECORD_CONTEXT, PlatformKey
from ledger.records.entries import canonical, entry_bytes
from ledger.records.index_rows import index_row

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
#: Decisions only: appeals and amendments must refer to a logged decision.
TEMPLATES = (
    "decision-legislator-removal",
    "decision-head-of-state-newsworthiness",
    "decision-illegal-court-order",
    "decision-ordinary-user",
)
PLATFORM = "bench-social"
PLATFORM_NAME = "Benchmark Social (synthetic)"
_PLACEHOLDER = "bench-placeholder-record-id"


@dataclass(frozen=True)
class Signed:
    """One signed record: what a platform would submit."""

    record_id: str
    canonical: bytes
    signature: dict[str, str]
    template: int

    def item(self) -> bytes:
        """The submission item ``{"record", "signature"}`` as JSON bytes."""
        return b'{"record":' + self.canonical + b',"signature":' + canonical(self.signature) + b"}"

    @property
    def record_hash(self) -> bytes:
        return hashlib.sha256(self.canonical).digest()


class Corpus:
    """Deterministic signed records: number ``n`` is always the same record."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.key = PlatformKey(seed)
        self.key_id = self.key.key_id
        self.public_key_b64 = base64.b64encode(self.key.public_key).decode()
        self._signing_key = nacl.signing.SigningKey(seed)
        self.records = [_template(name) for name in TEMPLATES]
        self._templates = [canonical(r) for r in self.records]
        # The feed's index row of each template; only record_id and the
        # positions differ between records of one template.
        self.index_rows = [index_row(0, 0, r) for r in self.records]

    def record(self, n: int, prefix: str = "bn") -> dict[str, Any]:
        """Record ``n`` as a dict (the slow, obviously correct path). Its
        record_id is numbered (a tag of at most three letters, then digits),
        as an ordinary user's must be (docs/records.md)."""
        rec = copy.deepcopy(self.records[n % len(TEMPLATES)])
        rec["record_id"] = f"{prefix}-{n:010d}"
        return rec

    def sign(self, n: int, prefix: str = "bn") -> Signed:
        t = n % len(TEMPLATES)
        record_id = f"{prefix}-{n:010d}"
        body = self._templates[t].replace(_PLACEHOLDER.encode(), record_id.encode())
        value = self._signing_key.sign(RECORD_CONTEXT + body).signature
        sig = {"key_id": self.key_id, "alg": ALG, "value": base64.b64encode(value).decode()}
        return Signed(record_id, body, sig, t)

    def check(self) -> None:
        """Raise unless the fast path equals the client's path for every template."""
        for n in range(2 * len(TEMPLATES)):
            fast, rec = self.sign(n), self.record(n)
            slow = canonical(rec)
            if fast.canonical != slow or fast.signature != self.key.sign(RECORD_CONTEXT, slow):
                raise AssertionError(f"corpus: fast signing differs from the client's for record {n}")

    def sign_range(self, start: int, stop: int, prefix: str = "bn") -> list[Signed]:
        return [self.sign(n, prefix) for n in range(start, stop)]


def _template(name: str) -> dict[str, Any]:
    rec = json.loads((EXAMPLES / f"{name}.json").read_text())
    rec.update(platform=PLATFORM, record_id=_PLACEHOLDER)
    return rec  # type: ignore[no-any-return]


def batch_body(items: list[Signed]) -> bytes:
    return b'{"records":[' + b",".join(s.item() for s in items) + b"]}"


# Process-pool helpers: module-level so that they pickle. -----------------------

_corpus: Corpus | None = None


def _get(seed: bytes) -> Corpus:
    global _corpus
    if _corpus is None or _corpus.seed != seed:
        _corpus = Corpus(seed)
    return _corpus


def sign_chunk(args: tuple[bytes, int, int, str]) -> list[Signed]:
    seed, start, stop, prefix = args
    return _get(seed).sign_range(start, stop, prefix)


def entry_chunk(args: tuple[bytes, int, int, int]) -> list[tuple[bytes, str, bytes, int]]:
    """(entry, record_id, record_hash, template) of bulk records [start, stop),
    their entries logged at ``logged_at_ms``."""
    seed, start, stop, logged_at_ms = args
    return [
        (entry_bytes(logged_at_ms, "record", s.canonical, s.signature), s.record_id, s.record_hash, s.template)
        for s in _get(seed).sign_range(start, stop, "bk")
    ]
