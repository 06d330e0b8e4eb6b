"""The platform's side of the ledger: signed records and verified submission.

A platform signs each record with its Ed25519 key (the bytes
``mdl/record/v1\\n`` + RFC 8785 canonical record; docs/signing.md) and
submits signed items in batches. Nothing the log answers is believed unchecked:

* every checkpoint is signed by the log's key (given out of band, or pinned
  on first use in a state file);
* each record's log entry, rebuilt here from the record, its signature and
  the ``logged_at`` the log assigned, hashes to the returned leaf hash, and
  that leaf is in the checkpoint's tree (RFC 9162 §2.1.3);
* each checkpoint is consistent with every other one this client has seen,
  in this run or, through the state file, an earlier one (§2.1.4), so the
  log cannot show it two histories.

Only ``status`` and ``permalink`` are taken on trust; neither is evidence.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from client.http import RETRY_STATUSES, ClientError, Http, ProblemResponse, RetryPolicy, Unreachable
from keys.note import Verifier, b64decode_exact
from keys.records import ALG, RECORD_CONTEXT, PlatformKey
from ledger.errors import InvalidInput, LedgerError, ProofError
from ledger.records import times
from ledger.records.entries import canonical, entry_bytes, format_time, parse_entry
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.merkle import HASH_SIZE, record_hash
from ledger.tlog.verify import verify_checkpoint, verify_consistency, verify_inclusion

MAX_BATCH = 1000
RECORDS_PATH = "/api/v1/records"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
T = TypeVar("T")


class VerificationFailed(ClientError):
    """The log's answer does not prove what it claims. Never retried."""


class BatchRejected(ClientError):
    """The log refused a batch; nothing of that batch was appended."""


# Signed items ---------------------------------------------------------------


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


# Receipts and answers ---------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """Proof that one record is in the log: everything needed to re-verify it offline."""

    platform: str
    record_id: str
    status: str
    leaf_index: int
    leaf_hash: bytes
    logged_at: str
    tree_size: int
    inclusion_path: list[bytes]
    permalink: str
    checkpoint: str

    def to_json(self) -> dict[str, Any]:
        """The receipt line (``status`` left out: a re-run writes the same receipts)."""
        out = {k: v for k, v in asdict(self).items() if k != "status"}
        return {**out, "leaf_hash": _b64(self.leaf_hash), "inclusion_path": [_b64(h) for h in self.inclusion_path]}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def get_field(obj: Any, key: str, kind: type[T]) -> T:
    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise InvalidInput(f"{key}: missing or not a {kind.__name__}")
    return v


def b64_hash(s: Any, what: str) -> bytes:
    raw = b64decode_exact(s, what) if isinstance(s, str) else b""
    if len(raw) != HASH_SIZE:
        raise InvalidInput(f"{what}: not the base64 of a {HASH_SIZE}-byte hash")
    return raw


def _receipt(r: Any, note: str) -> Receipt:
    """Parse one element of the answer's ``records``; no verification yet."""
    status = get_field(r, "status", str)
    if status not in ("created", "existing"):
        raise InvalidInput(f"status: unknown value {status!r}")
    path = get_field(r, "inclusion_path", list)
    return Receipt(
        platform=get_field(r, "platform", str),
        record_id=get_field(r, "record_id", str),
        status=status,
        leaf_index=get_field(r, "leaf_index", int),
        leaf_hash=b64_hash(r.get("leaf_hash"), "leaf_hash"),
        logged_at=get_field(r, "logged_at", str),
        tree_size=get_field(r, "tree_size", int),
        inclusion_path=[b64_hash(h, "inclusion_path") for h in path],
        permalink=get_field(r, "permalink", str),
        checkpoint=note,
    )


# Trust: the log's key and the latest checkpoint seen ----------------------------


