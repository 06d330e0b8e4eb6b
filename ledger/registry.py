"""The platform registry: who may sign records for which platform, when.

Every change is itself a log entry, signed by the log's key, so the history
of keys is as verifiable as the records:

    {"logged_at": ..., "registry": <event>, "signature": {"key_id", "alg", "value"}}

where the signature is the log key's Ed25519 signature over
``mdl/registry/v1\\n`` + canonical(event) and ``key_id`` is the log key's
ID in the platform-key form (hex of the first 8 bytes of SHA-256 of the
public key). Events:

* ``{"event": "platform_added", "platform", "display_name", "key": {"key_id", "alg", "public_key"}}``
* ``{"event": "key_added", "platform", "key": {...}}``
* ``{"event": "key_revoked", "platform", "key_id", "revoked_from", "reason"}``

A key is valid from the ``logged_at`` of the entry that added it until the
``revoked_from`` time of its revocation, which may lie in the past (a key
reported compromised): records it signed before that stay in the log and
readers are told the key was revoked.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from keys.note import Signer
from keys.records import ALG, REGISTRY_CONTEXT, PlatformKey, platform_key_id
from ledger.db import driver_sql, in_list, key_revocations, platform_keys, platforms
from ledger.derived import insert_rows, registry_rows
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.records.entries import canonical, entry_bytes, format_time
from ledger.sequencer import AppendResult, Plan, Sequencer

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class KeyState:
    key_id: str
    platform: str
    public_key: bytes
    valid_from_ms: int
    revoked_from_ms: int | None
    revoked_reason: str | None

    def valid_at(self, ms: int) -> bool:
        return self.valid_from_ms <= ms and (self.revoked_from_ms is None or ms < self.revoked_from_ms)


def log_signature(signer: Signer, event: dict[str, Any]) -> dict[str, str]:
    """The log's signature object over a registry event."""
    sig = PlatformKey(signer.seed).sign(REGISTRY_CONTEXT, canonical(event))
    return {"key_id": platform_key_id(signer.verifier.public_key), "alg": ALG, "value": sig["value"]}


def _key_json(public_key: bytes) -> dict[str, str]:
    return {"key_id": platform_key_id(public_key), "alg": ALG, "public_key": base64.b64encode(public_key).decode()}


def read_key_states(session: Session | Connection, key_ids: list[str]) -> dict[str, KeyState]:
    """The registered state of each of ``key_ids`` that is registered.

    Read by the sequencer under its lock on every append, so through the
    driver with a fixed statement (ledger.db.driver_sql)."""
    states: dict[str, KeyState] = {}
    for i in range(0, len(key_ids), 500):
        chunk = key_ids[i : i + 500]
        rows, _ = driver_sql(
            session,
            "SELECT k.key_id, k.platform, k.public_key, k.valid_from_ms, r.revoked_from_ms, r.reason "
            "FROM platform_keys k LEFT OUTER JOIN key_revocations r ON r.key_id = k.key_id "
            f"WHERE k.key_id IN {in_list(len(chunk))}",
            chunk,
        )
        for key_id, platform, public_key, valid_from_ms, revoked_from_ms, reason in rows:
            states[key_id] = KeyState(key_id, platform, bytes(public_key), valid_from_ms, revoked_from_ms, reason)
    return states


def registry_version(session: Session | Connection) -> int:
    """The leaf index of the latest entry that changed who may sign for whom
    (a platform or key added, a key revoked), or -1 if none: the end of
    three unique indexes. Every such entry writes a row carrying its index
    in the same transaction (ledger/derived.py ``registry_rows``), so the
    registry as of any tree is the one of its version."""
    rows, _ = driver_sql(
        session,
        "SELECT (SELECT MAX(leaf_index) FROM platforms), (SELECT MAX(leaf_index) FROM platform_keys), "
        "(SELECT MAX(leaf_index) FROM key_revocations)",
    )
    return max((int(v) for v in rows[0] if v is not None), default=-1)


@dataclass(frozen=True)
class RegistrySnapshot:
    """Every key's state and every platform, as of registry ``version``."""

    version: int
    keys: dict[str, KeyState]
    platforms: frozenset[str]


