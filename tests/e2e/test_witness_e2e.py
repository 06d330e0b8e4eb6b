"""Witness cosigning end to end, on SQLite and PostgreSQL: a live gunicorn,
our witness server on loopback, ``flask ledger cosign``. The witness
cosigns a growing log, keeps its state across restarts, and refuses a log
that forked; the log recovers from a 409; ``/checkpoint`` carries the
cosignatures and Go's note verifier still accepts it."""

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
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app import create_app
from client.witness import StateFile, Witness, make_server
from keys.cosignature import CosignatureSigner
from keys.note import Signer
from ledger.cosign import Cosigner, parse_witnesses
from ledger.db import cosignatures, is_sqlite, make_engine
from ledger.errors import ProofError
from ledger.log import Log, LogProvider
from ledger.migrate import upgrade
from ledger.tlog import verify
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosigned import verify_cosigned
from ledger.tlog.witness import SIZE_CONTENT_TYPE, AddCheckpoint
from tests.checklog import check_log
from tests.conftest import ORIGIN
from tests.interop import gotlog
from tests.server import ROOT, free_port, get, gunicorn

WITNESS = CosignatureSigner.from_seed("witness.test/w1", bytes([7]) * 32)
VKEY = WITNESS.verifier.to_key()


class RunningWitness:
    """Our witness server in a thread on 127.0.0.1, restartable on the same port."""

    def __init__(self, state: Path, logs: list[Signer]) -> None:
        self.state_path = state
        self.logs = [s.verifier for s in logs]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self.witness: Witness | None = None

    def start(self) -> None:
        self.witness = Witness(WITNESS, self.logs, StateFile(self.state_path))
        self._server = make_server(self.witness, "127.0.0.1", self.port)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        assert self.witness is not None
        self.witness.state.close()

    def post(self, body: bytes) -> httpx.Response:
        return httpx.post(self.url + "/add-checkpoint", content=body, timeout=10)

    def head(self) -> tuple[int, bytes]:
        doc = json.loads(self.state_path.read_text())["logs"][ORIGIN]
        return doc["size"], base64.b64decode(doc["root"])


@pytest.fixture
def witness(tmp_path: Path, signer: Signer) -> Iterator[RunningWitness]:
    w = RunningWitness(tmp_path / "witness" / "state.json", [signer])
    w.state_path.parent.mkdir()
    w.start()
    yield w
    w.stop()


def _config(db_url: str, key_file: Path, witness: RunningWitness) -> dict[str, Any]:
    return {
        "DATABASE_URL": db_url,
        "KEY_FILE": str(key_file),
        "ORIGIN": ORIGIN,
        "WITNESSES": [{"url": witness.url, "vkey": VKEY}],
    }


@pytest.fixture
def served(db_url: str, key_file: Path, witness: RunningWitness) -> Iterator[tuple[str, Log, Any]]:
    """(gunicorn's URL, the log opened in this process, a `flask ledger cosign` runner)."""
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(key_file),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_WITNESSES": json.dumps([{"url": witness.url, "vkey": VKEY}]),
    }
    app = create_app({"TESTING": True, **_config(db_url, key_file, witness)})
    with gunicorn(env) as url:
        provider: LogProvider = app.extensions["ledger"]

        def cosign(*args: str) -> Any:
            return app.test_cli_runner().invoke(args=["ledger", "cosign", *args])

        yield url, provider.log, cosign
        provider.close()


def _cosigned(note: bytes, log: Log, quorum: int = 1) -> Checkpoint:
    return verify_cosigned(note, log.verifier, [VKEY], quorum)


