"""``python -m client evenness``: the evenness document recomputed from a
verified mirror, compared byte for byte with a live gunicorn's, on SQLite
and PostgreSQL. The planted-disparity data set of tests/ledger/test_evenness.py is
submitted over HTTP and mirrored; then the server's answer is compared
unaltered, with filters, pinned to an older checkpoint, and altered by a
man-in-the-middle proxy on 127.0.0.1 (tests/client/test_auditor.py's)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from client.__main__ import mdl
from client.evenness import ABSENT, differences
from keys.note import Signer, sign_note
from ledger.log import LogProvider
from ledger.records.entries import canonical, parse_json
from tests.client.test_auditor import Proxy
from tests.ledger.test_evenness import KEYS, planted_records
from tests.recordkit import sign
from tests.server import get, gunicorn, local_http

ORIGIN = "evenness.example/ledger"


@dataclass
class Server:
    url: str
    vkey: str

    def submit(self, records: list[dict[str, Any]]) -> int:
        """Submit signed records in batches of 500; return the log's size after."""
        size = 0
        with httpx.Client(base_url=self.url, timeout=60) as http:
            for start in range(0, len(records), 500):
                items = [sign(r, KEYS[r["platform"]]) for r in records[start : start + 500]]
                r = http.post("/api/v1/records", json={"records": items})
                assert r.status_code == 201, r.text
                size = r.json()["checkpoint"]["tree_size"]
        return size

    def document(self, query: str) -> dict[str, Any]:
        status, _, body = get(f"{self.url}/api/v1/stats/evenness?{query}")
        assert status == 200, body
        answer: dict[str, Any] = parse_json(body)
        return answer


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(tmp_path / "log.key"), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env) as url:
        provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
        for slug, key in KEYS.items():
            provider.log.registry.add_platform(slug, slug.replace("-", " ").title(), key.public_key)
        yield Server(url, provider.log.verifier.to_key())
        provider.close()


@pytest.fixture
def proxy(server: Server) -> Iterator[Proxy]:
    p = Proxy(server.url)
    with local_http(p.handler()) as p.url:
        yield p


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(mdl, [str(a) for a in args])


def mirror(server: Server, db: Path) -> None:
    res = cli("mirror", "--url", server.url, "--vkey", server.vkey, "--db", db)
    assert res.exit_code == 0, res.output


def evenness(url: str, server: Server, db: Path, *args: str | Path) -> Result:
    return cli("evenness", "--url", url, "--vkey", server.vkey, "--db", db, *args)


# Against the honest server ----------------------------------------------------------------


def test_mirror_recomputes_the_identical_document(server: Server, tmp_path: Path) -> None:
    size = server.submit(planted_records())
    db, out = tmp_path / "mirror.sqlite3", tmp_path / "doc.json"
    mirror(server, db)
    res = evenness(server.url, server, db, "--out", out)
    assert res.exit_code == 0, res.output
    answer = server.document(f"tree_size={size}")
    digest = answer["document_sha256"]
    assert f"identical (sha256 {digest}): tree size {size}" in res.stdout
    assert "numbers: rounded to 10 significant digits, 0 below 1e-300 (method version 1 numeric contract)\n" in (
        res.stdout
    )
    assert out.read_bytes() == canonical(answer["document"])
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert answer["document"]["totals"]["decisions"] == 1220
    assert answer["document"]["flagged"]  # the planted effects are there to be reproduced

    filters = {
        "platform=other-video&group=journalist": ["--platform", "other-video", "--group", "journalist"],
        "metric=exemption_rate&rule_id=hate/slurs&decided_from=2026-03-01&decided_to=2026-09-01T00:00:00Z": [
            *("--metric", "exemption_rate", "--rule-id", "hate/slurs"),
            *("--decided-from", "2026-03-01", "--decided-to", "2026-09-01T00:00:00Z"),
        ],
        "group=political_any&metric=time_to_decision": ["--group", "political_any", "--metric", "time_to_decision"],
    }
    for query, args in filters.items():
        res = evenness(server.url, server, db, *args)
        assert res.exit_code == 0, (query, res.output)
        filtered = server.document(f"tree_size={size}&{query}")["document_sha256"]
        assert filtered != digest
        assert f"identical (sha256 {filtered})" in res.stdout

    res = evenness(server.url, server, db, "--platform", "Not A Slug")
    assert res.exit_code == 2  # a usage error, caught before anything is read
    assert "--platform must match" in res.output
    res = evenness(server.url, server, db, "--decided-from", "2026-03-01", "--decided-to", "2026-03-01")
    assert res.exit_code == 2
    assert "--decided-to must be later than decided_from" in res.output
    res = evenness(server.url, server, db, "--decided-from", "2026-13-01")
    assert res.exit_code == 2