def read_snapshot(session: Session | Connection) -> RegistrySnapshot:
    """The whole registry (a few rows per platform). The version is read
    first: on PostgreSQL each statement may see later commits, so the rows
    are at least as new as the version they are filed under, and a later
    check finds the version moved and reads them again, never the reverse."""
    version = registry_version(session)
    rows, _ = driver_sql(
        session,
        "SELECT k.key_id, k.platform, k.public_key, k.valid_from_ms, r.revoked_from_ms, r.reason "
        "FROM platform_keys k LEFT OUTER JOIN key_revocations r ON r.key_id = k.key_id",
    )
    keys = {row[0]: KeyState(row[0], row[1], bytes(row[2]), row[3], row[4], row[5]) for row in rows}
    slugs, _ = driver_sql(session, "SELECT slug FROM platforms")
    return RegistrySnapshot(version, keys, frozenset(s for (s,) in slugs))


def known_platforms(session: Session | Connection, slugs: list[str]) -> set[str]:
    return set(session.execute(select(platforms.c.slug).where(platforms.c.slug.in_(slugs))).scalars())


def list_platforms(session: Session) -> list[dict[str, Any]]:
    """Every platform with its keys, for the operator and the API."""
    plats = session.execute(select(platforms).order_by(platforms.c.slug)).all()
    keys = session.execute(
        select(
            platform_keys,
            key_revocations.c.revoked_from_ms,
            key_revocations.c.reason,
            key_revocations.c.leaf_index.label("revoked_leaf_index"),
        )
        .select_from(platform_keys.outerjoin(key_revocations))
        .order_by(platform_keys.c.valid_from_ms)
    ).all()
    out = []
    for p in plats:
        out.append(
            {
                "platform": p.slug,
                "display_name": p.display_name,
                "registered_at": format_time(p.created_at_ms),
                "leaf_index": p.leaf_index,
                "keys": [
                    {
                        "key_id": k.key_id,
                        "alg": ALG,
                        "public_key": base64.b64encode(k.public_key).decode(),
                        "valid_from": format_time(k.valid_from_ms),
                        "added_leaf_index": k.leaf_index,
                        "revoked_from": None if k.revoked_from_ms is None else format_time(k.revoked_from_ms),
                        "revocation_reason": k.reason,
                        "revoked_leaf_index": k.revoked_leaf_index,
                    }
                    for k in keys
                    if k.platform == p.slug
                ],
            }
        )
    return out


class RegistryCache:
    """Key states and platforms, kept per process and invalidated by registry entries.

    The whole registry is held as one :class:`RegistrySnapshot` filed
    under its version, the leaf index of the latest registry entry
    (:func:`registry_version`). It is read again only when that version
    has moved, so no request and no group commit reads the registry tables
    while nobody changes them.

    Two readers, two guarantees:

    * The sequencer (:meth:`at`, under its lock, in the append's
      transaction) decides. It trusts the snapshot without a query when the
      tree is still the size at which it last found it current (only this
      sequencer's record groups have been appended since, see
      :meth:`appended`); otherwise it reads the version, one query, and the
      registry only if the version moved. A revocation appended by any
      process or server moves the head first, so the next group sees it:
      a revoked key never signs a record logged after its revocation.
    * Request threads (:meth:`key_states`, :meth:`known_platforms`) only
      pre-check, to refuse early. They check the version at most every
      ``ttl`` seconds, and at once when a key or platform is not in the
      snapshot, so a key added anywhere is usable at once.
    """

    def __init__(self, read: Callable[[], AbstractContextManager[Session]], ttl: float = 1.0) -> None:
        self._read = read
        self._ttl = ttl
        self._guard = threading.Lock()
        self._snap: RegistrySnapshot | None = None
        self._checked_size = -1  # the tree size at which the sequencer last found _snap current
        self._checked_at = -float("inf")  # time.monotonic() of the last check by anyone

    # The sequencer ------------------------------------------------------------------

    def at(self, session: Session | Connection, size: int) -> RegistrySnapshot:
        """The registry of the tree of ``size``, read in ``session``, the
        sequencer's transaction, under its lock (nobody can append meanwhile)."""
        with self._guard:
            snap, checked = self._snap, self._checked_size
        if snap is not None and checked == size:
            return snap
        version = registry_version(session)
        if snap is None or version != snap.version:
            snap = read_snapshot(session)
        with self._guard:
            self._snap, self._checked_size, self._checked_at = snap, size, time.monotonic()
        return snap

    def appended(self, first: int, end: int) -> None:
        """The sequencer appended entries [first, end), none of them a registry entry."""
        with self._guard:
            if self._checked_size == first:
                self._checked_size = end

    def clear(self) -> None:
        """Forget everything: this process just changed the registry."""
        with self._guard:
            self._snap, self._checked_size, self._checked_at = None, -1, -float("inf")

    # Request threads ----------------------------------------------------------------

    def key_states(self, key_ids: list[str]) -> dict[str, KeyState]:
        snap = self._recent(lambda s: all(k in s.keys for k in key_ids))
        return {k: snap.keys[k] for k in key_ids if k in snap.keys}

    def known_platforms(self, slugs: list[str]) -> set[str]:
        snap = self._recent(lambda s: all(p in s.platforms for p in slugs))
        return {p for p in slugs if p in snap.platforms}

    def _recent(self, complete: Callable[[RegistrySnapshot], bool]) -> RegistrySnapshot:
        """The snapshot, checked against the database if it is older than
        ``ttl`` or lacks what the caller asks for (``complete``)."""
        with self._guard:
            snap, checked_at = self._snap, self._checked_at
        if snap is not None and time.monotonic() - checked_at < self._ttl and complete(snap):
            return snap
        now = time.monotonic()
        with self._read() as s:
            if snap is None or registry_version(s) != snap.version:
                snap = read_snapshot(s)
        with self._guard:
            # Never replace a newer snapshot (the sequencer's, say) with an
            # older one read meanwhile: versions only grow.
            if self._snap is None or snap.version > self._snap.version:
                self._snap = snap
            elif self._snap.version > snap.version:
                snap = self._snap
            self._checked_at = max(self._checked_at, now)
        return snap