def test_witness_cosigns_a_growing_log(
    served: tuple[str, Log, Any], witness: RunningWitness, db_url: str, key_file: Path
) -> None:
    url, log, cosign = served
    status, headers, _ = get(url + "/api/v1/checkpoints/cosigned")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"

    # The operator's command, as a process reading LEDGER_WITNESSES.
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(key_file),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_WITNESSES": json.dumps([{"url": witness.url, "vkey": VKEY}]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "ledger", "cosign"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "witness.test/w1" in proc.stdout
    assert "cosigned size 0" in proc.stdout
    status, headers, note = get(url + "/checkpoint")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert _cosigned(note, log).size == 0
    assert note.count("\n— ".encode()) == 2  # the log's signature, then one cosignature

    # The log grows: the latest checkpoint has no cosignature until the next round.
    log.sequencer.append([b"a", b"b", b"c"])
    _, _, note = get(url + "/checkpoint")
    assert verify.verify_checkpoint(note, log.verifier).size == 3
    with pytest.raises(ProofError, match="0 of the 1"):
        _cosigned(note, log)
    _, _, older = get(url + "/api/v1/checkpoints/cosigned")
    assert _cosigned(older, log).size == 0

    for batch, size in (([b"d%d" % i for i in range(300)], 303), ([b"e"], 304)):
        res = cosign()
        assert res.exit_code == 0, res.output
        log.sequencer.append(batch)
        res = cosign()
        assert res.exit_code == 0, res.output
        assert f"cosigned size {size}" in res.output
        _, _, note = get(url + "/checkpoint")
        assert _cosigned(note, log).size == size
        _, _, latest = get(url + "/api/v1/checkpoints/cosigned")
        assert latest == note
        assert witness.head()[0] == size

    res = cosign()
    assert "already cosigned size 304" in res.output
    # Cosignatures are append-only, like the log.
    with log.read() as s:
        assert len(s.execute(select(cosignatures)).all()) == 4  # sizes 0, 3, 303, 304
    for sql in ("UPDATE cosignatures SET line = line", "DELETE FROM cosignatures"):
        with pytest.raises(DBAPIError, match="ledger: "), log.engine.begin() as conn:
            conn.execute(text(sql))
    if not is_sqlite(log.engine):
        with pytest.raises(DBAPIError, match="ledger: "), log.engine.begin() as conn:
            conn.execute(text("TRUNCATE cosignatures"))

    # Restarted from its state file, the witness remembers size 304.
    witness.stop()
    witness.start()
    r = witness.post(AddCheckpoint(0, (), log.consistency(0).second.note).encode())
    assert (r.status_code, r.content, r.headers["Content-Type"]) == (409, b"304\n", SIZE_CONTENT_TYPE)
    log.sequencer.append([b"f", b"g"])
    res = cosign("--follow", "--count", "2", "--interval", "0.1")
    assert res.exit_code == 0, res.output
    assert "cosigned size 306" in res.output
    assert "already cosigned size 306" in res.output
    _, _, note = get(url + "/checkpoint")
    assert _cosigned(note, log).size == 306
    check_log(log)


def test_log_recovers_from_a_409(served: tuple[str, Log, Any], witness: RunningWitness) -> None:
    """The witness cosigned a size the log's database does not record (the
    log died before storing the answer): the cosigner resends from that size."""
    url, log, cosign = served
    log.sequencer.append([b"x%d" % i for i in range(5)])
    r = witness.post(AddCheckpoint(0, (), log.consistency(0).second.note).encode())
    assert r.status_code == 200
    log.sequencer.append([b"y%d" % i for i in range(7)])
    res = cosign()
    assert res.exit_code == 0, res.output
    assert "cosigned size 12" in res.output
    assert witness.head() == (12, log.consistency(0).second.root)
    _, _, note = get(url + "/checkpoint")
    assert _cosigned(note, log).size == 12