def test_pinned_older_checkpoint(server: Server, tmp_path: Path) -> None:
    records = planted_records()
    db = tmp_path / "mirror.sqlite3"
    older = server.submit(records[:700])
    mirror(server, db)
    latest = server.submit(records[700:])
    res = evenness(server.url, server, db, "--tree-size", str(latest))
    assert res.exit_code == 1
    assert f"--tree-size {latest} is beyond the mirror's {older} entries" in res.output
    mirror(server, db)

    res = evenness(server.url, server, db, "--tree-size", str(older))
    assert res.exit_code == 0, res.output
    pinned = server.document(f"tree_size={older}")
    assert pinned["document"]["checkpoint"]["tree_size"] == older
    assert f"identical (sha256 {pinned['document_sha256']}): tree size {older}" in res.stdout
    res = evenness(server.url, server, db)
    assert res.exit_code == 0, res.output
    assert f"identical (sha256 {server.document(f'tree_size={latest}')['document_sha256']})" in res.stdout

    res = evenness(server.url, server, db, "--tree-size", str(older - 1))  # the log signed no such checkpoint
    assert res.exit_code == 1
    assert "404" in res.output

    # A mirror file changed on disk no longer hashes to the signed root.
    with closing(sqlite3.connect(db)) as conn, conn:
        rows = conn.execute("SELECT idx, data FROM entries ORDER BY idx").fetchall()
        idx, data = next((i, d) for i, d in rows if b'"severity":"low"' in d)
        conn.execute("UPDATE entries SET data = ? WHERE idx = ?", (data.replace(b'"low"', b'"high"'), idx))
    res = evenness(server.url, server, db, "--tree-size", str(older))
    assert res.exit_code == 3
    assert f"do not hash to the root of the checkpoint of tree size {older}" in res.output


# Against a lying server -------------------------------------------------------------------


def _rewrite(change: Any) -> Any:
    """A proxy ``alter`` that edits the evenness document and re-states its digest, as a careful liar would."""

    def alter(path: str, body: bytes) -> bytes:
        if not path.startswith("/api/v1/stats/evenness"):
            return body
        answer = parse_json(body)
        change(answer["document"])
        answer["document_sha256"] = hashlib.sha256(canonical(answer["document"])).hexdigest()
        return canonical(answer)

    return alter


