"""Accepting platform records: verification outside the lock, group commit inside.

The work splits in two so that many request threads (and gunicorn workers)
verify in parallel while one sequencer appends:

1. :func:`verify_items`, in the request's thread: canonical form, size,
   the platform's key and its Ed25519 signature. No lock is held.
2. :class:`Committer`, one thread per process: takes every submission
   queued meanwhile and appends them in one transaction (group commit).
   Under the sequencing lock it re-checks what could have changed since
   step 1 (record_id still free or identical, referenced records present,
   key not revoked in between) and decides per submission: all its records
   are appended, or none.

Neither step reads the registry tables while nobody changes them: both
use the process's :class:`~ledger.registry.RegistryCache`, which the
committer checks against the log head under the lock (ledger/registry.py).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from keys.note import b64decode_exact
from keys.records import RECORD_CONTEXT, verify_signature
from ledger.db import driver_sql, in_list, on_sqlite
from ledger.derived import TupleRows, insert_values_rows, place_values, record_values
from ledger.entry_codec import encode_head, encode_tail, join_encoded
from ledger.errors import Conflict, InvalidInput, LedgerError, ProofError, Refused, StorageError, Unprocessable
from ledger.records.codes import CODES
from ledger.records.entries import ENTRY_HEAD_LENGTH, canonical, entry_head, entry_tail, format_time, join_entry
from ledger.registry import KeyState, RegistryCache, read_key_states
from ledger.sequencer import Plan, Sequencer
from ledger.storage import StoredCheckpoint
from ledger.tlog.frontier import AppendedTree
from ledger.tlog.tile import MAX_ENTRY_SIZE

logger = logging.getLogger(__name__)

MAX_GROUP = 5000
#: The most a signature object and the entry's frame add to a record.
ENTRY_FRAME = 200
PERMALINK = "/api/v1/platforms/{platform}/records/{record_id}"


def permalink(platform: str, record_id: str) -> str:
    return PERMALINK.format(platform=platform, record_id=record_id)


@dataclass(frozen=True)
class VerifiedRecord:
    """A record whose platform signature has been checked."""

    platform: str
    record_id: str
    type: str
    ref_record_id: str | None
    key_id: str
    #: What the sequencer writes, prepared here, in the request's thread,
    #: so that its lock is held only to number and date them: the entry
    #: after its ``logged_at`` (ledger.records.entries.entry_tail), its
    #: compressed form (ledger.entry_codec.encode_tail: the costliest step
    #: of the commit when it was done under the lock), and the derived rows
    #: as the driver takes them (ledger.derived.record_values: tuples, codes
    #: for the closed vocabularies) with leaf_index and logged_at_ms still 0,
    #: which the lock then only places. Nothing else: a follower
    #: worker pickles these to the leader (ledger/intake.py), and the parsed
    #: record and its canonical bytes (inside ``entry_tail``) quadrupled
    #: what that cost (48 against 12 µs a record, dumps and loads).
    entry_tail: bytes = field(default=b"", compare=False, repr=False)
    packed_tail: bytes | None = field(default=None, compare=False, repr=False)
    rows: TupleRows = field(default_factory=dict, compare=False, repr=False)
    record_hash: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def prepare(cls, record: dict[str, Any], body: bytes, signature: dict[str, str]) -> VerifiedRecord:
        """``record`` (canonical form ``body``) and its checked ``signature``."""
        refs = record.get("refs")
        ref = refs.get("record_id") if isinstance(refs, dict) else None
        record_hash = hashlib.sha256(body).digest()
        key_id = signature["key_id"]
        tail = entry_tail("record", body, signature)
        return cls(
            record["platform"],
            record["record_id"],
            record["type"],
            ref,
            key_id,
            tail,
            encode_tail(tail, ENTRY_HEAD_LENGTH),
            record_values(record, record_hash, key_id),
            record_hash,
        )


@dataclass(frozen=True)
class Placed:
    """Where one record is in the log."""

    status: str  # "created" or "existing"
    leaf_index: int
    logged_at_ms: int


@dataclass(frozen=True)
class Outcome:
    placed: list[Placed]
    checkpoint: StoredCheckpoint  # covers every record in ``placed``
    #: Proves the records this group appended in ``checkpoint``'s tree from
    #: memory (None if the group appended nothing).
    tree: AppendedTree | None = None


def verify_items(
    registry: RegistryCache, items: Sequence[dict[str, Any]], now_ms: int, bodies: Sequence[bytes] | None = None
) -> list[VerifiedRecord]:
    """Check items already validated against the schema: canonical size,
    keys and signatures. Raises with every problem found, or returns all.

    ``bodies``, if given, are the records' RFC 8785 bytes, as the validator
    made them (api/record_validator.py ``validate_parsed``); else they are
    made here."""
    errors: list[dict[str, object]] = []
    key_ids = sorted({it["signature"]["key_id"] for it in items})
    states = registry.key_states(key_ids)
    platforms = registry.known_platforms(sorted({it["record"]["platform"] for it in items}))
    seen: dict[tuple[str, str], int] = {}
    out: list[VerifiedRecord] = []
    for i, it in enumerate(items):
        rec, sig = it["record"], it["signature"]
        problem = _check_item(rec, sig, states.get(sig["key_id"]), rec["platform"] in platforms, now_ms)
        key = (rec["platform"], rec["record_id"])
        if problem is None and key in seen:
            problem = ("record/record_id", f"record_id repeats item {seen[key]} of this request")
        seen.setdefault(key, i)
        if problem is not None:
            errors.append({"index": i, "path": problem[0], "message": problem[1]})
            continue
        body = canonical(rec) if bodies is None else bodies[i]
        if len(body) + ENTRY_FRAME > MAX_ENTRY_SIZE:
            errors.append(
                {
                    "index": i,
                    "path": "record",
                    "message": f"the canonical record is {len(body)} bytes; "
                    f"a log entry holds at most {MAX_ENTRY_SIZE - ENTRY_FRAME}",
                }
            )
            continue
        try:
            verify_signature(
                states[sig["key_id"]].public_key, RECORD_CONTEXT, body, b64decode_exact(sig["value"], "signature")
            )
        except (ProofError, InvalidInput):
            errors.append(
                {
                    "index": i,
                    "path": "signature/value",
                    "message": "the signature does not verify over mdl/record/v1 and the RFC 8785 form of the record",
                }
            )
            continue
        out.append(VerifiedRecord.prepare(rec, body, sig))
    if errors:
        raise Unprocessable(f"{len(errors)} of {len(items)} records rejected; nothing was appended", errors)
    return out


def _check_item(
    rec: dict[str, Any], sig: dict[str, str], state: KeyState | None, platform_known: bool, now_ms: int
) -> tuple[str, str] | None:
    if not platform_known:
        return "record/platform", f"unknown platform {rec['platform']!r}: the operator has not registered it"
    problem = _key_problem(sig["key_id"], state, rec["platform"], now_ms)
    return None if problem is None else ("signature/key_id", problem)


def _key_problem(key_id: str, state: KeyState | None, platform: str, now_ms: int) -> str | None:
    """Why ``key_id`` may not sign for ``platform`` at ``now_ms``, or None.

    Asked twice: by the request's thread (from a cache) and by the
    sequencer under its lock (from the database), which decides.
    """
    if state is None:
        return f"unknown key {key_id}: not registered for any platform"
    if state.platform != platform:
        return f"key {key_id} belongs to platform {state.platform!r}, not {platform!r}"
    if state.revoked_from_ms is not None and now_ms >= state.revoked_from_ms:
        return f"key {key_id} was revoked from {format_time(state.revoked_from_ms)}: {state.revoked_reason}"
    if now_ms < state.valid_from_ms:
        return f"key {key_id} is valid only from {format_time(state.valid_from_ms)}"
    return None


@dataclass
class _Job:
    records: list[VerifiedRecord]
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: LedgerError | None = None
    placed: list[Placed] = field(default_factory=list)


@dataclass(frozen=True)
class _Known:
    leaf_index: int
    record_hash: bytes
    type: str
    logged_at_ms: int


class Committer:
    """Group commit of verified records: one thread per process appends what
    every request thread has queued, as one batch under one checkpoint."""

    def __init__(
        self,
        sequencer: Sequencer,
        max_group: int = MAX_GROUP,
        timeout: float = 60,
        registry: RegistryCache | None = None,
    ) -> None:
        self._sequencer = sequencer
        #: The registry as of the head, kept across groups; without one,
        #: each group reads its keys' states.
        self._registry = registry
        self._max_group = max_group
        self._timeout = timeout
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, recs: list[VerifiedRecord]) -> Outcome:
        """Append ``recs`` (all or none) and return where each landed."""
        self._ensure_thread()
        job = _Job(recs)
        self._queue.put(job)
        if not job.done.wait(self._timeout):
            # The batch may still commit; a retry with the same records is idempotent.
            raise StorageError("the log did not confirm the append in time; retry the same request")
        if job.error is not None:
            raise job.error
        assert job.outcome is not None
        return job.outcome

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ledger-committer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            count = len(jobs[0].records)
            while count < self._max_group:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                count += len(job.records)
            self._commit(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            result = self._sequencer.sequence(lambda s, size, now: _plan(s, size, now, jobs, self._registry))
        except LedgerError as e:
            if isinstance(e, Refused) and len(jobs) > 1:
                # One submission's data made the database refuse the whole
                # group: append each alone, so that only the one at fault fails.
                for job in jobs:
                    self._commit([job])
                return
            for job in jobs:
                job.error = e
                job.done.set()
            return
        except Exception as e:  # a bug: fail the requests, log it, keep the thread alive
            logger.exception("committer: append failed")
            for job in jobs:
                job.error = StorageError(f"internal error while appending: {type(e).__name__}")
                job.done.set()
            return
        if self._registry is not None:
            # Records only: the registry as of the group's start is still the
            # registry as of its end.
            self._registry.appended(result.first, result.checkpoint.size)
        for job in jobs:
            if job.error is None:
                job.outcome = Outcome(job.placed, result.checkpoint, result.tree)
            job.done.set()


#: The records already logged of one platform, by ID: completed by ``(?, ?,
#: ...)`` of the IDs, a range of the unique (platform, record_id) index of
#: ``record_index`` (migration 0015_fold_records). SQLite's lookup, and
#: PostgreSQL's of up to :data:`LOOKUP_LIST_MAX` IDs.
LOOKUP_SQL = (
    "SELECT record_id, leaf_index, record_hash, type, logged_at_ms FROM record_index "
    "WHERE platform = ? AND record_id IN "
)
#: PostgreSQL's of more IDs, the IDs one array parameter: a probe of that
#: index for each. Written as ``IN (...)`` (or ``= ANY(?)``) the lookup was
#: planned from the table's statistics, and on logs of some 10k-100k records
#: as a scan of the whole, wide ``record_index`` (or, with sequential scans
#: off, a bitmap scan of its every page by the platform's index), under the
#: sequencer's lock: up to 4.5 times the probes' CPU (18.8 against 4.1 ms of
#: the backend's for 2,000 new IDs at 30k records). The subquery's LIMIT
#: keeps it a subquery run for each ID (never a join the planner could turn
#: into a hash join over a scan), and its one condition on both key columns
#: leaves no plan but the probe of the unique index, with any statistics and
#: in psycopg's generic plan alike (docs/performance.md, session 11).
LOOKUP_SQL_PG = (
    "SELECT r.record_id, r.leaf_index, r.record_hash, r.type, r.logged_at_ms FROM unnest(?::text[]) AS k(id), "
    "LATERAL (SELECT record_id, leaf_index, record_hash, type, logged_at_ms FROM record_index "
    "WHERE platform = ? AND record_id = k.id LIMIT 1) AS r"
)
#: Up to this many IDs PostgreSQL's lookup stays ``IN (...)`` (one ID:
#: ``= ?`` on the whole unique key). The probes' statement has a fixed cost:
#: at 10k records, for 2-30 IDs, 40-90 µs more of the backend's CPU and
#: 50-90 more of the client's (the committer's, under the lock), where
#: ``IN (...)`` took the index too; at 100 the backends' costs met. A
#: planner that reads a table whole rather than probe it 32 times does so
#: only where it estimates the table cheaper to read than those probes.
LOOKUP_LIST_MAX = 32
#: A record type by its stored code (ledger/records/codes.py).
_TYPES: dict[int, str] = {code: name for name, code in CODES["type"].items()}


def lookup_statement(sqlite: bool, platform: str, ids: Sequence[str]) -> tuple[str, list[Any]]:
    """The statement and parameters that read the records logged under
    ``platform`` and ``ids`` (at most 2,000): :data:`LOOKUP_SQL` on SQLite
    and for up to :data:`LOOKUP_LIST_MAX` IDs, else :data:`LOOKUP_SQL_PG`."""
    if sqlite or len(ids) <= LOOKUP_LIST_MAX:
        return LOOKUP_SQL + in_list(len(ids)), [platform, *ids]
    return LOOKUP_SQL_PG, [list(ids), platform]


def _lookup(session: Session | Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], _Known]:
    """The records already logged under ``keys``, one query per platform and
    2,000 record_ids: on SQLite ``platform = ? AND record_id IN (...)``, one
    range of the (platform, record_id) index, where PostgreSQL planned a list
    of (platform, record_id) pairs as hundreds of OR-ed probes (56 ms per
    500); on PostgreSQL a probe of that index per ID (:func:`lookup_statement`)."""
    sqlite = on_sqlite(session)
    by_platform: dict[str, list[str]] = {}
    for platform, record_id in sorted(keys):
        by_platform.setdefault(platform, []).append(record_id)
    found: dict[tuple[str, str], _Known] = {}
    for platform, ids in by_platform.items():
        for i in range(0, len(ids), 2000):
            rows, _ = driver_sql(session, *lookup_statement(sqlite, platform, ids[i : i + 2000]))
            for record_id, leaf_index, rhash, type_, logged_at_ms in rows:
                found[(platform, record_id)] = _Known(leaf_index, bytes(rhash), _TYPES[type_], logged_at_ms)
    return found


def _plan(session: Connection, size: int, now: int, jobs: list[_Job], registry: RegistryCache | None = None) -> Plan:
    """Decide, under the lock, which submissions are appended and where."""
    all_recs = [r for job in jobs for r in job.records]
    wanted = {(r.platform, r.record_id) for r in all_recs}
    wanted |= {(r.platform, r.ref_record_id) for r in all_recs if r.ref_record_id}
    known = _lookup(session, wanted)
    if registry is not None:
        states = registry.at(session, size).keys
    else:
        states = read_key_states(session, sorted({r.key_id for r in all_recs}))
    entries: list[bytes] = []
    stored: list[bytes] = []
    derived: TupleRows = {}
    head = entry_head(now)
    packed_head = encode_head(head)
    for job in jobs:
        job.placed, job.error = [], None
        local: dict[tuple[str, str], _Known] = {}
        conflicts: list[dict[str, object]] = []
        unprocessable: list[dict[str, object]] = []
        placed: list[Placed] = []
        created = 0  # records of this job placed as new so far
        for i, r in enumerate(job.records):
            key = (r.platform, r.record_id)
            prior = known.get(key)
            if prior is not None:
                if prior.record_hash == r.record_hash:
                    placed.append(Placed("existing", prior.leaf_index, prior.logged_at_ms))
                else:
                    conflicts.append(
                        {
                            "index": i,
                            "path": "record/record_id",
                            "message": f"record_id {r.record_id!r} is already in the log with different content; "
                            "correct it with an amendment",
                            "existing": {"leaf_index": prior.leaf_index, "permalink": permalink(*key)},
                        }
                    )
                continue
            problem = _key_problem(r.key_id, states.get(r.key_id), r.platform, now)
            if problem is not None:
                unprocessable.append({"index": i, "path": "signature/key_id", "message": problem})
                continue
            if r.ref_record_id is not None:
                target = local.get((r.platform, r.ref_record_id)) or known.get((r.platform, r.ref_record_id))
                if target is None:
                    unprocessable.append(
                        {
                            "index": i,
                            "path": "record/refs/record_id",
                            "message": f"no record {r.ref_record_id!r} of platform {r.platform!r} is in the log",
                        }
                    )
                    continue
                # Appeals and amendments refer to decisions; a coverage
                # statement refers only to the statement it supersedes.
                kind = "coverage" if r.type == "coverage" else "decision"
                if target.type != kind:
                    unprocessable.append(
                        {
                            "index": i,
                            "path": "record/refs/record_id",
                            "message": f"record {r.ref_record_id!r} is a {target.type}; "
                            + (
                                "a coverage statement supersedes only an earlier coverage statement"
                                if kind == "coverage"
                                else "appeals and amendments refer to decisions"
                            ),
                        }
                    )
                    continue
            index = size + len(entries) + created
            created += 1
            local[key] = _Known(index, r.record_hash, r.type, now)
            placed.append(Placed("created", index, now))
        if conflicts:
            job.error = Conflict(
                f"{len(conflicts)} record_id(s) already logged with different content; nothing was appended",
                conflicts + unprocessable,
            )
            continue
        if unprocessable:
            job.error = Unprocessable(
                f"{len(unprocessable)} of {len(job.records)} records rejected; nothing was appended", unprocessable
            )
            continue
        for r, p in zip(job.records, placed, strict=True):
            if p.status != "created":
                continue
            if p.leaf_index != size + len(entries):
                raise AssertionError("submit: leaf index bookkeeping is off")
            entries.append(join_entry(head, r.entry_tail))
            stored.append(join_encoded(head, packed_head, r.entry_tail, r.packed_tail, ENTRY_HEAD_LENGTH))
            place_values(derived, r.rows, p.leaf_index, now)
        known.update(local)
        job.placed = placed

    def write_index(s: Connection, first: int) -> None:
        insert_values_rows(s, derived)

    return Plan(entries, write_index, stored)
