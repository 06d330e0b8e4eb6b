"""What the auditor checks in what the log serves, pure: receipts, entries, watches.

No network and no command line here (client/audit.py has the commands).
A receipt is a c2sp.org/tlog-proof file whose ``extra`` line carries the
log entry (the format is described in client/audit.py); :class:`EntryAudit`
checks each entry of the log as the log should have accepted it; a
:class:`Watch` picks the new entries ``monitor`` prints.
"""

from __future__ import annotations

import base64
import multiprocessing as mp
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
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
from ledger.tlog.tile import TILE_WIDTH, parse_bundle, tile_hash


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
    """:class:`EntryAudit` over a whole log on ``jobs`` worker processes, each
    checking whole bundles of :attr:`BATCH` entries (parse, canonical form,
    key, Ed25519), while this process fetches and hashes the next bundles.

    Processes, not threads: only the Ed25519 call releases the GIL, and the
    parsing around it (a fifth of an entry's time) kept a thread-pool audit
    at half the cores. A bundle per task amortises what a task costs (about
    0.4 MB pickled through a pipe, a few µs an entry).

    Key states: a worker is given the keys that the registry entries before
    its bundle added, and adds those of its bundle itself, in order. This
    process finds them first, checking every entry that could be a registry
    event (any whose bytes hold ``"registry":``, which the canonical form of
    each one does) as :meth:`EntryAudit.signed` does; so a record is judged
    by the keys that the entries before it added, as in log order. A
    registry event's key is trusted here before its signature has verified;
    if that signature fails, the event's own failure comes first, so nothing
    signed with that key can be the one reported.

    :meth:`check` never raises; :meth:`finish` raises the failure of the
    lowest index, which is the failure :meth:`EntryAudit.check` in log order
    stops at: results are collected in bundle order, and a worker stops at
    the first failure of its bundle. ``jobs`` = 1 checks in this process.
    """

    BATCH = 256  # entries per task: one entry bundle

    def __init__(self, verifier: Verifier, jobs: int) -> None:
        self.audit = EntryAudit(verifier)
        self.jobs = max(1, jobs)
        # Forked before the caller starts fetching on threads: a fork copies one thread.
        self.pool = worker_pool(self.jobs, _start_worker, (verifier.to_key(),)) if self.jobs > 1 else None
        self.first = 0  # the index of the batch's first entry
        self.batch: list[bytes] = []
        self.keys: dict[str, tuple[str, bytes]] = {}  # the keys added before the batch
        self.tasks: deque[AsyncResult[Any]] = deque()
        self.given = 0  # entries given to bundle()
        self.parts: list[bytes] = []  # bundle(): the hashes of each bundle, in order
        self.checked = 0
        self.failure: VerificationFailed | None = None
        self.failure_index = -1

    def __enter__(self) -> ParallelEntryAudit:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def check(self, index: int, data: bytes) -> None:
        if self.failure is not None:
            return  # entries come in log order: a failure of a lower index is already known
        if self.pool is None:
            try:
                self.audit.check(index, data)
            except VerificationFailed as e:
                self._failed(index, e)
            self.checked = self.audit.checked
            return
        if not self.batch:
            self.first, self.keys = index, dict(self.audit.keys)
        elif index != self.first + len(self.batch):
            raise AssertionError(f"ParallelEntryAudit: entry {index} out of order")
        self.batch.append(data)
        if b'"registry":' in data:
            self._registry(index, data)
        if len(self.batch) >= self.BATCH:
            self._submit()

    def bundle(self, first: int, width: int, served: int, data: bytes, path: str) -> None:
        """Split, hash and check an entry bundle as served, entries ``first`` to
        ``first + width - 1``, after the entries given so far. ``data`` must
        hold ``served`` entries (more than ``width`` when a full bundle was
        served for a partial one: the rest is cut).

        The bundle goes to a worker as one bytes object, which splits it, hashes
        every leaf (and a full bundle into its level-0 tile hash) and checks
        the entries: this process only fetches, finds registry events, and
        folds the hashes into the tree (:meth:`hashes`). Raises
        :class:`VerificationFailed` for a malformed bundle (``path`` names it),
        here with one job, else once it is collected. Not to be mixed with :meth:`check`.
        """
        if self.batch:
            raise AssertionError("ParallelEntryAudit: bundle() after check()")
        if first != self.first + self.given:
            raise AssertionError(f"ParallelEntryAudit: bundle at {first} out of order")
        self.given += width
        if self.pool is None:
            self._bundle_done(_hash_and_check(self.audit, first, width, served, data, path, self.failure is None))
            self.checked = self.audit.checked
            return
        keys = dict(self.audit.keys)
        if b'"registry":' in data:
            try:
                entries = parse_bundle(data, served)[:width]
            except InvalidInput:
                entries = []  # the worker reports it
            for i, entry in enumerate(entries, first):
                if b'"registry":' in entry:
                    self._registry(i, entry)
        self.tasks.append(self.pool.apply_async(_bundle_task, (first, width, served, data, path, keys)))
        while len(self.tasks) > 2 * self.jobs:
            self._collect()

    def hashes(self) -> list[bytes]:
        """Wait for every bundle given to :meth:`bundle`; return, in order, each
        full bundle's level-0 tile hash and the leaf hashes of a partial one
        (concatenated). Raises a malformed bundle's failure, not an entry's."""
        while self.tasks:
            self._collect()
        return self.parts

    def finish(self) -> int:
        """Wait for every bundle; raise the first failure, else return how many entries verified."""
        self._submit()
        while self.tasks:
            self._collect()
        if self.failure is not None:
            raise self.failure
        return self.checked

    def _registry(self, index: int, data: bytes) -> None:
        """Add the key that entry ``index`` adds, if it is a registry event that adds one."""
        try:
            _, added = self.audit.signed(index, data)
        except VerificationFailed:
            return  # the worker reports it, at this index
        self.audit.add_key(added)

    def _submit(self) -> None:
        if self.batch and self.pool is not None:
            self.tasks.append(self.pool.apply_async(_check_bundle, (self.first, self.batch, self.keys)))
            self.batch = []
        while len(self.tasks) > 2 * self.jobs:  # bounds the entries held in memory
            self._collect()

    def _collect(self) -> None:
        result = self.tasks.popleft().get()
        if len(result) == 3:
            self._bundle_done(result)
            return
        checked, failed = result
        self.checked += checked
        if failed is not None:
            self._failed(failed[0], VerificationFailed(failed[1]))

    def _bundle_done(self, result: _HashedBundle) -> None:
        checked, failed, part = result
        if isinstance(part, str):
            raise VerificationFailed(part)
        self.parts.append(part)
        if self.pool is not None:
            self.checked += checked
        if failed is not None:
            self._failed(failed[0], VerificationFailed(failed[1]))

    def _failed(self, index: int, failure: VerificationFailed) -> None:
        if self.failure is None or index < self.failure_index:
            self.failure, self.failure_index = failure, index