def _fork(path: Path, signer: Signer, *batches: list[bytes]) -> Log:
    """A second log under the same key, in a database of its own, with other entries."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    fork = Log(engine, signer)
    fork.sequencer.init()
    for batch in batches:
        fork.sequencer.append(batch)
    return fork


def test_witness_refuses_a_forked_log(
    served: tuple[str, Log, Any], witness: RunningWitness, signer: Signer, tmp_path: Path
) -> None:
    url, log, cosign = served
    log.sequencer.append([b"real %d" % i for i in range(5)])
    assert cosign().exit_code == 0
    real = witness.head()
    assert real[0] == 5

    # A fork that grows past what the witness saw: its proof from 5 fails (422).
    fork = _fork(tmp_path / "fork.sqlite3", signer, [b"fork %d" % i for i in range(5)], [b"fork 5", b"fork 6"])
    with Cosigner(fork, parse_witnesses([{"url": witness.url, "vkey": VKEY}])) as cosigner:
        (result,) = cosigner.run()
    assert not result.ok
    assert "HTTP 422" in result.message
    bad = AddCheckpoint(5, tuple(fork.consistency(5, 7).proof), fork.consistency(0).second.note)
    assert witness.post(bad.encode()).status_code == 422

    # The fork at the witness's own size: another root for size 5 (409, twice: a split view).
    fork5 = _fork(tmp_path / "fork5.sqlite3", signer, [b"fork %d" % i for i in range(5)])
    r = witness.post(AddCheckpoint(5, (), fork5.consistency(0).second.note).encode())
    assert (r.status_code, r.content) == (409, b"5\n")
    with Cosigner(fork5, parse_witnesses([{"url": witness.url, "vkey": VKEY}])) as cosigner:
        (result,) = cosigner.run()
    assert not result.ok
    assert "split view" in result.message

    # Nothing was cosigned, and the witness still holds the real tree.
    for f in (fork, fork5):
        with f.read() as s:
            assert s.execute(select(cosignatures)).all() == []
    assert witness.head() == real
    _, _, note = get(url + "/checkpoint")
    assert _cosigned(note, log).size == 5


def test_witness_answers_per_spec(witness: RunningWitness, signer: Signer, log: Log) -> None:
    log.sequencer.append([b"a", b"b"])
    note = log.consistency(0).second.note
    # 404: an origin it does not witness.
    stranger = Checkpoint("stranger.example/log", 0, bytes(32)).sign(
        Signer.from_seed("stranger.example/log", bytes(32))
    )
    assert witness.post(AddCheckpoint(0, (), stranger).encode()).status_code == 404
    # 403: our origin, another key.
    impostor = Signer.from_seed(ORIGIN, bytes(32))
    forged = Checkpoint(ORIGIN, 2, log.consistency(0).second.root).sign(impostor)
    assert witness.post(AddCheckpoint(0, (), forged).encode()).status_code == 403
    # 400: malformed, or an old size beyond the checkpoint.
    assert witness.post(b"old 01\n\n" + note).status_code == 400
    assert witness.post(AddCheckpoint(3, (), note).encode()).status_code == 400
    # 413, and 404 for other paths and methods.
    assert witness.post(b"old 0\n\n" + b"x" * 70000).status_code == 413
    assert httpx.post(witness.url + "/other", content=b"", timeout=10).status_code == 404
    assert httpx.get(witness.url + "/add-checkpoint", timeout=10).status_code == 404
    assert not witness.state_path.exists()  # nothing above changed its state
    # 200: the cosignature line verifies under the witness's key, as does the whole note.
    r = witness.post(AddCheckpoint(0, (), note).encode())
    assert r.status_code == 200
    assert verify_cosigned(note + r.content, signer.verifier, [VKEY], 1).size == 2


def test_cosign_fails_cleanly_when_a_witness_is_down(app: Any, db_url: str, key_file: Path) -> None:
    port = free_port()
    app.config["WITNESSES"] = [{"url": f"http://127.0.0.1:{port}", "vkey": VKEY}]
    res = app.test_cli_runner().invoke(args=["ledger", "cosign"])
    assert res.exit_code == 1
    assert "cannot reach" in res.output
    app.config["WITNESSES"] = []
    res = app.test_cli_runner().invoke(args=["ledger", "cosign"])
    assert res.exit_code == 1
    assert "no witnesses configured" in res.output
    app.config["WITNESSES"] = "[not json"
    res = app.test_cli_runner().invoke(args=["ledger", "cosign"])
    assert "LEDGER_WITNESSES" in res.output


def test_go_verifier_ignores_cosignatures(served: tuple[str, Log, Any], tmp_path: Path) -> None:
    url, log, cosign = served
    first = log.sequencer.append([b"a%d" % i for i in range(40)]).checkpoint
    assert cosign().exit_code == 0
    log.sequencer.append([b"b%d" % i for i in range(9)])
    assert cosign().exit_code == 0
    _, _, note = get(url + "/checkpoint")
    assert _cosigned(note, log).size == 49
    gotlog.require_go()
    binary = gotlog.build_tlogcheck(tmp_path)
    gotlog.assert_ok(gotlog.run_tlogcheck(binary, url, log.verifier.to_key(), old=[(first.size, first.root)]))


def test_client_verify_requires_a_witness_quorum(
    served: tuple[str, Log, Any], witness: RunningWitness, tmp_path: Path
) -> None:
    """`python -m client verify --witness` accepts a cosigned checkpoint, falls
    back to the newest cosigned one, and refuses when no quorum exists."""
    url, log, cosign = served
    vkey = log.verifier.to_key()

    def verify_cmd(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "client",
                "verify",
                "--url",
                url,
                "--vkey",
                vkey,
                "--state",
                str(tmp_path / "s.json"),
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    none_yet = verify_cmd("--witness", VKEY)
    assert none_yet.returncode != 0
    assert "witness" in none_yet.stderr + none_yet.stdout
    log.sequencer.append([b"x", b"y"])
    assert cosign().exit_code == 0
    ok = verify_cmd("--witness", VKEY)
    assert ok.returncode == 0, ok.stderr
    assert "cosigned by at least 1 of 1 witnesses" in ok.stdout
    log.sequencer.append([b"z"])  # the newest checkpoint is not cosigned yet
    fallback = verify_cmd("--witness", VKEY)
    assert fallback.returncode == 0, fallback.stderr
    assert "tree size 2" in fallback.stdout
