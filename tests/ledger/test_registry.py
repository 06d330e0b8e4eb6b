"""The platform registry: every change is a log entry signed by the log."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy.orm import Session

from keys.records import REGISTRY_CONTEXT, PlatformKey, platform_key_id, verify_signature
from ledger import registry, storage
from ledger.errors import Conflict, InvalidInput, NotFound, Unprocessable
from ledger.log import Log
from ledger.records.entries import canonical, parse_entry
from ledger.registry import list_platforms, read_key_states
from ledger.submit import verify_items
from tests.checklog import check_log
from tests.recordkit import decision, sign

KEY_A = PlatformKey(bytes([1]) * 32)
KEY_B = PlatformKey(bytes([2]) * 32)


def _entry(log: Log, index: int) -> dict:
    with log.read() as s:
        e = parse_entry(storage.read_entries(s, index, index + 1)[0])
    assert e.kind == "registry"
    # Signed by the log's key, verifiable from the entry alone.
    assert e.signature["key_id"] == platform_key_id(log.verifier.public_key)
    verify_signature(
        log.verifier.public_key, REGISTRY_CONTEXT, canonical(e.body), base64.b64decode(e.signature["value"])
    )
    return e.body


def test_registry_changes_are_signed_log_entries(log: Log) -> None:
    r1 = log.registry.add_platform("example-social", "Example Social", KEY_A.public_key)
    assert _entry(log, r1.first) == {
        "event": "platform_added",
        "platform": "example-social",
        "display_name": "Example Social",
        "key": {"key_id": KEY_A.key_id, "alg": "ed25519", "public_key": base64.b64encode(KEY_A.public_key).decode()},
    }
    r2 = log.registry.add_key("example-social", KEY_B.public_key)
    assert _entry(log, r2.first)["event"] == "key_added"
    r3 = log.registry.revoke_key(KEY_A.key_id, 1_700_000_000_000, "leaked in a breach")
    assert _entry(log, r3.first) == {
        "event": "key_revoked",
        "platform": "example-social",
        "key_id": KEY_A.key_id,
        "revoked_from": "2023-11-14T22:13:20.000Z",
        "reason": "leaked in a breach",
    }
    with log.read() as s:
        states = read_key_states(s, [KEY_A.key_id, KEY_B.key_id])
        plats = list_platforms(s)
    assert states[KEY_A.key_id].revoked_from_ms == 1_700_000_000_000
    assert not states[KEY_A.key_id].valid_at(1_700_000_000_000)
    assert states[KEY_B.key_id].revoked_from_ms is None
    assert [k["key_id"] for k in plats[0]["keys"]] == [KEY_A.key_id, KEY_B.key_id]
    assert plats[0]["keys"][0]["revoked_leaf_index"] == r3.first
    check_log(log)


def test_registry_rejects_bad_changes_and_appends_nothing(log: Log) -> None:
    log.registry.add_platform("p1", "P One", KEY_A.public_key)
    with log.read() as s:
        size = log.latest(s).size
    with pytest.raises(Conflict, match="already registered"):
        log.registry.add_platform("p1", "Again", KEY_B.public_key)
    with pytest.raises(Conflict, match="already registered"):
        log.registry.add_platform("p2", "Same key", KEY_A.public_key)
    with pytest.raises(InvalidInput, match="slug"):
        log.registry.add_platform("Bad Slug", "x", KEY_B.public_key)
    with pytest.raises(NotFound):
        log.registry.add_key("nope", KEY_B.public_key)
    with pytest.raises(NotFound):
        log.registry.revoke_key("0000000000000000", 0, "x")
    log.registry.revoke_key(KEY_A.key_id, 0, "rotated")
    with pytest.raises(Conflict, match="already revoked"):
        log.registry.revoke_key(KEY_A.key_id, 0, "again")
    with log.read() as s:
        assert log.latest(s).size == size + 1
    check_log(log)


def test_platform_cli(runner, app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pub = tmp_path / "pub.txt"
    pub.write_text(base64.b64encode(KEY_A.public_key).decode() + "\n")
    res = runner.invoke(args=["ledger", "platform", "add", "civic", "--name", "Civic Net", "--public-key", f"@{pub}"])
    assert res.exit_code == 0, res.output
    assert "registered platform civic: log entry 0" in res.output
    res = runner.invoke(args=["ledger", "platform", "add", "civic", "--name", "x", "--public-key", f"@{pub}"])
    assert res.exit_code == 1
    assert "already registered" in res.output
    res = runner.invoke(
        args=["ledger", "platform", "revoke-key", KEY_A.key_id, "--reason", "lost", "--from", "2026-01-01T00:00:00Z"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(args=["ledger", "platform", "revoke-key", KEY_A.key_id, "--reason", "x", "--from", "yesterday"])
    assert "not an RFC 3339 UTC time" in res.output
    res = runner.invoke(args=["ledger", "platform", "list"])
    assert "revoked from 2026-01-01T00:00:00.000Z: lost" in res.output


# The registry cache: invalidated by registry entries, never trusted past one ---------------


class _Reads:
    """Counts the cache's reads of the registry version and of the whole registry."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.versions = self.snapshots = 0
        version, snapshot = registry.registry_version, registry.read_snapshot

        def counted_version(s: Session) -> int:
            self.versions += 1
            return version(s)

        def counted_snapshot(s: Session) -> registry.RegistrySnapshot:
            self.snapshots += 1
            return snapshot(s)

        monkeypatch.setattr(registry, "registry_version", counted_version)
        monkeypatch.setattr(registry, "read_snapshot", counted_snapshot)

    def take(self) -> tuple[int, int]:
        out = (self.versions, self.snapshots)
        self.versions = self.snapshots = 0
        return out


