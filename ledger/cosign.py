"""Witness cosigning, the log's side (c2sp.org/tlog-witness).

The operator configures witnesses (``WITNESSES``: a list of
``{"url": "<submission prefix>", "vkey": "<name>+<id>+<base64(0x04 || key)>"}``).
For each, :class:`Cosigner` submits the latest checkpoint with a
consistency proof from the size that witness last cosigned, verifies the
cosignatures it answers with against the configured keys, and stores the
valid ones in ``cosignatures``. ``GET /checkpoint`` serves the log's
signature followed by the stored cosignatures of that size.

Only cosignatures that verify under a configured witness key are stored.
Lines by other keys are counted and ignored, as the spec requires of
clients: serving them could make a client that trusts a key of that name
reject the whole note, and would let one witness bloat every checkpoint.

Crash safety: a witness persists its new size before it answers, and the
cosignature is committed here after. If this process dies in between, the
witness is one step ahead of what the database says; the next run sends the
stale old size, the witness answers 409 with its size, and the run resends
from there (at equal size and root a witness simply cosigns again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from keys.cosignature import CosignatureVerifier
from keys.note import Signature
from ledger import storage
from ledger.db import cosignatures, driver_sql, is_sqlite, once_more_if_lost, writer
from ledger.errors import InvalidInput, LedgerError, ProofError, StorageError
from ledger.log import Log
from ledger.storage import StoredCheckpoint
from ledger.tlog.witness import SIZE_CONTENT_TYPE, AddCheckpoint, parse_cosignatures, parse_size

#: c2sp.org/signed-note: verifiers must accept at least 16 signatures; the
#: log's own and this many cosignatures stay within that.
MAX_WITNESSES = 15
#: A witness answer larger than this is refused unread.
MAX_RESPONSE = 64 * 1024
#: add-checkpoint attempts per witness and round: the first, and one after a 409.
MAX_ATTEMPTS = 2
USER_AGENT = "moderation-ledger-cosigner/1"


class WitnessError(LedgerError):
    """A witness refused the checkpoint, answered nonsense, or could not be reached."""


@dataclass(frozen=True)
class Witness:
    """A configured witness: where to submit, and the key its cosignatures must verify under."""

    url: str
    verifier: CosignatureVerifier

    @property
    def key_id(self) -> str:
        return self.verifier.key_id.hex()

    @property
    def label(self) -> str:
        return f"{self.verifier.name} ({self.key_id})"


def _parse_url(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("witness url must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInput(f"witness url {value!r} must be an http(s) URL without query or fragment")
    return value.rstrip("/")


def parse_witnesses(value: object) -> tuple[Witness, ...]:
    """Parse the ``WITNESSES`` setting: a JSON list (or its text) of ``{"url", "vkey"}``.

    Key IDs and public keys must be distinct: a cosignature/v1 does not sign
    the witness's name, so one key under two names would count twice.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidInput('WITNESSES must be a JSON list of {"url", "vkey"} objects') from None
    if not isinstance(value, list):
        raise InvalidInput('WITNESSES must be a JSON list of {"url", "vkey"} objects')
    if len(value) > MAX_WITNESSES:
        raise InvalidInput(f"at most {MAX_WITNESSES} witnesses")
    out: list[Witness] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"url", "vkey"} or not isinstance(item["vkey"], str):
            raise InvalidInput(f"WITNESSES[{i}] must be an object with exactly a url and a vkey")
        try:
            w = Witness(_parse_url(item["url"]), CosignatureVerifier.from_key(item["vkey"]))
        except InvalidInput as e:
            raise InvalidInput(f"WITNESSES[{i}]: {e}") from None
        if any(o.key_id == w.key_id or o.verifier.public_key == w.verifier.public_key for o in out):
            raise InvalidInput(f"WITNESSES[{i}]: another witness has the same key or key ID")
        out.append(w)
    return tuple(out)


# Storage: every function takes the caller's session and none commits. --------


def cosignature_lines(session: Session, size: int) -> list[str]:
    """The stored cosignature lines of ``size``, newline-terminated, in a stable order."""
    rows, _ = driver_sql(session, _COSIGNATURE_LINES, (size,))
    return [line + "\n" for (line,) in rows]


# Fixed text on the driver: /checkpoint runs it on every request, and a Core
# statement built each time cost more than the rest of the answer.
_COSIGNATURE_LINES = "SELECT line FROM cosignatures WHERE size = ? ORDER BY witness_name, witness_key_id"


def cosigned_note(session: Session, cp: StoredCheckpoint) -> bytes:
    """The log's signed checkpoint followed by its stored cosignatures."""
    return cp.note + "".join(cosignature_lines(session, cp.size)).encode()


def latest_cosigned(session: Session) -> StoredCheckpoint | None:
    """The newest checkpoint with at least one cosignature, or None."""
    size = session.execute(select(func.max(cosignatures.c.size))).scalar()
    if size is None:
        return None
    cp = storage.checkpoint_at(session, size)
    if cp is None:
        raise AssertionError("a cosignature refers to a checkpoint the log did not sign")
    return cp


def witness_size(session: Session, key_id: str) -> int | None:
    """The largest size the witness with ``key_id`` cosigned, as far as the log knows."""
    return session.execute(
        select(func.max(cosignatures.c.size)).where(cosignatures.c.witness_key_id == key_id)
    ).scalar()


