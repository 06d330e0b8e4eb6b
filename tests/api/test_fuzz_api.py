"""Schemathesis against the served OpenAPI document, on a live gunicorn
with SQLite and PostgreSQL: no 5xx, and every answer conforms to the spec
(status codes, media types, headers, bodies)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from keys.records import PlatformKey
from ledger.log import LogProvider
from tests.recordkit import decision, sign
from tests.server import gunicorn

KEY = PlatformKey(bytes([14]) * 32)
ORIGIN = "fuzz.example/ledger"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES = os.environ.get("LEDGER_FUZZ_EXAMPLES", "10")  # make soak raises it


def test_schemathesis_finds_nothing(db_url: str, tmp_path: Path) -> None:
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_RATE_LIMIT_RECORDS_PER_SECOND": "0",
    }
    provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
    try:
        with gunicorn(env) as url:
            provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
            # Some data, so that lookups do not all end in 404.
            items = [sign(decision(f"d-{i}"), KEY) for i in range(300)]
            assert httpx.post(url + "/api/v1/records", json={"records": items}, timeout=60).status_code == 201
            st = Path(sys.executable).parent / "st"
            res = subprocess.run(
                [
                    str(st),
                    "run",
                    f"{url}/api/v1/openapi.json",
                    "--checks",
                    CHECKS,
                    "--max-examples",
                    MAX_EXAMPLES,
                    "--seed",
                    "1",
                    "--no-color",
                ],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
            assert " passed" in res.stdout
    finally:
        provider.close()
