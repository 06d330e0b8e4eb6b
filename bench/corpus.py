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
from ledger.entry_codec import encode_entry
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
#: The appeal and the amendment that one bulk record in :data:`FOLLOWUP_EVERY`
#: is, of an earlier bulk decision (``followup_of``): the feed's filters find
#: a decision's follow-ups through it, so the read benchmarks need them.
FOLLOWUP_TEMPLATES = ("appeal-reversed", "amendment-late-classification")
FOLLOWUP_EVERY = 8
PLATFORM = "bench-social"
PLATFORM_NAME = "Benchmark Social (synthetic)"
_PLACEHOLDER = "bench-placeholder-record-id"
_REF_PLACEHOLDER = "bench-placeholder-ref-record-id"


def followup_of(n: int) -> int | None:
    """The bulk decision that bulk record ``n`` appeals or amends, or None
    if record ``n`` is a decision: every :data:`FOLLOWUP_EVERY`-th record
    follows up a decision up to 100,000 records before it, spread
    pseudo-randomly (so old decisions get late appeals, as they do)."""
    if n % FOLLOWUP_EVERY != FOLLOWUP_EVERY - 1:
        return None
    # A hash, not a multiplication: n * K mod 4 is fixed for n = 7 mod 8,
    # which made every follow-up refer to decisions of one template.
    spread = int.from_bytes(hashlib.blake2b(n.to_bytes(8, "big"), digest_size=8).digest(), "big")
    m = n - 1 - spread % min(n, 100_000)
    return m - 1 if m % FOLLOWUP_EVERY == FOLLOWUP_EVERY - 1 else m


def bulk_template(n: int) -> int:
    """The template of bulk record ``n``: an index into ``Corpus.records``
    (decisions first, then :data:`FOLLOWUP_TEMPLATES`)."""
    if followup_of(n) is None:
        return n % len(TEMPLATES)
    return len(TEMPLATES) + (n // FOLLOWUP_EVERY) % len(FOLLOWUP_TEMPLATES)


@dataclass(frozen=True)
class Signed:
    """One signed record: what a platform would submit."""

    record_id: str
    canonical: bytes
    signature: dict[str, str]
    template: int
    #: The record an appeal or amendment refers to (``refs.record_id``).
    ref_record_id: str | None = None

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
        self.records = [_template(name) for name in (*TEMPLATES, *FOLLOWUP_TEMPLATES)]
        self._templates = [canonical(r) for r in self.records]
        # The feed's index row of each template; only record_id, the
        # referred record's ID and the positions differ between records of one template.
        self.index_rows = [index_row(0, 0, r) for r in self.records]

    def record(self, n: int, prefix: str = "bn") -> dict[str, Any]:
        """Record ``n`` as a dict (the slow, obviously correct path). Its
        record_id is numbered (a tag of at most three letters, then digits),
        as an ordinary user's must be (docs/records.md)."""
        rec = copy.deepcopy(self.records[n % len(TEMPLATES)])
        rec["record_id"] = f"{prefix}-{n:010d}"
        return rec

    def bulk_record(self, n: int, prefix: str = "bk") -> dict[str, Any]:
        """Bulk record ``n`` as a dict (slow path): a decision as :meth:`record`
        gives it, or an appeal or amendment of bulk decision ``followup_of(n)``."""
        ref = followup_of(n)
        if ref is None:
            return self.record(n, prefix)
        rec = copy.deepcopy(self.records[bulk_template(n)])
        rec["record_id"] = f"{prefix}-{n:010d}"
        rec["refs"]["record_id"] = f"{prefix}-{ref:010d}"
        return rec

    def sign(self, n: int, prefix: str = "bn") -> Signed:
        """Decision ``n`` (only decisions: what the ingestion benchmarks submit)."""
        return self._sign(n, prefix, n % len(TEMPLATES), None)

    def sign_bulk(self, n: int, prefix: str = "bk") -> Signed:
        """Bulk record ``n``, as :meth:`bulk_record` gives it."""
        ref = followup_of(n)
        return self._sign(n, prefix, bulk_template(n), None if ref is None else f"{prefix}-{ref:010d}")

    def _sign(self, n: int, prefix: str, t: int, ref: str | None) -> Signed:
        record_id = f"{prefix}-{n:010d}"
        body = self._templates[t].replace(_PLACEHOLDER.encode(), record_id.encode())
        if ref is not None:
            body = body.replace(_REF_PLACEHOLDER.encode(), ref.encode())
        value = self._signing_key.sign(RECORD_CONTEXT + body).signature
        sig = {"key_id": self.key_id, "alg": ALG, "value": base64.b64encode(value).decode()}
        return Signed(record_id, body, sig, t, ref)

    def check(self) -> None:
        """Raise unless the fast path equals the client's path for every template."""
        pairs = [(self.sign(n), self.record(n)) for n in range(2 * len(TEMPLATES))]
        pairs += [(self.sign_bulk(n), self.bulk_record(n)) for n in range(4 * FOLLOWUP_EVERY)]
        for fast, rec in pairs:
            slow = canonical(rec)
            if fast.canonical != slow or fast.signature != self.key.sign(RECORD_CONTEXT, slow):
                raise AssertionError(f"corpus: fast signing differs from the client's for record {rec['record_id']}")

    def sign_range(self, start: int, stop: int, prefix: str = "bn") -> list[Signed]:
        return [self.sign(n, prefix) for n in range(start, stop)]


def _template(name: str) -> dict[str, Any]:
    rec = json.loads((EXAMPLES / f"{name}.json").read_text())
    rec.update(platform=PLATFORM, record_id=_PLACEHOLDER)
    if "refs" in rec:
        rec["refs"] = {"record_id": _REF_PLACEHOLDER}
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


@dataclass(frozen=True)
class EntryChunk:
    """Bulk records ready to append at leaf index ``first``: what the
    committer writes for them (ledger/submit.py, ledger/derived.py)."""

    first: int
    entries: list[bytes]
    #: Each entry's stored form (ledger/entry_codec.py), as the sequencer
    #: would make it.
    stored: list[bytes]
    #: The ``record_index`` rows, as ``record_rows`` gives them.
    index_rows: list[dict[str, Any]]


def entry_chunk(args: tuple[bytes, int, int, int, int]) -> EntryChunk:
    """Bulk records [start, stop), logged at ``logged_at_ms`` from leaf
    index ``first``: signed, their entries, stored forms and rows made
    here, in a helper process, since none depends on the log."""
    seed, start, stop, logged_at_ms, first = args
    corpus = _get(seed)
    chunk = EntryChunk(first, [], [], [])
    for i, s in enumerate(map(corpus.sign_bulk, range(start, stop)), first):
        entry = entry_bytes(logged_at_ms, "record", s.canonical, s.signature)
        chunk.entries.append(entry)
        chunk.stored.append(encode_entry(entry))
        template = corpus.index_rows[s.template]
        chunk.index_rows.append(
            dict(
                template,
                leaf_index=i,
                record_id=s.record_id,
                ref_record_id=s.ref_record_id,
                logged_at_ms=logged_at_ms,
                record_hash=s.record_hash,
                key_id=corpus.key_id,
            )
        )
    return chunk
