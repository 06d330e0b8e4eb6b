"""What the auditor checks in what the log serves, pure: receipts, entries, watches.

No network and no command line here (client/audit.py has the commands).
A receipt is a c2sp.org/tlog-proof file whose ``extra`` line carries the
log entry (the format is described in client/audit.py); :class:`EntryAudit`
checks each entry of the log as the log should have accepted it; a
:class:`Watch` picks the new entries ``monitor`` prints.
"""

from __future__ import annotations

import base64
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from client.tiles import open_cp
from client.verifying import PROOF_HEADER as PROOF_HEADER
from client.verifying import TlogProof as TlogProof
from client.verifying import VerificationFailed, get_field
from client.verifying import parse_tlog_proof as parse_tlog_proof
from keys.note import Verifier, b64decode_exact
from keys.records import RECORD_CONTEXT, REGISTRY_CONTEXT, platform_key_id, verify_signature
from ledger.errors import InvalidInput, ProofError
from ledger.records.entries import parse_entry
from ledger.records.entry_check import parse_canonical_entry
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.merkle import check_record, record_hash


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Receipts (c2sp.org/tlog-proof, parsed in client/verifying.py) ------------------


def check_receipt(data: bytes, verifier: Verifier) -> tuple[TlogProof, Checkpoint]:
    """Verify a receipt offline: the checkpoint's signature, and the entry's inclusion.

    Raises :class:`InvalidInput` for a malformed file and
    :class:`VerificationFailed` for one that does not prove what it says.
    """
    p = parse_tlog_proof(data)
    if p.extra is None:
        raise InvalidInput("the receipt has no 'extra' line carrying the entry, so there is nothing to check")
    cp = open_cp(p.checkpoint, verifier, "the receipt's checkpoint")
    try:
        check_record(p.proof, cp.size, cp.root, p.index, record_hash(p.extra))
    except ProofError:
        raise VerificationFailed(
            f"the receipt's entry and inclusion proof do not lead to the root of the checkpoint of size {cp.size} "
            f"at index {p.index}"
        ) from None
    return p, cp


def describe_entry(data: bytes) -> str:
    try:
        e = parse_entry(data)
    except InvalidInput:
        return "an entry that is not a ledger entry"
    if e.kind == "record":
        return (
            f"record {e.body.get('platform')}/{e.body.get('record_id')} ({e.body.get('type')}), logged at {e.logged_at}"
        )
    return f"registry event {e.body.get('event')} for {e.body.get('platform')}, logged at {e.logged_at}"


# Entries ------------------------------------------------------------------------------