class TrustStore:
    """A JSON state file: per log URL, the pinned verifier key and latest checkpoint.

    Like ssh's known_hosts: the first run pins what the log serves; later
    runs hold the log to it. Rewritten atomically (temp file + rename).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text()) if path.exists() else {"version": 1, "logs": {}}
        except (OSError, ValueError) as e:
            raise ClientError(f"cannot read state file {path}: {e}") from None
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("logs"), dict):
            raise ClientError(f"state file {path} is not an mdl state file (version 1)")
        self.data = data

    def get(self, url: str) -> dict[str, str]:
        """The pinned ``verifier_key`` and ``checkpoint`` (signed note) of ``url``, where present."""
        entry = self.data["logs"].get(url)
        entry = entry if isinstance(entry, dict) else {}
        return {k: v for k, v in entry.items() if k in ("verifier_key", "checkpoint") and isinstance(v, str)}

    def put(self, url: str, vkey: str, checkpoint: str | None) -> None:
        self.data["logs"][url] = {"verifier_key": vkey, **({"checkpoint": checkpoint} if checkpoint else {})}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)


def _verifier(vkey: str, source: str) -> Verifier:
    try:
        return Verifier.from_key(vkey.strip())
    except InvalidInput as e:
        raise ClientError(f"{source}: {e}") from None


def _open(note: str, verifier: Verifier, what: str) -> Checkpoint:
    try:
        return verify_checkpoint(note.encode(), verifier)
    except LedgerError as e:
        raise VerificationFailed(f"{what} is not a checkpoint signed by the log's key: {e}") from None


def establish_trust(
    http: Http, vkey: str | None, store: TrustStore | None, warn: Callable[[str], None]
) -> tuple[Verifier, str | None]:
    """Decide which key the log's checkpoints must verify under.

    In order: ``vkey`` (given out of band; it must agree with the store),
    the key pinned in ``store``, or, trust on first use, the key the log
    serves, with a warning. Returns it with the signed note of the latest
    checkpoint already known (pinned, or served with the key), if any.
    """
    pinned = store.get(http.base_url) if store else {}
    if vkey is not None:
        verifier = _verifier(vkey, "--vkey")
        if "verifier_key" in pinned and pinned["verifier_key"] != verifier.to_key():
            raise ClientError(
                f"the state file {store.path if store else ''} pins another key for {http.base_url}: "
                f"{pinned['verifier_key']}; if the log really changed its key, remove that entry"
            )
        return verifier, pinned.get("checkpoint")
    if "verifier_key" in pinned:
        return _verifier(pinned["verifier_key"], f"the state file {store.path if store else ''}"), pinned.get(
            "checkpoint"
        )
    info = http.get_json("/api/v1/log")
    try:
        verifier = _verifier(get_field(info, "verifier_key", str), "the log's verifier_key")
        note = get_field(get_field(info, "checkpoint", dict), "signed_note", str)
    except InvalidInput as e:
        raise VerificationFailed(f"malformed answer from /api/v1/log: {e}") from None
    where = f"pinned in {store.path}" if store else "trusted for this run only"
    warn(
        f"warning: no --vkey given, so the log's own key {verifier.to_key()} is {where}. "
        "Check it against the key the log operator publishes."
    )
    return verifier, note


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
            self.advance(_open(note, self.verifier, "the pinned checkpoint"), note)
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
        cp = _open(note, self.verifier, f"the checkpoint answering {span}")
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
            rc = _receipt(r, note)
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
            self.check_logged_entry(item, rc, where)
        try:
            verify_inclusion(rc.leaf_hash, rc.leaf_index, rc.inclusion_path, cp)
        except ProofError:
            raise VerificationFailed(
                f"{where}: the inclusion proof of entry {rc.leaf_index} does not verify against the checkpoint "
                f"of tree size {cp.size}"
            ) from None
        return rc

    def check_logged_entry(self, item: SignedItem, rc: Receipt, where: str) -> None:
        """For an "existing" record whose entry we cannot rebuild (it was logged
        under another signature, e.g. before a key rotation), fetch the entry and
        check it holds this very record at this leaf hash."""
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
