"""End to end through real gunicorn workers, on SQLite and PostgreSQL: the
server creates its key on first start, serves what another process appends,
and Go's x/mod/sumdb/tlog and note packages accept its checkpoints, tiles
and proofs."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from keys.keyfile import read_signer
from ledger.db import is_sqlite
from ledger.log import LogProvider
from ledger.tlog import merkle, verify
from tests.interop import gotlog
from tests.reference import ListReader, tiles_for_size
from tests.server import get, gunicorn
from tests.tamper import tamper

ORIGIN = "e2e.example/ledger"


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, LogProvider]]:
    key_file = tmp_path / "secrets" / "log.key"
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(key_file), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env) as url:
        provider = LogProvider(db_url, str(key_file), ORIGIN)
        yield url, provider
        provider.close()


def test_first_start_creates_a_private_key(served: tuple[str, LogProvider]) -> None:
    url, provider = served
    key_file = Path(provider.key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signer = read_signer(key_file)
    status, _headers, body = get(url + "/checkpoint")
    assert status == 200
    cp = verify.verify_checkpoint(body, signer.verifier)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 0, merkle.EMPTY_ROOT)


def test_served_log_verifies_in_python_and_go(served: tuple[str, LogProvider], tmp_path: Path) -> None:
    url, provider = served
    log = provider.log
    ref = ListReader()
    old = []
    for batch in ([b"hello"], [b"a%d" % i for i in range(300)], [b"b%d" % i for i in range(213)], [b"last"]):
        res = log.sequencer.append(batch)
        for d in batch:
            ref.add(d)
        old.append((res.checkpoint.size, res.checkpoint.root))
    size = len(ref.entries)

    status, _, note = get(url + "/checkpoint")
    assert status == 200
    cp = verify.verify_checkpoint(note, log.verifier)
    assert cp.size == size
    for tile in tiles_for_size(size):
        status, headers, body = get(f"{url}/{tile.path()}")
        assert status == 200, tile.path()
        assert body == ref.tile_data(tile)
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    status, _, body = get(f"{url}/api/v1/proofs/consistency?first=1&second={size}")
    proof = [base64.b64decode(h) for h in json.loads(body)["consistency_path"]]
    verify.verify_consistency(verify.verify_checkpoint(log.sequencer.init().note, log.verifier), cp, [])
    first = verify.verify_checkpoint(json.loads(body)["first_checkpoint"]["signed_note"].encode(), log.verifier)
    verify.verify_consistency(first, cp, proof)

    gotlog.require_go()
    binary = gotlog.build_tlogcheck(tmp_path)
    gotlog.assert_ok(gotlog.run_tlogcheck(binary, url, log.verifier.to_key(), old=old[:-1]))

    # An operator who rewrites an entry behind the log's back is caught by
    # the independent verifier, not only by our own audit.
    pg = not is_sqlite(log.engine)
    tamper(log.engine, "UPDATE entries SET data = " + ("'\\x00'::bytea" if pg else "X'00'") + " WHERE idx = 5")
    res = gotlog.run_tlogcheck(binary, url, log.verifier.to_key(), max_pairs=0)
    gotlog.assert_fails(res, "entry")
