"""Submissions end to end through real gunicorn workers, on SQLite and
PostgreSQL: a platform onboarded from the README's commands, and many
parallel submitters producing one gapless log whose every record verifies."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keys.records import RECORD_CONTEXT, PlatformKey, verify_signature
from ledger import storage
from ledger.db import record_index
from ledger.log import LogProvider
from ledger.records.entries import canonical, parse_entry
from ledger.tlog import verify
from tests.api.test_submissions import check_receipt
from tests.checklog import check_log
from tests.recordkit import decision
from tests.server import ROOT, gunicorn

ORIGIN = "e2e.example/ledger"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], LogProvider]]:
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_THREADS": "4",
    }
    with gunicorn(env, workers=3) as url:
        provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
        yield url, env, provider
        provider.close()


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def test_platform_onboarding_with_the_client(server: tuple[str, dict[str, str], LogProvider], tmp_path: Path) -> None:
    """keygen -> operator registers -> sign -> submit -> verified receipts; a re-run appends nothing."""
    url, env, provider = server
    py = sys.executable
    key = tmp_path / "platform.key"
    gen = _run([py, "-m", "client", "keygen", "--out", str(key)], env)
    assert gen.returncode == 0, gen.stderr
    pub = PlatformKey.from_text(key.read_text()).public_key
    reg = _run(
        [
            py,
            "-m",
            "flask",
            "--app",
            "app",
            "ledger",
            "platform",
            "add",
            "example-social",
            "--name",
            "Example Social",
            "--public-key",
            base64.b64encode(pub).decode(),
        ],
        env,
    )
    assert reg.returncode == 0, reg.stderr
    vkey = _run([py, "-m", "flask", "--app", "app", "ledger", "vkey"], env).stdout.strip()

    records_file = tmp_path / "records.ndjson"
    records_file.write_text("".join(json.dumps(decision(f"dec-{i}")) + "\n" for i in range(120)))
    signed = tmp_path / "signed.ndjson"
    res = _run([py, "-m", "client", "sign", "--key", str(key), "--out", str(signed), str(records_file)], env)
    assert res.returncode == 0, res.stderr
    receipts = tmp_path / "receipts.ndjson"
    state = tmp_path / "state.json"
    submit = [py, "-m", "client", "submit", "--url", url, "--vkey", vkey, "--batch-size", "50", "--state", str(state)]
    res = _run([*submit, "--receipts", str(receipts), str(signed)], env)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in receipts.read_text().splitlines()]
    assert len(lines) == 120
    size = provider.log.latest_size()
    # A re-run (say after a crash mid-upload) appends nothing twice.
    res = _run([*submit, str(signed)], env)
    assert res.returncode == 0, res.stderr
    assert provider.log.latest_size() == size
    check_log(provider.log)


def _submitter(url: str, key: PlatformKey, worker: int, batches: int, out: list[Any], errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        for b in range(batches):
            size = 1 if b % 3 == 0 else 17
            items = []
            for i in range(size):
                rec = decision(f"w{worker}-b{b}-{i}")
                items.append({"record": rec, "signature": key.sign(RECORD_CONTEXT, canonical(rec))})
            r = http.post("/api/v1/records", json={"records": items})
            if r.status_code != 201:
                errors.append(f"{r.status_code} {r.text}")
                return
            out.append((items, r.json()))


def test_parallel_submitters_make_a_gapless_verifiable_log(server: tuple[str, dict[str, str], LogProvider]) -> None:
    url, _, provider = server
    log = provider.log
    key = PlatformKey(bytes([42]) * 32)
    log.registry.add_platform("example-social", "Example Social", key.public_key)
    results: list[Any] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_submitter, args=(url, key, w, 12, results, errors)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    sent = 0
    for items, body in results:
        for item, res in zip(items, body["records"], strict=True):
            check_receipt(log, item, res, body["checkpoint"])
            sent += 1
    with log.read() as s:
        size = log.latest(s).size
        indexes = sorted(r.leaf_index for r in s.execute(record_index.select()).all())
        # Every entry is a registry event (entry 0) or one of the records sent.
        assert indexes == list(range(1, size))
        assert len(indexes) == sent
        for d in storage.read_entries(s, 1, size):
            e = parse_entry(d)
            verify_signature(key.public_key, RECORD_CONTEXT, canonical(e.body), base64.b64decode(e.signature["value"]))
        cps = list(storage.iter_checkpoints(s))
    for c in cps:
        verify.verify_checkpoint(c.note, log.verifier)
    check_log(log)
