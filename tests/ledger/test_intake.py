"""One sequencer per server: the workers of a gunicorn hand their verified
records to the one that holds the intake lock, and another takes over when
it dies (issue 12)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from keys.records import PlatformKey
from ledger.db import record_index
from ledger.log import LogProvider
from tests.checklog import check_log
from tests.conftest import ORIGIN
from tests.recordkit import decision, sign
from tests.server import ServerURL, gunicorn

KEY = PlatformKey(b"\x61" * 32)


def _lock_holders(path: Path) -> list[int]:
    """Processes holding an flock on ``path`` (from /proc/locks)."""
    inode = path.stat().st_ino
    holders = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        waiting = line.split(":", 1)[1].lstrip().startswith("->")
        if fields[1] == "FLOCK" and not waiting and int(fields[5].rsplit(":", 1)[1]) == inode:
            holders.append(int(fields[4]))
    return holders


def _workers(server: ServerURL) -> list[int]:
    return [p for p in server.processes() if p != server.pid]


def _post_all(url: str, prefix: str, n: int, acked: dict[str, int], threads: int = 8) -> None:
    """Post ``n`` single records from ``threads`` clients, retrying 503 as a platform would."""

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(k, n, threads):
                record_id = f"{prefix}-{i}"
                for _ in range(100):
                    try:
                        r = http.post("/api/v1/records", json=sign(decision(record_id), KEY))
                    except httpx.TransportError:  # the worker serving this connection died
                        time.sleep(0.1)
                        continue
                    if r.status_code in (200, 201):
                        acked[record_id] = r.json()["records"][0]["leaf_index"]
                        break
                    assert r.status_code == 503, r.text
                    time.sleep(0.1)

    pool = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)


def test_one_sequencer_per_server_and_a_successor(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "log.key"
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(key_file), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env, workers=2) as url:
        deadline = time.monotonic() + 30
        while len(_workers(url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        provider = LogProvider(db_url, str(key_file), ORIGIN)
        try:
            log = provider.log
            log.registry.add_platform("example-social", "Example Social", KEY.public_key)
            acked: dict[str, int] = {}
            _post_all(url, "a", 60, acked)
            assert len(acked) == 60
            lock = Path(f"{key_file}.intake.lock")
            leaders = _lock_holders(lock)
            assert len(leaders) == 1, leaders
            assert leaders[0] in _workers(url)
            os.kill(leaders[0], signal.SIGKILL)
            _post_all(url, "b", 60, acked)
            assert len(acked) == 120
            successor = _lock_holders(lock)
            assert len(successor) == 1
            assert successor != leaders
            with log.read() as s:
                logged = {r.record_id: r.leaf_index for r in s.execute(record_index.select()).all()}
            assert logged == acked  # every acknowledged record, once, where its answer said
            check_log(log)
        finally:
            provider.close()


def test_peers_of_another_user_are_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another user")
    import subprocess
    import sys

    from keys.note import Signer
    from ledger.db import make_engine
    from ledger.log import Log
    from ledger.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    upgrade(engine)
    log = Log(engine, Signer.generate(ORIGIN), rendezvous=str(tmp_path / "k.intake"))
    log.sequencer.init()
    try:
        assert log.intake._lead()  # white-box: start leading without a submission
        address = log.intake._address()
        probe = (
            "import os, socket, sys\n"
            "os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "s.connect(b'\\0' + sys.argv[1].encode())\n"
            "s.settimeout(5)\n"
            "print('closed' if s.recv(1) == b'' else 'open')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, address[1:].decode()], capture_output=True, text=True, timeout=30
        )
        assert out.stdout.strip() == "closed", out.stderr
    finally:
        log.intake.close()
        engine.dispose()
