"""Submitting signed items in batches, verifying every answer.

:func:`submit_items` is the whole protocol: batches go to
``POST /api/v1/records``; each answer's checkpoint, entry hashes, inclusion
proofs and consistency with every checkpoint seen before are checked
(:mod:`client.verifying`) before the next batch is sent. Re-running after a
failure is safe: records already logged come back "existing".
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from client.http import RETRY_STATUSES, ClientError, Http, ProblemResponse, RetryPolicy, Unreachable
from client.signing import SignedItem, record_entry
from client.verifying import (
    Receipt,
    TrustStore,
    VerificationFailed,
    b64_hash,
    establish_trust,
    get_field,
    open_checkpoint,
    parse_receipt,
)
from keys.note import b64decode_exact
from ledger.errors import InvalidInput, ProofError
from ledger.records.entries import canonical, parse_entry
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.merkle import record_hash
from ledger.tlog.verify import verify_consistency, verify_inclusion

MAX_BATCH = 1000
RECORDS_PATH = "/api/v1/records"


class BatchRejected(ClientError):
    """The log refused a batch; nothing of that batch was appended."""


class Session:
    """One platform's conversation with one log: every answer is verified here.

    ``latest`` is the largest checkpoint seen; every other checkpoint seen
    has been proved consistent with it. With a ``store``, it persists.
    """

    def __init__(self, http: Http, vkey: str | None, store: TrustStore | None, warn: Callable[[str], None]) -> None:
        self.http, self.store = http, store
        self.latest: Checkpoint | None = None
        self.latest_note = ""
        self.verifier, note = establish_trust(http, vkey, store, warn)
        if note is not None:
            self.advance(open_checkpoint(note, self.verifier, "the pinned checkpoint"), note)
        elif store:
            store.put(http.base_url, self.verifier.to_key(), None)

    def advance(self, cp: Checkpoint, note: str) -> None:
        """Check ``cp`` is consistent with the latest checkpoint seen; keep the larger."""
        old = self.latest
        if old is not None:
            small, big = (old, cp) if old.size <= cp.size else (cp, old)
            proof: list[bytes] = []
            if small.size not in (0, big.size):
                try:
                    ans = self.http.get_json("/api/v1/proofs/consistency", {"first": small.size, "second": big.size})
                    proof = [b64_hash(h, "consistency_path") for h in get_field(ans, "consistency_path", list)]
                except (ProblemResponse, InvalidInput) as e:
                    raise VerificationFailed(
                        f"cannot check that the log's tree of size {big.size} extends that of size {small.size}: {e}"
                    ) from None
            try:
                verify_consistency(small, big, proof)
            except ProofError:
                raise VerificationFailed(
                    f"the log's trees of sizes {small.size} and {big.size} are not consistent: it forked its history"
                ) from None
            if cp.size <= old.size:
                return
        self.latest, self.latest_note = cp, note
        if self.store:
            self.store.put(self.http.base_url, self.verifier.to_key(), note)

    def submit(self, batch: list[SignedItem], first: int) -> list[Receipt]:
        """Submit ``batch`` (records ``first``+1 ...); return its verified receipts.

        A batch the server finds too large (413) is split in two and retried.
        """
        body = b'{"records":[' + b",".join(i.to_bytes() for i in batch) + b"]}"
        unconfirmed = f"records {first + 1}-{first + len(batch)} are not confirmed"
        try:
            _, answer = self.http.post_json(RECORDS_PATH, body)
        except ProblemResponse as e:
            if e.status == 413 and len(batch) > 1:
                half = len(batch) // 2
                return self.submit(batch[:half], first) + self.submit(batch[half:], first + half)
            if e.status not in RETRY_STATUSES:
                raise _rejected(e, batch, first) from None
            raise ClientError(f"{unconfirmed}: {e}{_resume(first)}") from None
        except Unreachable as e:
            raise Unreachable(f"{unconfirmed}: {e}{_resume(first)}") from None
        return self.verify_answer(batch, first, answer)

    def verify_answer(self, batch: list[SignedItem], first: int, answer: Any) -> list[Receipt]:
        """Verify the log's answer to ``batch``, record by record, against its checkpoint."""
        span = f"records {first + 1}-{first + len(batch)}"
        try:
            cpj = get_field(answer, "checkpoint", dict)
            note = get_field(cpj, "signed_note", str)
            records = get_field(answer, "records", list)
        except InvalidInput as e:
            raise VerificationFailed(f"malformed answer to {span}: {e}") from None
        cp = open_checkpoint(note, self.verifier, f"the checkpoint answering {span}")
        if cpj.get("tree_size") != cp.size or cpj.get("root_hash") != _b64(cp.root):
            raise VerificationFailed(
                f"the checkpoint answering {span}: tree_size/root_hash differ from its signed note"
            )
        if len(records) != len(batch):
            raise VerificationFailed(f"the answer to {span} has {len(records)} records, not {len(batch)}")
        self.advance(cp, note)
        pairs = enumerate(zip(batch, records, strict=True))
        return [self.verify_record(it, first + i + 1, r, cp, note) for i, (it, r) in pairs]

    def verify_record(self, item: SignedItem, number: int, r: Any, cp: Checkpoint, note: str) -> Receipt:
        """Check one record's answer: same record, entry hash, inclusion in ``cp``."""
        where = item.where(number)
        try:
            rc = parse_receipt(r, note)
            entry = record_entry(rc.logged_at, item.canonical_record, item.signature)
        except InvalidInput as e:
            raise VerificationFailed(f"{where}: malformed answer: {e}") from None
        if (rc.platform, rc.record_id) != (item.record.get("platform"), item.record.get("record_id")):
            raise VerificationFailed(f"{where}: the answer is about {rc.platform}/{rc.record_id}, another record")
        if rc.tree_size != cp.size:
            raise VerificationFailed(f"{where}: tree_size {rc.tree_size} is not the checkpoint's {cp.size}")
        if record_hash(entry) != rc.leaf_hash:
            if rc.status != "existing":
                raise VerificationFailed(f"{where}: leaf_hash is not the hash of the entry of this record")
            entry = self.check_logged_entry(item, rc, where)
        try:
            verify_inclusion(rc.leaf_hash, rc.leaf_index, rc.inclusion_path, cp)
        except ProofError:
            raise VerificationFailed(
                f"{where}: the inclusion proof of entry {rc.leaf_index} does not verify against the checkpoint "
                f"of tree size {cp.size}"
            ) from None
        return replace(rc, entry=entry)

    def check_logged_entry(self, item: SignedItem, rc: Receipt, where: str) -> bytes:
        """For an "existing" record whose entry we cannot rebuild (it was logged
        under another signature, e.g. before a key rotation), fetch the entry and
        check it holds this very record at this leaf hash; return the entry."""
        try:
            ans = self.http.get_json(f"/api/v1/entries/{rc.leaf_index}")
            data = b64decode_exact(get_field(ans, "entry", str), "entry")
            e = parse_entry(data)
        except (ProblemResponse, InvalidInput) as exc:
            raise VerificationFailed(f"{where}: cannot fetch logged entry {rc.leaf_index}: {exc}") from None
        if record_hash(data) != rc.leaf_hash or e.kind != "record" or e.canonical_body != item.canonical_record:
            raise VerificationFailed(f"{where}: entry {rc.leaf_index} does not hold this record")
        if e.logged_at != rc.logged_at:
            raise VerificationFailed(f"{where}: entry {rc.leaf_index} was logged at {e.logged_at}, not {rc.logged_at}")
        return data