def insert_cosignatures(session: Session, size: int, sigs: Iterable[Signature], now_ms: int) -> None:
    """Store verified cosignatures of ``size``; one already stored for a key is kept as it is."""
    rows = [
        {
            "size": size,
            "witness_key_id": s.key_id.hex(),
            "witness_name": s.name,
            "line": s.line()[:-1],
            "created_at_ms": now_ms,
        }
        for s in sigs
    ]
    if not rows:
        return
    dialect: Any = sqlite if is_sqlite(session.get_bind().engine) else postgresql
    session.execute(dialect.insert(cosignatures).on_conflict_do_nothing(), rows)


# Submitting to witnesses. -----------------------------------------------------


@dataclass(frozen=True)
class CosignResult:
    """What one witness did with one checkpoint."""

    witness: Witness
    size: int
    ok: bool
    message: str


class Cosigner:
    """Asks every configured witness to cosign the log's latest checkpoint."""

    def __init__(
        self,
        log: Log,
        witnesses: Sequence[Witness],
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.log = log
        self.witnesses = tuple(witnesses)
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )

    def __enter__(self) -> Cosigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def run(self) -> list[CosignResult]:
        """One round: each witness in turn; one witness's failure does not stop the others."""
        with self.log.read() as s:
            cp = self.log.latest(s)
        results = []
        for w in self.witnesses:
            try:
                results.append(self._cosign(w, cp))
            except LedgerError as e:
                results.append(CosignResult(w, cp.size, False, f"witness {w.label}: {e}"))
        return results

    def _cosign(self, w: Witness, cp: StoredCheckpoint) -> CosignResult:
        with self.log.read() as s:
            last = witness_size(s, w.key_id)
        if last == cp.size:
            return CosignResult(w, cp.size, True, f"witness {w.label}: already cosigned size {cp.size}")
        old = last or 0
        for _ in range(MAX_ATTEMPTS):
            status, body = self._post(w, self._request(old, cp))
            if status == 200:
                return self._store(w, cp, body)
            if status != 409:
                raise WitnessError(f"HTTP {status}: {_excerpt(body)}")
            known = parse_size(body)
            if known == old:
                raise WitnessError(f"the witness holds another tree of size {known}: a split view")
            if known > cp.size:
                raise WitnessError(f"the witness cosigned size {known}, beyond the log's latest ({cp.size})")
            old = known  # it knows another size than we thought: prove from there
        raise WitnessError(f"the witness kept answering 409 (last: size {old})")

    def _request(self, old: int, cp: StoredCheckpoint) -> bytes:
        proof = self.log.consistency(old, cp.size).proof if old else []
        return AddCheckpoint(old, tuple(proof), cp.note).encode()

    def _post(self, w: Witness, body: bytes) -> tuple[int, bytes]:
        try:
            with self._client.stream("POST", w.url + "/add-checkpoint", content=body) as resp:
                data = b""
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > MAX_RESPONSE:
                        raise WitnessError(f"the answer exceeds {MAX_RESPONSE} bytes")
                if resp.status_code == 409 and resp.headers.get("Content-Type", "").split(";")[0] != SIZE_CONTENT_TYPE:
                    raise WitnessError(f"HTTP 409 without a {SIZE_CONTENT_TYPE} body: {_excerpt(data)}")
                return resp.status_code, data
        except httpx.HTTPError as e:
            raise WitnessError(f"cannot reach {w.url}: {e}") from None

    def _store(self, w: Witness, cp: StoredCheckpoint, body: bytes) -> CosignResult:
        """Verify the answer's lines against every configured key and store the valid ones."""
        sigs = parse_cosignatures(body)
        known = {(o.verifier.name, o.verifier.key_id): o.verifier for o in self.witnesses}
        text = self.log_text(cp)
        valid: list[Signature] = []
        unknown = 0
        for sig in sigs:
            v = known.get((sig.name, sig.key_id))
            if v is None:
                unknown += 1
            elif v.verify(text, sig.sig):
                valid.append(sig)
            else:
                raise ProofError(f"the witness answered with an invalid cosignature by {sig.name}")
        if not any(s.key_id == w.verifier.key_id and s.name == w.verifier.name for s in valid):
            raise WitnessError("the answer holds no cosignature by the witness's key")
        self._insert(cp.size, valid)
        extra = f" ({unknown} lines by unknown keys ignored)" if unknown else ""
        return CosignResult(w, cp.size, True, f"witness {w.label}: cosigned size {cp.size}{extra}")

    def _insert(self, size: int, valid: list[Signature]) -> None:
        """Store ``valid``, begun once more on a fresh connection if the pooled
        one proves lost (the pool no longer pings before a checkout: ledger/db.py).

        The insert keeps a cosignature already stored, so a second attempt
        after one that committed unseen changes nothing. Any other database
        error is a :class:`StorageError` naming this witness's round, so
        ``cosign --follow`` goes on with the next round instead of exiting.
        """

        def attempt() -> None:
            with Session(writer(self.log.engine)) as s, s.begin():
                insert_cosignatures(s, size, valid, time.time_ns() // 1_000_000)
                # Commit point: the cosignatures become servable together.

        try:
            once_more_if_lost(attempt)
        except DBAPIError as e:
            raise StorageError(f"cannot store the cosignatures: {type(e.orig).__name__}") from e

    @staticmethod
    def log_text(cp: StoredCheckpoint) -> bytes:
        """The note text of a stored checkpoint: what cosignatures sign."""
        split = cp.note.rfind(b"\n\n")
        if split < 0:
            raise AssertionError("stored checkpoint is not a signed note")
        return cp.note[: split + 1]


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text[:limit] + ("…" if len(text) > limit else "") or "(empty body)"