class Registry:
    """Changes to the registry, each appended to the log by the sequencer."""

    def __init__(self, sequencer: Sequencer, signer: Signer, cache: RegistryCache | None = None) -> None:
        self._sequencer = sequencer
        self._signer = signer
        self._cache = cache

    def _append(self, event: dict[str, Any] | Callable[[], dict[str, Any]], check: Any) -> AppendResult:
        """Append ``event`` (or the event ``event()`` builds after ``check``)
        with the rows it derives (ledger/derived.py)."""

        def plan(session: Connection, size: int, now: int) -> Plan:
            check(session)
            ev = event() if callable(event) else event
            entry = entry_bytes(now, "registry", canonical(ev), log_signature(self._signer, ev))
            return Plan([entry], lambda s, first: insert_rows(s, registry_rows(first, now, ev)))

        try:
            return self._sequencer.sequence(plan)
        finally:
            if self._cache is not None:
                self._cache.clear()

    def add_platform(self, slug: str, display_name: str, public_key: bytes) -> AppendResult:
        if not SLUG.fullmatch(slug):
            raise InvalidInput("a platform slug is 1-63 characters: a-z, 0-9 and '-', not starting with '-'")
        if not 1 <= len(display_name) <= 200 or not display_name.isprintable():
            raise InvalidInput("a platform name is 1-200 printable characters")
        key = _key_json(public_key)
        event = {"event": "platform_added", "platform": slug, "display_name": display_name, "key": key}

        def check(s: Connection) -> None:
            if known_platforms(s, [slug]):
                raise Conflict(f"platform {slug!r} is already registered")
            if read_key_states(s, [key["key_id"]]):
                raise Conflict(f"key {key['key_id']} is already registered")

        return self._append(event, check)

    def add_key(self, slug: str, public_key: bytes) -> AppendResult:
        key = _key_json(public_key)
        event = {"event": "key_added", "platform": slug, "key": key}

        def check(s: Connection) -> None:
            if not known_platforms(s, [slug]):
                raise NotFound(f"no platform {slug!r}")
            if read_key_states(s, [key["key_id"]]):
                raise Conflict(f"key {key['key_id']} is already registered")

        return self._append(event, check)

    def revoke_key(self, key_id: str, revoked_from_ms: int, reason: str) -> AppendResult:
        if not 1 <= len(reason) <= 500:
            raise InvalidInput("a revocation reason is 1-500 characters")
        state: list[KeyState] = []

        def check(s: Connection) -> None:
            found = read_key_states(s, [key_id])
            if key_id not in found:
                raise NotFound(f"no key {key_id!r}")
            if found[key_id].revoked_from_ms is not None:
                raise Conflict(f"key {key_id} is already revoked")
            state.append(found[key_id])

        # The event names the platform, which only the check can look up.
        def event() -> dict[str, Any]:
            return {
                "event": "key_revoked",
                "platform": state[0].platform,
                "key_id": key_id,
                "revoked_from": format_time(revoked_from_ms),
                "reason": reason,
            }

        return self._append(event, check)
