"""Crash safety: kill -9 the server, or only a worker (where the sequencer
runs), at random moments during sustained ingestion, many times, on SQLite
and PostgreSQL. After each restart: the audit is clean, every record that
got a 2xx is in the log where the answer said, nothing is duplicated, no
checkpoint was ever replaced by a different one of the same size, and the
log keeps growing.

``make test`` runs a few rounds; ``make soak`` sets LEDGER_SOAK_ROUNDS higher.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keys.records import RECORD_CONTEXT, PlatformKey
from ledger import storage
from ledger.db import record_index
from ledger.log import LogProvider
from ledger.records.entries import canonical, parse_entry
from ledger.tlog import verify
from tests.checklog import check_log
from tests.recordkit import decision
from tests.server import ROOT, free_port

ROUNDS = int(os.environ.get("LEDGER_SOAK_ROUNDS", "4"))
ORIGIN = "crash.example/ledger"
KEY = PlatformKey(bytes([11]) * 32)


class Server:
    """gunicorn in its own session, so kill -9 reaches master and workers."""

    def __init__(self, env: dict[str, str], log: Any) -> None:
        self.log = log
        self.port = free_port()
        self.env = {**os.environ, **env, "LEDGER_BIND": f"127.0.0.1:{self.port}", "LEDGER_WORKERS": "2"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/checkpoint", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.log.flush()
        raise RuntimeError("gunicorn did not start; see its log: " + Path(self.log.name).read_text()[-3000:])

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]

    def kill_all(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def kill_worker(self) -> None:
        pids = self.worker_pids()
        if pids:
            os.kill(random.choice(pids), signal.SIGKILL)


class Load:
    """Submitters that record exactly what the server acknowledged."""

    def __init__(self, url: str, tag: str) -> None:
        self.url = url
        self.tag = tag
        self.acked: dict[str, tuple[int, str]] = {}  # record_id -> (leaf_index, logged_at)
        self.checkpoints: dict[int, bytes] = {}
        self.pending: list[list[dict[str, Any]]] = []  # sent, no answer: may or may not be in the log
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._n = 0

    def _batch(self, thread: int) -> list[dict[str, Any]]:
        with self._lock:
            self._n += 1
            n = self._n
        out = []
        for i in range(1 + n % 7):
            rec = decision(f"{self.tag}-t{thread}-{n}-{i}")
            out.append({"record": rec, "signature": KEY.sign(RECORD_CONTEXT, canonical(rec))})
        return out

    def run(self, thread: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                items = self._batch(thread)
                try:
                    r = http.post("/api/v1/records", json={"records": items})
                except httpx.HTTPError:
                    with self._lock:
                        self.pending.append(items)
                    time.sleep(0.05)
                    continue
                if r.status_code in (200, 201):
                    body = r.json()
                    with self._lock:
                        for res in body["records"]:
                            self.acked[res["record_id"]] = (res["leaf_index"], res["logged_at"])
                        self.checkpoints[body["checkpoint"]["tree_size"]] = body["checkpoint"]["signed_note"].encode()
                else:
                    assert r.status_code == 503, r.text
                    with self._lock:
                        self.pending.append(items)


@pytest.fixture
def provider(db_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], LogProvider]]:
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(tmp_path / "log.key"), "LEDGER_ORIGIN": ORIGIN}
    p = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
    p.initialise()
    p.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    yield env, p
    p.close()


@pytest.mark.parametrize("victim", ["server", "worker"])
def test_kill_9_during_ingestion(provider: tuple[dict[str, str], LogProvider], victim: str, tmp_path: Path) -> None:
    env, prov = provider
    server_log = (tmp_path / "gunicorn.log").open("ab")
    server = Server(env, server_log)
    rng = random.Random(victim)
    load: Load | None = None
    all_acked: dict[str, tuple[int, str]] = {}
    seen: dict[int, bytes] = {}
    sizes = []
    try:
        for rnd in range(ROUNDS):
            server.start()
            load = Load(server.url, f"{victim}{rnd}")
            threads = [threading.Thread(target=load.run, args=(t,)) for t in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.3 + rng.random())
            if victim == "server":
                server.kill_all()
            else:
                server.kill_worker()
                time.sleep(0.5)  # the master restarts it; the load goes on
                server.kill_all()
            load.stop.set()
            for t in threads:
                t.join(20)
            all_acked.update(load.acked)
            seen.update(load.checkpoints)
            # The client retries what got no answer: idempotency means no duplicates.
            server.start()
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for items in load.pending:
                    r = http.post("/api/v1/records", json={"records": items})
                    assert r.status_code in (200, 201), r.text
                    for res in r.json()["records"]:
                        all_acked[res["record_id"]] = (res["leaf_index"], res["logged_at"])
            server.kill_all()
            sizes.append(prov.log.latest_size())
    finally:
        if server.proc and server.proc.poll() is None:
            server.kill_all()
        server_log.close()
    assert len(all_acked) > 0
    assert sizes == sorted(sizes)
    assert sizes[-1] > sizes[0], "the log keeps growing"
    log = prov.log
    check_log(log)
    with log.read() as s:
        rows = {r.record_id: r for r in s.execute(record_index.select()).all()}
        for record_id, (index, logged_at) in all_acked.items():
            assert rows[record_id].leaf_index == index, record_id
            entry = storage.read_entries(s, index, index + 1)[0]
            assert f'"logged_at":"{logged_at}"'.encode() in entry
        for size, note in seen.items():
            stored = storage.checkpoint_at(s, size)
            assert stored is not None
            assert stored.note == note, f"checkpoint {size} was replaced"
            verify.verify_checkpoint(note, log.verifier)
        size = log.latest(s).size
        logged = [parse_entry(d) for d in storage.read_entries(s, 0, size)]
    ids = [(e.body["platform"], e.body["record_id"]) for e in logged if e.kind == "record"]
    assert len(ids) == len(set(ids)), "a record was appended twice"
    assert len(ids) == len(rows)