def test_a_changed_document_is_reported(server: Server, proxy: Proxy, tmp_path: Path) -> None:
    records = planted_records()
    older = server.submit(records[:700])
    size = server.submit(records[700:])
    db = tmp_path / "mirror.sqlite3"
    mirror(server, db)
    honest = server.document(f"tree_size={size}")["document"]

    def fewer_decisions(doc: dict[str, Any]) -> None:
        doc["cells"][3]["decisions"] -= 1
        doc["flagged"].pop()

    proxy.alter = _rewrite(fewer_decisions)
    res = evenness(proxy.url, server, db)
    assert res.exit_code == 3, res.output
    assert "differs from the recomputation" in res.output
    n = honest["cells"][3]["decisions"]
    assert f"$.cells[3].decisions: recomputed {n}, server {n - 1}" in res.stdout
    assert f"$.flagged[{len(honest['flagged']) - 1}]: recomputed {{" in res.stdout
    assert "server (absent)" in res.stdout
    assert "identical" not in res.stdout
    assert "numbers: rounded to 10 significant digits" in res.stdout
    assert any(p.startswith(f"/api/v1/stats/evenness?tree_size={size}") for p in proxy.requests)

    # A digest that does not match the document served is reported too, even with identical values.
    proxy.alter = lambda path, body: body.replace(b'"document_sha256":"', b'"document_sha256":"0')
    res = evenness(proxy.url, server, db)
    assert res.exit_code == 3, res.output
    assert "is not the digest of its document" in res.stdout

    # For an older tree size the checkpoint comes from the server: it must be the log's, signed.
    forged = Signer.generate(ORIGIN)

    def forged_note(doc: dict[str, Any]) -> None:
        text = doc["checkpoint"]["signed_note"].partition("\n\n")[0] + "\n"
        doc["checkpoint"]["signed_note"] = sign_note(text, forged).decode()

    proxy.alter = _rewrite(forged_note)
    res = evenness(proxy.url, server, db, "--tree-size", str(older))
    assert res.exit_code == 3, res.output
    assert f"the server's checkpoint of tree size {older} is not signed by the log's key" in res.output
    proxy.alter = None
    res = evenness(proxy.url, server, db, "--tree-size", str(older))
    assert res.exit_code == 0, res.output


# Pure -------------------------------------------------------------------------------------


def test_differences_name_json_paths() -> None:
    ours = {"a": 1, "b": [1, 2, {"c": "x"}], "d": {"e": None}, "f": 1}
    theirs = {"a": 1, "b": [1, 3, {"c": "y"}, 4], "d": {}, "f": 1.0, "g": True}
    assert list(differences(ours, theirs)) == [
        ("$.b[1]", 2, 3),
        ("$.b[2].c", "x", "y"),
        ("$.b[3]", ABSENT, 4),
        ("$.d.e", None, ABSENT),
        ("$.f", 1, 1.0),
        ("$.g", ABSENT, True),
    ]
    assert list(differences(ours, ours)) == []


def test_method_version_2_recomputes_the_protection_section(server: Server, tmp_path: Path) -> None:
    """The protection test's planted disparity and Simpson's decoy, on two registered
    platforms beside the account data: version 2 is recomputed byte for byte, finds the
    one disparity, and version 1 stays the document it was."""
    from tests.ledger.evenness.test_protection import planted

    names = {"slow-video": "other-video", "decoy-social": "third-forum"}
    threats = [r | {"platform": names[r["platform"]]} for r in planted()]
    size = server.submit(planted_records() + threats)
    db = tmp_path / "mirror.sqlite3"
    mirror(server, db)
    v2 = server.document(f"tree_size={size}&method_version=2")
    v1 = server.document(f"tree_size={size}")
    assert v2["document_sha256"] != v1["document_sha256"]
    assert v2["document"]["method"]["version"] == 2
    flagged = v2["document"]["protection"]["flagged"]
    assert [(f["platform"], f["group"], f["metric"]) for f in flagged] == [
        ("other-video", "election_worker", "time_to_decision")
    ]
    res = evenness(server.url, server, db, "--method-version", "2")
    assert res.exit_code == 0, res.output
    assert f"identical (sha256 {v2['document_sha256']}): tree size {size}" in res.stdout
    res = evenness(server.url, server, db)
    assert res.exit_code == 0, res.output
    assert f"identical (sha256 {v1['document_sha256']})" in res.stdout
    status, _, body = get(f"{server.url}/api/v1/stats/evenness?method_version=3")
    assert status == 400, body
    assert b"method_version" in body
