"""``dsa-import --url`` end to end through real gunicorn workers, on SQLite and
PostgreSQL: the documented example statements become records that the log
accepts and the client verifies, by ``submit``'s own code; ``mirror
--dsa-csv`` then writes them as the server's ``format=dsa-csv`` does."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from client.cli import mdl
from keys.records import PlatformKey
from ledger.log import LogProvider
from tests.checklog import check_log
from tests.server import ROOT, gunicorn

ORIGIN = "dsa.example/ledger"
KEY = PlatformKey(bytes([23]) * 32)
EXAMPLES = ROOT / "docs" / "examples" / "dsa"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, LogProvider]]:
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(tmp_path / "log.key"), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env, workers=1) as url:
        provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
        provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
        yield url, provider
        provider.close()


def test_dsa_import_submits_and_verifies(server: tuple[str, LogProvider], tmp_path: Path) -> None:
    url, provider = server
    key = tmp_path / "platform.key"
    key.write_text(KEY.to_text() + "\n")
    key.chmod(0o600)
    vkey = provider.log.verifier.to_key()
    out, receipts = tmp_path / "items.ndjson", tmp_path / "receipts.ndjson"
    args = ["dsa-import", "--key", str(key), "--mapping", str(EXAMPLES / "mapping.json"), "--out", str(out)]
    args += ["--url", url, "--vkey", vkey, "--state", str(tmp_path / "state.json")]
    res = CliRunner().invoke(mdl, [*args, "--receipts", str(receipts), str(EXAMPLES / "statements.json")])
    assert res.exit_code == 0, res.output
    assert "2 records: 2 created, 0 already logged" in res.output
    assert len(receipts.read_text().splitlines()) == 2
    size = provider.log.latest_size()
    # Both statements' records are in the log, as signed.
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert [i["record"]["record_id"] for i in items] == ["dec-2026-000214", "2026-05-000000917"]
    # A retry submits the signed items again, as submit does: nothing is appended twice.
    res = CliRunner().invoke(mdl, ["submit", *args[args.index("--url") :], str(out)])
    assert res.exit_code == 0, res.output
    assert "2 records: 0 created, 2 already logged" in res.output
    assert provider.log.latest_size() == size
    check_log(provider.log)
    # A researcher's copy in the DSA dumps' layout: the server's dsa-csv export, byte for byte.
    db, csv_path = tmp_path / "mirror.sqlite3", tmp_path / "records-dsa.csv"
    res = CliRunner().invoke(mdl, ["mirror", "--url", url, "--vkey", vkey, "--db", str(db), "--dsa-csv", str(csv_path)])
    assert res.exit_code == 0, res.output
    assert f"wrote 2 records to {csv_path}" in res.output
    exported = httpx.get(f"{url}/api/v1/export", params={"start": 0, "end": size, "format": "dsa-csv"})
    assert exported.status_code == 200
    assert gzip.decompress(exported.content) == csv_path.read_bytes()