def _append(log: Log, record_id: str, key: PlatformKey = KEY_A) -> int:
    """Append one record through the committer, as a request would; its leaf index."""
    recs = verify_items(log.registry_cache, [sign(decision(record_id), key)], int(time.time() * 1000))
    return log.committer.submit(recs).placed[0].leaf_index


def test_the_committer_reads_the_registry_only_when_a_registry_entry_was_appended(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servers on one database: A's committer keeps the registry across
    groups while only it appends, checks the version when another writer
    appended, reads the registry again only when that was a registry entry,
    and so refuses a key the other server revoked in its very next group."""
    log.registry.add_platform("example-social", "Example Social", KEY_A.public_key)
    other = Log(log.engine, log.signer)  # another server (or the operator's CLI)
    reads = _Reads(monkeypatch)
    _append(log, "dec-1")
    assert reads.take()[1] >= 1  # a first read (request threads and committer)
    _append(log, "dec-2")
    assert reads.take() == (0, 0)  # only this committer appended since: nothing read
    _append(other, "dec-3")
    reads.take()
    _append(log, "dec-4")
    assert reads.take() == (1, 0)  # the head moved, the registry did not: one query
    other.registry.add_key("example-social", KEY_B.public_key)
    _append(log, "dec-5", KEY_B)  # a key added elsewhere is usable at once
    assert reads.take()[1] >= 1
    # Revoked on the other server: A's request threads may still hold the key
    # as valid (checked within the last second); its committer may not.
    other.registry.revoke_key(KEY_A.key_id, 0, "compromised")
    with log.read() as s:
        size = log.latest(s).size
    recs = verify_items(log.registry_cache, [sign(decision("dec-6"), KEY_A)], int(time.time() * 1000))
    with pytest.raises(Unprocessable) as refused:
        log.committer.submit(recs)
    assert "revoked from 1970-01-01T00:00:00.000Z: compromised" in str(refused.value.errors)
    with log.read() as s:
        assert log.latest(s).size == size
    # ... and once the request threads check again, they refuse it too.
    monkeypatch.setattr(log.registry_cache, "_ttl", 0.0)
    with pytest.raises(Unprocessable, match="1 of 1 records rejected"):
        verify_items(log.registry_cache, [sign(decision("dec-7"), KEY_A)], int(time.time() * 1000))
    check_log(log)


def test_request_threads_never_go_back_to_an_older_registry(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request thread's read that finishes after the committer found a
    newer registry must not replace it: versions only grow."""
    log.registry.add_platform("example-social", "Example Social", KEY_A.public_key)
    with log.read() as s:
        old = registry.read_snapshot(s)
    log.registry.revoke_key(KEY_A.key_id, 0, "compromised")
    cache = registry.RegistryCache(log.read, ttl=0.0)  # request threads check every time
    with Session(log.engine) as s, s.begin():
        new = cache.at(s, log.latest(s).size)  # the committer's check
    assert new.version > old.version
    # A request thread's read that began before the revocation was committed:
    monkeypatch.setattr(registry, "registry_version", lambda _s: old.version)
    monkeypatch.setattr(registry, "read_snapshot", lambda _s: old)
    assert cache.key_states([KEY_A.key_id])[KEY_A.key_id].revoked_from_ms == 0
    assert cache.known_platforms(["example-social"]) == {"example-social"}