#: (entries verified, and the index and message of the first failure, if any)
_BundleResult = tuple[int, tuple[int, str] | None]
_worker_audit: EntryAudit | None = None


def worker_pool(jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()) -> Pool:
    """``jobs`` worker processes for checking entries, to be terminated by the caller.

    Forked where that is safe and cheap (Linux): the workers start with every
    module loaded. Create the pool before starting any thread, as a fork
    copies only the thread that forks. Elsewhere (macOS, Windows) they are
    spawned, and each imports the client.
    """
    method = "fork" if sys.platform == "linux" else "spawn"
    return mp.get_context(method).Pool(jobs, initializer=initializer, initargs=initargs)


def _start_worker(vkey: str) -> None:
    global _worker_audit
    _worker_audit = EntryAudit(Verifier.from_key(vkey))


def _check_bundle(first: int, entries: list[bytes], keys: dict[str, tuple[str, bytes]]) -> _BundleResult:
    """Check entries ``first``, ``first + 1``, ... in order, given the keys added before them."""
    audit = _worker_audit
    if audit is None:
        raise AssertionError("ParallelEntryAudit: a worker that was not started")
    audit.keys, audit.checked = keys, 0
    for i, data in enumerate(entries, first):
        try:
            audit.check(i, data)
        except VerificationFailed as e:
            return audit.checked, (i, str(e))
    return audit.checked, None


#: (entries verified, the first failure if any, and the bundle's hashes: its
#: level-0 tile hash if full, else its leaf hashes concatenated; or, for a
#: malformed bundle, the message saying so)
_HashedBundle = tuple[int, tuple[int, str] | None, bytes | str]


def _hash_and_check(
    audit: EntryAudit, first: int, width: int, served: int, data: bytes, path: str, check: bool
) -> _HashedBundle:
    """Split a bundle, hash its leaves, and check its entries in order (if
    ``check``) with ``audit``'s keys; stop checking at the first failure."""
    try:
        entries = parse_bundle(data, served)[:width]
    except InvalidInput as e:
        return 0, None, f"the entry bundle {path} is malformed: {e}"
    leaves = b"".join([record_hash(e) for e in entries])
    part = tile_hash(leaves) if width == TILE_WIDTH else leaves
    if check:
        before = audit.checked
        for i, entry in enumerate(entries, first):
            try:
                audit.check(i, entry)
            except VerificationFailed as e:
                return audit.checked - before, (i, str(e)), part
        return audit.checked - before, None, part
    return 0, None, part


def _bundle_task(
    first: int, width: int, served: int, data: bytes, path: str, keys: dict[str, tuple[str, bytes]]
) -> _HashedBundle:
    audit = _worker_audit
    if audit is None:
        raise AssertionError("ParallelEntryAudit: a worker that was not started")
    audit.keys, audit.checked = keys, 0
    return _hash_and_check(audit, first, width, served, data, path, True)


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
