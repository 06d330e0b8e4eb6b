"""The platform registry: every change is a log entry signed by the log."""

from __future__ import annotations

import base64

import pytest

from keys.records import REGISTRY_CONTEXT, PlatformKey, platform_key_id, verify_signature
from ledger import storage
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.log import Log
from ledger.records.entries import canonical, parse_entry
from ledger.registry import list_platforms, read_key_states
from tests.checklog import check_log

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