def _rejected(e: ProblemResponse, batch: list[SignedItem], first: int) -> BatchRejected:
    """Say which records the log refused and why, one line each."""
    lines = [f"the log rejected records {first + 1}-{first + len(batch)}: {e}"]
    for err in e.errors:
        i = err.get("index")
        where = "request"
        if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(batch):
            where = batch[i].where(first + i + 1)
        path = err.get("path")
        path = ".".join(map(str, path)) if isinstance(path, list) else path
        msg = f"  {where}: {path or '(item)'}: {err.get('message')}"
        existing = err.get("existing", e.problem.get("existing"))
        if isinstance(existing, dict):
            msg += f" (logged as entry {existing.get('leaf_index')}: {existing.get('permalink')})"
        lines.append(msg)
    return BatchRejected("\n".join(lines) + _resume(first))


def _resume(first: int) -> str:
    if not first:
        return ""
    return f"\nrecords 1-{first} are logged; re-running is safe: they come back as existing, not appended twice"


@dataclass(frozen=True)
class SubmitSummary:
    """What a submission did: counts, and the latest verified checkpoint."""

    created: int
    existing: int
    tree_size: int
    checkpoint: str


def _batches(items: Iterable[SignedItem | Mapping[str, Any]], size: int) -> Iterator[list[SignedItem]]:
    batch: list[SignedItem] = []
    for n, it in enumerate(items, 1):
        try:
            batch.append(it if isinstance(it, SignedItem) else SignedItem.from_json(dict(it)))
        except (InvalidInput, TypeError, ValueError) as e:
            raise ClientError(f"record {n}: not a submission item: {e}") from None
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def submit_items(
    base_url: str,
    items: Iterable[SignedItem | Mapping[str, Any]],
    *,
    vkey: str | None = None,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    receipts: IO[str] | None = None,
    state: Path | None = None,
    warn: Callable[[str], None] | None = None,
    policy: RetryPolicy | None = None,
) -> SubmitSummary:
    """Submit signed items to the log at ``base_url`` and verify every answer.

    ``vkey`` is the log's verifier key; without it the key is taken from the
    ``state`` file, or else from the log itself (trust on first use, pinned
    in ``state`` if given, reported through ``warn``). ``progress`` is told
    how many records each batch settled; ``receipts`` gets one NDJSON line a
    record. Raises :class:`BatchRejected`, :class:`VerificationFailed` or
    another :class:`ClientError`; batches before the failing one stay logged,
    and re-running is safe because identical records come back "existing".
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ClientError(f"the batch size must be 1 to {MAX_BATCH}")
    note = warn or (lambda _msg: None)
    created = existing = done = 0
    with Http(base_url, policy=policy, on_retry=note) as http:
        session = Session(http, vkey, TrustStore(state) if state else None, note)
        for batch in _batches(items, batch_size):
            for rc in session.submit(batch, done):
                created += rc.status == "created"
                existing += rc.status == "existing"
                if receipts is not None:
                    receipts.write(canonical(rc.to_json()).decode() + "\n")
            if receipts is not None:
                receipts.flush()
            done += len(batch)
            if progress is not None:
                progress(len(batch))
    size = session.latest.size if session.latest else 0
    return SubmitSummary(created, existing, size, session.latest_note)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()