class EntryAudit:
    """Checks entries in log order as the log should have accepted them: each a
    canonical ledger entry; registry events signed by the log's key; each
    record signed by a key that an earlier registry entry added for its platform.

    Holds one public key per registered key, nothing per entry. Revocation
    times are not judged here: a revoked key's records stay valid log entries.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.log_key = verifier.public_key
        self.log_key_id = platform_key_id(verifier.public_key)
        self.keys: dict[str, tuple[str, bytes]] = {}  # key_id -> (platform, public key)
        self.checked = 0

    def check(self, index: int, data: bytes) -> None:
        """Raise :class:`VerificationFailed` naming entry ``index`` if it is not as it should be."""
        signed, added = self.signed(index, data)
        failed = verify_signed([signed])
        if failed is not None:
            raise failed[1]
        self.add_key(added)
        self.checked += 1

    def signed(self, index: int, data: bytes) -> tuple[Signed, NewKey | None]:
        """Check entry ``index`` but for its signature: return what the signature
        must verify, and the key a registry event adds (once it verifies)."""
        try:
            # The signature must be over the RFC 8785 form of the record; the
            # entry is checked canonical, so its body's bytes are that form.
            checked = parse_canonical_entry(data)
            e, body, sig = checked.entry, checked.body, checked.entry.signature
            value = b64decode_exact(get_field(sig, "value", str), "signature.value")
            key_id = get_field(sig, "key_id", str)
            if e.kind == "registry":
                if key_id != self.log_key_id:
                    raise ProofError(f"a registry event signed by key {key_id}, not the log's {self.log_key_id}")
                added = None
                if e.body.get("event") in ("platform_added", "key_added"):
                    key = get_field(e.body, "key", dict)
                    public = b64decode_exact(get_field(key, "public_key", str), "key.public_key")
                    added = (platform_key_id(public), get_field(e.body, "platform", str), public)
                return (index, self.log_key, REGISTRY_CONTEXT + body, value), added
            platform, public = self.keys.get(key_id, (None, b""))
            if platform != e.body.get("platform"):
                raise ProofError(f"signed by key {key_id}, which no earlier registry entry gave its platform")
            return (index, public, RECORD_CONTEXT + body, value), None
        except (InvalidInput, ProofError) as exc:
            raise VerificationFailed(f"entry {index}: {exc}") from None

    def add_key(self, added: NewKey | None) -> None:
        if added is not None:
            key_id, platform, public = added
            self.keys[key_id] = (platform, public)


#: (entry index, public key, signed message, signature value)
Signed = tuple[int, bytes, bytes, bytes]
#: (key_id, platform, public key) that a registry event adds
NewKey = tuple[str, str, bytes]


def verify_signed(batch: list[Signed]) -> tuple[int, VerificationFailed] | None:
    """Return the index and failure of the first signature in ``batch`` that does not verify, if any."""
    for index, public, message, value in batch:
        try:
            verify_signature(public, b"", message, value)
        except ProofError as exc:
            return index, VerificationFailed(f"entry {index}: {exc}")
    return None


class ParallelEntryAudit:
    """:class:`EntryAudit` over a whole log, with the Ed25519 verifications,
    most of its time, on ``jobs`` threads: PyNaCl calls libsodium through
    cffi, which releases the GIL for the call, so the threads verify on all
    cores while this one parses the next entries.

    :meth:`check` never raises; :meth:`finish` raises the failure of the
    lowest index, which is the failure :meth:`EntryAudit.check` in log order
    stops at. A registry event's key is trusted here before its signature
    has verified; if that signature fails, the event's own failure comes
    first, so nothing signed with that key can be the one reported.
    """

    BATCH = 256  # signatures per task: one entry bundle

    def __init__(self, verifier: Verifier, jobs: int) -> None:
        self.audit = EntryAudit(verifier)
        self.pool = ThreadPoolExecutor(max(1, jobs), thread_name_prefix="ed25519")
        self.jobs = max(1, jobs)
        self.batch: list[Signed] = []
        self.tasks: deque[Future[tuple[int, VerificationFailed] | None]] = deque()
        self.queued = 0  # entries whose signature was queued
        self.failure: VerificationFailed | None = None
        self.failure_index = -1

    def __enter__(self) -> ParallelEntryAudit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(cancel_futures=True)

    def check(self, index: int, data: bytes) -> None:
        if self.failure is not None and self.failure_index < index:
            return  # a failure of a lower index is already known
        try:
            signed, added = self.audit.signed(index, data)
        except VerificationFailed as e:
            self._failed(index, e)
            return
        self.audit.add_key(added)
        self.batch.append(signed)
        self.queued += 1
        if len(self.batch) >= self.BATCH:
            self._submit()

    def finish(self) -> int:
        """Wait for every signature; raise the first failure, else return how many entries verified."""
        self._submit()
        while self.tasks:
            self._collect()
        if self.failure is not None:
            raise self.failure
        return self.queued

    def _submit(self) -> None:
        if self.batch:
            self.tasks.append(self.pool.submit(verify_signed, self.batch))
            self.batch = []
        while len(self.tasks) > 2 * self.jobs:  # bounds the entries held in memory
            self._collect()

    def _collect(self) -> None:
        failed = self.tasks.popleft().result()
        if failed is not None:
            self._failed(*failed)

    def _failed(self, index: int, failure: VerificationFailed) -> None:
        if self.failure is None or index < self.failure_index:
            self.failure, self.failure_index = failure, index


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Watch:
    """Which new entries ``monitor`` prints; all given filters must match."""

    platform: str | None = None
    subject: str | None = None
    rule: str | None = None

    def __bool__(self) -> bool:
        return any((self.platform, self.subject, self.rule))

    def line(self, index: int, data: bytes) -> str | None:
        """The entry's one-line summary if it matches, else None."""
        try:
            e = parse_canonical_entry(data).entry
        except InvalidInput:
            return None
        b: dict[str, Any] = e.body
        if self.platform is not None and b.get("platform") != self.platform:
            return None
        if e.kind == "registry":
            return (
                None
                if self.subject or self.rule
                else f"{index} {e.logged_at} registry {b.get('event')} {b.get('platform')}"
            )
        decision = _obj(b.get("corrected")) if b.get("type") == "amendment" else b
        subject, rule_id = _obj(decision.get("account")).get("subject_key"), _obj(decision.get("rule")).get("id")
        if (self.subject and subject != self.subject) or (self.rule and rule_id != self.rule):
            return None
        parts = [str(index), e.logged_at, f"{b.get('platform')}/{b.get('record_id')}", str(b.get("type"))]
        parts += [
            f"{k}={v}" for k, v in (("rule", rule_id), ("subject", subject), ("action", decision.get("action"))) if v
        ]
        return " ".join(parts)
