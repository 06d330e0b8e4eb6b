"""The auditor's client: verify, mirror, monitor and receipts against a live
gunicorn, on SQLite and PostgreSQL, with a man-in-the-middle proxy on
127.0.0.1 that alters one answer: a flipped byte in an entry bundle, a
swapped tile, a second log signed with the same key (a fork). Also the tile
reader and the receipt and CSV formats on small inputs, without a server."""

from __future__ import annotations

import base64
import csv
import json
import random
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from client.audit import PROOF_HEADER, EntryAudit, TlogProof, Watch, check_receipt, parse_tlog_proof
from client.checks import ParallelEntryAudit
from client.cli import mdl
from client.http import Http
from client.tiles import TileClient, TileHashReader, TileMismatch, verified_bundles
from client.verifying import VerificationFailed
from keys.keyfile import read_signer
from keys.note import Signer
from keys.records import PlatformKey
from ledger.db import make_engine
from ledger.errors import InvalidInput
from ledger.log import Log, LogProvider
from ledger.migrate import upgrade
from ledger.records.entries import canonical, entry_bytes, parse_entry
from ledger.records.export import CSV_COLUMNS, JSON_COLUMNS, csv_row
from ledger.registry import log_signature
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.tile import Tile, encode_bundle, parse_bundle
from ledger.tlog.verify import verify_checkpoint
from tests.recordkit import decision, example, sign
from tests.reference import ListReader
from tests.server import ROOT, get, gunicorn, local_http

ORIGIN = "auditor.example/ledger"
KEY = PlatformKey(bytes([11]) * 32)
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schema" / "record-v1.schema.json"


# A live log, and a proxy in front of it ----------------------------------------------


@dataclass
class Live:
    url: str
    vkey: str
    log: Log
    env: dict[str, str]
    added: int = 0

    def add(self, n: int, prefix: str = "rec", url: str | None = None) -> None:
        """Submit ``n`` signed records through the HTTP API, in batches of at most 500."""
        with httpx.Client(base_url=url or self.url, timeout=60) as http:
            while n:
                k = min(n, 500)
                items = [sign(decision(f"{prefix}-{self.added + i}"), KEY) for i in range(k)]
                r = http.post("/api/v1/records", json={"records": items})
                assert r.status_code == 201, r.text
                self.added, n = self.added + k, n - k

    @property
    def size(self) -> int:
        return self.log.latest_size()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(tmp_path / "log.key"), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env) as url:
        provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
        provider.log.registry.add_platform("example-social", "Example Social", KEY.public_key)
        yield Live(url, provider.log.verifier.to_key(), provider.log, env)
        provider.close()


@dataclass
class Proxy:
    """Forwards GETs to ``upstream``; ``alter(path, body)`` may change an answer,
    ``before(path)`` runs first (and may switch the upstream), and paths that
    ``missing`` accepts answer 404."""

    upstream: str
    alter: Callable[[str, bytes], bytes] | None = None
    before: Callable[[str], None] | None = None
    missing: Callable[[str], bool] = lambda _path: False
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.requests.append(self.path)
                if proxy.before:
                    proxy.before(self.path)
                if proxy.missing(self.path):
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, body = get(proxy.upstream + self.path)
                if proxy.alter and status == 200:
                    body = proxy.alter(self.path, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.get("Content-Type", "application/octet-stream"))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def proxy(live: Live) -> Iterator[Proxy]:
    p = Proxy(live.url)
    with local_http(p.handler()) as p.url:
        yield p


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(mdl, [str(a) for a in args])


def flip(at: int) -> Callable[[bytes], bytes]:
    return lambda body: body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def mirror_rows(db: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


# End to end -------------------------------------------------------------------------------


def test_mirror_incrementally_then_verify_full(live: Live, tmp_path: Path) -> None:
    live.add(300)
    db, state = tmp_path / "mirror.sqlite3", tmp_path / "state.json"
    res = cli("mirror", "--url", live.url, "--vkey", live.vkey, "--db", db)
    assert res.exit_code == 0, res.output
    assert "mirrored 301 new entries" in res.stdout
    # Filled in WAL mode, left as a plain rollback-journal file: nothing beside it.
    assert mirror_rows(db, "PRAGMA journal_mode") == [("delete",)]
    assert not db.with_name(db.name + "-wal").exists()
    live.add(40)
    ndjson, table = tmp_path / "records.ndjson", tmp_path / "records.csv"
    res = cli("mirror", "--url", live.url, "--vkey", live.vkey, "--db", db, "--ndjson", ndjson, "--csv", table)
    assert res.exit_code == 0, res.output
    assert "mirrored 40 new entries" in res.stdout

    # The mirror is the log, entry for entry, and hashes to its checkpoint.
    size = live.size
    entries = mirror_rows(db, "SELECT idx, leaf_hash, data FROM entries ORDER BY idx")
    ref = ListReader()
    for _i, leaf, data in entries:
        assert merkle.record_hash(data) == leaf
        ref.add(data)
    cps = mirror_rows(db, "SELECT size, note FROM checkpoints ORDER BY size")
    assert [s for s, _ in cps] == [301, size]
    assert size == 341
    cp = verify_checkpoint(cps[-1][1].encode(), live.vkey)
    assert merkle.tree_hash(size, ref) == cp.root
    assert mirror_rows(db, "SELECT COUNT(*), MIN(idx) FROM records") == [(340, 1)]
    assert mirror_rows(db, "SELECT idx, event, platform FROM registry") == [(0, "platform_added", "example-social")]

    # Exports: records only, each with the signed checkpoint beside it.
    lines = [json.loads(x) for x in ndjson.read_text().splitlines()]
    assert len(lines) == 340
    assert list(lines[0]) == ["index", "leaf_hash", "logged_at", "record", "signature"]
    assert lines[0]["record"]["record_id"] == "rec-0"
    assert base64.b64decode(lines[0]["leaf_hash"]) == entries[1][1]
    with table.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 341
    row = dict(zip(CSV_COLUMNS, rows[-1], strict=True))
    assert (row["index"], row["record_id"], row["keywords"]) == ("340", "rec-339", "discrimination")
    assert row["account.public_subject.jurisdiction"] == "EU"
    assert row["extra"] == ""
    for path in (ndjson, table):
        assert verify_checkpoint(Path(f"{path}.checkpoint").read_bytes(), live.vkey).size == size

    res = cli("mirror", "--url", live.url, "--vkey", live.vkey, "--db", db, "--parquet", tmp_path / "r.parquet")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert res.exit_code == 1
        assert "pip install pyarrow" in res.output
    else:
        assert res.exit_code == 0, res.output

    res = cli("verify", "--url", live.url, "--vkey", live.vkey, "--state", state, "--full")
    assert res.exit_code == 0, res.output
    assert f"full: the root recomputed from all {size} entries matches; {size} signatures verify" in res.stdout
    live.add(3)
    res = cli("verify", "--url", live.url, "--vkey", live.vkey, "--state", state, "--index", "0", "--index", "343")
    assert res.exit_code == 0, res.output
    assert f"consistent with the checkpoint of size {size} remembered in {state}" in res.stdout
    assert "entry 343: in the tree: record example-social/rec-342 (decision)" in res.stdout
    res = cli("verify", "--url", live.url, "--vkey", live.vkey, "--state", state, "--index", "344")
    assert res.exit_code == 1
    assert "--index 344: the log's tree has only 344 entries" in res.output


def test_tampered_bundle_is_detected_and_mirror_resumes(live: Live, proxy: Proxy, tmp_path: Path) -> None:
    live.add(600)
    db = tmp_path / "mirror.sqlite3"
    proxy.alter = lambda path, body: flip(300)(body) if path.startswith("/tile/entries/001") else body
    res = cli("mirror", "--url", proxy.url, "--vkey", live.vkey, "--db", db)
    assert res.exit_code == 3, res.output
    assert "entry 256 in tile/entries/001 is not the entry the log's checkpoint of size 601" in res.output
    # The first bundle was verified and committed; nothing of the altered one was written.
    assert mirror_rows(db, "SELECT COUNT(*), MAX(idx) FROM entries") == [(256, 255)]
    assert mirror_rows(db, "SELECT COUNT(*) FROM checkpoints") == [(0,)]

    for args in (["--full"], ["--index", "256", "--sample", "0"]):
        res = cli("verify", "--url", proxy.url, "--vkey", live.vkey, "--state", tmp_path / "s.json", *args)
        assert res.exit_code == 3, res.output
        assert "entry 256 in tile/entries/001 is not the entry the log's checkpoint of size 601" in res.output
        assert "the entry bundle was altered" in res.output
    assert not (tmp_path / "s.json").exists()  # nothing remembered from a failed run

    # A bundle that no longer parses is named as such.
    proxy.alter = lambda path, body: body[:-1] if path.startswith("/tile/entries/000") else body
    res = cli("verify", "--url", proxy.url, "--vkey", live.vkey, "--state", tmp_path / "s.json", "--index", "3")
    assert res.exit_code == 3
    assert "the entry bundle tile/entries/000 is malformed" in res.output

    # Resumed: the committed bundle is not fetched again.
    proxy.alter, proxy.requests[:] = None, []
    res = cli("mirror", "--url", proxy.url, "--vkey", live.vkey, "--db", db)
    assert res.exit_code == 0, res.output
    assert "mirrored 345 new entries" in res.stdout
    assert not [p for p in proxy.requests if p.startswith("/tile/entries/000")]
    assert mirror_rows(db, "SELECT COUNT(*), MAX(idx) FROM entries") == [(601, 600)]

    # Killed (SIGKILL) while fetching bundle 3, a mirror keeps bundle 2 and resumes from there.
    live.add(600)
    reached, release = threading.Event(), threading.Event()

    def hold(path: str) -> None:
        if path.startswith("/tile/entries/003"):
            reached.set()
            release.wait(30)

    proxy.before = hold
    args = [sys.executable, "-m", "client", "mirror", "--url", proxy.url, "--vkey", live.vkey, "--db", str(db)]
    with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            assert reached.wait(60)
            proc.kill()
        finally:
            release.set()
    assert mirror_rows(db, "SELECT COUNT(*), MAX(idx) FROM entries") == [(768, 767)]
    assert mirror_rows(db, "SELECT MAX(size) FROM checkpoints") == [(601,)]
    proxy.before = None
    res = cli("mirror", "--url", proxy.url, "--vkey", live.vkey, "--db", db)
    assert res.exit_code == 0, res.output
    assert "mirrored 433 new entries" in res.stdout


def test_swapped_tiles_are_detected(live: Live, proxy: Proxy, tmp_path: Path) -> None:
    live.add(200)
    old = live.size
    live.add(400)
    size = live.size
    assert (old, size) == (201, 601)
    other = get(live.url + "/tile/0/001")[2]
    proxy.alter = lambda path, body: other if path == "/tile/0/000" else body
    args = ["--url", proxy.url, "--vkey", live.vkey, "--state", tmp_path / "s.json", "--sample", "0"]
    res = cli("verify", *args, "--index", "5")
    assert res.exit_code == 3, res.output
    assert "tile/0/000 does not match its hash in tile/1/000.p/2" in res.output

    def swap(body: bytes) -> bytes:
        return body[32:] + body[:32]

    proxy.alter = lambda path, body: swap(body) if path == "/tile/1/000.p/2" else body
    res = cli("verify", *args, "--index", "5")
    assert res.exit_code == 3, res.output
    assert "the tiles tile/1/000.p/2, tile/0/002.p/89 do not hash to the root of the log's checkpoint" in res.output

    # A partial tile that 404s is cut from its full tile, as C2SP clients must.
    proxy.alter = None
    proxy.missing = lambda path: ".p/" in path
    with live.log.read() as s:
        note = live.log.checkpoint_for(s, old).note
    cp = verify_checkpoint(note, live.vkey)
    with Http(proxy.url) as http:
        reader = TileHashReader(TileClient(http), cp)
        assert merkle.tree_hash(old, reader) == cp.root
        got = [e for batch in verified_bundles(reader, 190, 201) for _, e, _ in batch]
    assert [parse_entry(e).body["record_id"] for e in got] == [f"rec-{i}" for i in range(189, 200)]
    assert "/tile/0/000.p/201" in proxy.requests
    assert "/tile/0/000" in proxy.requests


def test_forked_log_is_detected(live: Live, proxy: Proxy, tmp_path: Path) -> None:
    live.add(9)
    assert live.size == 10
    # A second log with the same key and a different history: sizes 1, 15, 17.
    signer = read_signer(Path(live.env["LEDGER_KEY_FILE"]))
    fork_url = f"sqlite:///{tmp_path / 'fork.sqlite3'}"
    engine = make_engine(fork_url)
    upgrade(engine)
    other = Log(engine, signer)
    other.sequencer.init()
    other.registry.add_platform("example-social", "Example Social (forked)", KEY.public_key)
    other.sequencer.append([b"forged %d" % i for i in range(14)])
    other.sequencer.append([b"forged more", b"and more"])
    engine.dispose()

    with gunicorn({**live.env, "LEDGER_DATABASE_URL": fork_url}, workers=1) as fork:
        polls = []

        def before(path: str) -> None:
            if path != "/checkpoint":
                return
            polls.append(path)
            if len(polls) == 2:
                live.add(5, "new")  # the log grows between polls 1 and 2
            if len(polls) == 3:
                proxy.upstream = fork  # and forks before poll 3

        proxy.before = before
        state, evidence = tmp_path / "state.json", tmp_path / "evidence"
        args = ["--url", proxy.url, "--vkey", live.vkey, "--state", state, "--evidence", evidence]
        res = cli("monitor", *args, "--interval", "0", "--count", "5", "--platform", "example-social")
        assert res.exit_code == 4, res.output
        assert "ALERT: the log forked: two different signed checkpoints of size 15" in res.output
        assert "watching auditor.example/ledger from tree size 10" in res.stderr
        assert "tree size 15: 5 new entries, consistent with size 10" in res.stderr
        printed = res.stdout.splitlines()
        assert [x.split()[2] for x in printed] == [f"example-social/new-{i}" for i in range(9, 14)]
        assert printed[0].endswith(
            "decision rule=hateful-conduct/dehumanisation subject=" + _subject() + " action=remove_content"
        )
        (found,) = evidence.iterdir()
        cps = [verify_checkpoint(f.read_bytes(), live.vkey) for f in sorted(found.glob("checkpoint-*"))]
        assert [c.size for c in cps] == [15, 15]
        assert cps[0].root != cps[1].root
        assert "two different signed checkpoints of size 15" in (found / "README.txt").read_text()

        # verify, holding the state the monitor left (size 15), sees the fork through the tiles.
        res = cli("verify", *args, "--sample", "2")
        assert res.exit_code == 4, res.output
        assert "the log's checkpoint of size 17 does not extend its checkpoint of size 15" in res.output
        (found,) = set(evidence.iterdir()) - {found}
        # The evidence stands alone: the larger checkpoint commits, by the proof, to another tree of size 15.
        small, big = sorted(
            (verify_checkpoint(f.read_bytes(), live.vkey) for f in found.glob("checkpoint-*")), key=lambda c: c.size
        )
        text = (found / "consistency-proof.txt").read_text().splitlines()
        merkle.check_tree([base64.b64decode(h) for h in text[4:]], big.size, big.root, 15, base64.b64decode(text[2]))
        assert (small.size, big.size) == (15, 17)
        assert base64.b64decode(text[2]) != small.root
        # Its entries are not ledger entries, which verify --full reports, though its tree is sound.
        res = cli("verify", "--url", fork, "--vkey", live.vkey, "--state", tmp_path / "fresh.json", "--full")
        assert res.exit_code == 3
        assert "verification failed: entry 1: malformed JSON" in res.output
        # A mirror of the real log refuses the fork too.
        db = tmp_path / "m.sqlite3"
        assert cli("mirror", "--url", live.url, "--vkey", live.vkey, "--db", db).exit_code == 0
        res = cli("mirror", "--url", proxy.url, "--vkey", live.vkey, "--db", db, "--evidence", evidence)
        assert res.exit_code == 4
        assert "does not extend its checkpoint of size 15" in res.output


def test_mirror_refuses_other_databases(live: Live, tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE notes(x)")
    res = cli("mirror", "--url", live.url, "--vkey", live.vkey, "--db", db)
    assert res.exit_code == 1
    assert "is another SQLite database, not a mirror: refusing to touch it" in res.output
    other = Signer.generate("other.example/log").verifier.to_key()
    mine = tmp_path / "mine.sqlite3"
    assert cli("mirror", "--url", live.url, "--vkey", live.vkey, "--db", mine).exit_code == 0
    res = cli("mirror", "--url", live.url, "--vkey", other, "--db", mine)
    assert res.exit_code == 1
    assert "is a mirror of another log, or was altered" in res.output


def _subject() -> str:
    return str(example("decision-legislator-removal")["account"]["subject_key"])


def test_receipt_verifies_offline_and_fails_on_any_change(live: Live, tmp_path: Path) -> None:
    live.add(20)
    by_index, by_id = tmp_path / "by-index.tlog-proof", tmp_path / "by-id.tlog-proof"
    res = cli("receipt", "--url", live.url, "--vkey", live.vkey, "--index", "3", "--out", by_index)
    assert res.exit_code == 0, res.output
    res = cli(
        "receipt", "--url", live.url, "--vkey", live.vkey, "--platform", "example-social", "--record-id", "rec-2",
        "--out", by_id,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = by_index.read_bytes()
    assert data == by_id.read_bytes()  # rec-2 is entry 3
    assert data.startswith(PROOF_HEADER.encode() + b"\nextra ")
    res = cli("check-receipt", "--vkey", live.vkey, by_index)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("verified: entry 3, record example-social/rec-2 (decision), logged at ")
    assert "in the tree of auditor.example/ledger of size 21" in res.stdout

    verifier = live.log.verifier
    for at in range(len(data)):
        with pytest.raises((InvalidInput, VerificationFailed)):
            check_receipt(flip(at)(data), verifier)
    by_index.write_bytes(flip(len(data) // 2)(data))
    res = cli("check-receipt", "--vkey", live.vkey, by_index)
    assert res.exit_code in (1, 3)
    assert res.output.strip()
    assert "Traceback" not in res.output
    other = Signer.generate(ORIGIN).verifier.to_key()
    by_id_res = cli("check-receipt", "--vkey", other, by_id)
    assert by_id_res.exit_code == 3
    assert "not signed by the log's key" in by_id_res.output

    res = cli("receipt", "--url", live.url, "--vkey", live.vkey, "--platform", "example-social", "--record-id", "x")
    assert res.exit_code == 1
    assert "HTTP 404" in res.output
    res = cli("receipt", "--url", live.url, "--vkey", live.vkey, "--index", "1", "--record-id", "x")
    assert res.exit_code == 2
    assert "give either --index, or --platform and --record-id" in res.output


# Without a server ----------------------------------------------------------------------------


class ListTiles:
    """A TileClient serving a reference log, optionally altering one tile."""

    def __init__(self, ref: ListReader) -> None:
        self.ref = ref
        self.alter: Tile | None = None
        self.served: list[Tile] = []

    def hash_tile(self, tile: Tile) -> bytes:
        self.served.append(tile)
        data = self.ref.tile_data(tile)
        return flip(0)(data) if tile == self.alter else data

    def bundle(self, n: int, width: int) -> list[bytes]:
        return parse_bundle(self.ref.tile_data(Tile(-1, n, width)), width)


def test_tile_hash_reader_on_small_trees() -> None:
    """Every hash and proof equals the reference's; every altered tile is refused."""
    rng = random.Random(6)
    ref = ListReader()
    for size in range(1, 700):
        ref.add(b"entry %d" % (size - 1))
        if size > 70 and size % 37 and size not in (256, 257, 512, 513):
            continue
        cp = Checkpoint(ORIGIN, size, merkle.tree_hash(size, ref))
        tiles = ListTiles(ref)
        reader = TileHashReader(tiles, cp)  # type: ignore[arg-type]
        wanted = rng.sample(range(merkle.stored_hash_index(0, size)), min(size, 12))
        assert reader.read_hashes(wanted) == ref.read_hashes(wanted)
        for n in rng.sample(range(size), min(size, 4)):
            assert merkle.prove_record(size, n, reader) == merkle.prove_record(size, n, ref)
            assert merkle.tree_hash(n + 1, reader) == merkle.tree_hash(n + 1, ref)
        assert [e for b in verified_bundles(reader, 0, size) for _, e, _ in b] == ref.entries
        for tile in set(tiles.served):
            bad = ListTiles(ref)
            bad.alter = tile
            with pytest.raises(TileMismatch):
                TileHashReader(bad, cp).read_hashes(wanted)  # type: ignore[arg-type]


def test_tlog_proof_format_is_parsed_exactly() -> None:
    p = TlogProof(7, (bytes(32), bytes([1]) * 32), "origin\n1\nroot\n\n\u2014 sig\n".encode(), b"{}")
    data = p.encode()
    assert parse_tlog_proof(data) == p
    assert parse_tlog_proof(TlogProof(0, (), p.checkpoint).encode()).extra is None
    bad = [
        data.replace(b"@v1", b"@v2"),
        data.replace(b"index 7", b"index 07"),
        data.replace(b"index 7", b"index +7"),
        data.replace(b"index 7\n", b""),
        data.replace(b"extra e30=", b"extra e30"),
        data.replace(b"\n\n", b"\n", 1),
        data + b"\xff",
        data.replace(base64.b64encode(bytes(32)), base64.b64encode(bytes(31))),
    ]
    for b in bad:
        with pytest.raises(InvalidInput):
            parse_tlog_proof(b)


def _leaf_paths(node: Any, defs: dict[str, Any], prefix: str, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            return _leaf_paths(defs[node["$ref"].rsplit("/", 1)[1]], defs, prefix, out)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                _leaf_paths(sub, defs, prefix, out)
        for key in ("then", "else"):
            _leaf_paths(node.get(key), defs, prefix, out)
        for name, sub in node.get("properties", {}).items():
            if prefix + name in JSON_COLUMNS:
                out.add(prefix + name)
                continue
            target = sub
            while isinstance(target, dict) and "$ref" in target:
                target = defs[target["$ref"].rsplit("/", 1)[1]]
            if isinstance(target, dict) and ({"properties", "allOf"} & set(target) or target.get("type") == "object"):
                _leaf_paths(target, defs, f"{prefix}{name}.", out)
            else:
                out.add(prefix + name)
    return out


def test_csv_columns_cover_the_record_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    found = _leaf_paths(schema, schema["$defs"], "", set())
    # Objects whose properties sit under "if"/"then" look like leaves to the walk.
    paths = {p for p in found if not any(q.startswith(p + ".") for q in found)}
    assert len(paths) > 80
    assert paths <= set(CSV_COLUMNS), sorted(paths - set(CSV_COLUMNS))
    assert len(set(CSV_COLUMNS)) == len(CSV_COLUMNS)
    for name in ("decision-head-of-state-newsworthiness", "amendment-late-classification", "appeal-reversed"):
        rec = example(name)
        sig = {"key_id": "0" * 16, "alg": "ed25519", "value": "AA=="}
        row = dict(zip(CSV_COLUMNS, csv_row(5, bytes(32), "2026-01-01T00:00:00.000Z", rec, sig), strict=True))
        assert row["extra"] == ""
        assert row["record_id"] == rec["record_id"]
    assert row["refs.record_id"] == rec["refs"]["record_id"]
    assert row["outcome"] == "reversed"
    amended = example("amendment-late-classification")
    row = dict(zip(CSV_COLUMNS, csv_row(1, bytes(32), "t", amended, sig), strict=True))
    assert row["corrected.keywords"] == "misinformation_disinformation;violation_national_law"
    assert row["corrected.exemption.applied"] == "true"
    assert row["rule.id"] == ""
    statement = example("coverage-statement")
    row = dict(zip(CSV_COLUMNS, csv_row(2, bytes(32), "t", statement, sig), strict=True))
    assert json.loads(row["counts"]) == statement["counts"]
    assert row["period"] == statement["period"]
    assert row["extra"] == ""
    odd = dict(amended, new_field={"a": 1})
    assert csv_row(1, bytes(32), "t", odd, sig)[-1] == canonical({"new_field.a": 1}).decode()


def test_entry_audit_checks_signatures_against_the_registry() -> None:
    signer = Signer.from_seed(ORIGIN, bytes(range(32)))
    event = {"event": "platform_added", "platform": "example-social", "display_name": "E", "key": {
        "key_id": KEY.key_id, "alg": "ed25519", "public_key": base64.b64encode(KEY.public_key).decode()}}  # fmt: skip
    registry = entry_bytes(0, "registry", canonical(event), log_signature(signer, event))
    rec = decision("r-1")
    good = entry_bytes(1, "record", canonical(rec), sign(rec, KEY)["signature"])
    rogue = entry_bytes(1, "record", canonical(rec), sign(rec, PlatformKey(bytes(32)))["signature"])
    altered = entry_bytes(1, "record", canonical(dict(rec, record_id="r-2")), sign(rec, KEY)["signature"])
    audit = EntryAudit(signer.verifier)
    with pytest.raises(VerificationFailed, match="entry 0: signed by key"):
        audit.check(0, good)  # no key registered yet
    audit.check(1, registry)
    audit.check(2, good)
    with pytest.raises(VerificationFailed, match="which no earlier registry entry gave its platform"):
        audit.check(3, rogue)
    with pytest.raises(VerificationFailed, match="entry 4: the signature does not verify"):
        audit.check(4, altered)
    with pytest.raises(VerificationFailed, match="entry 5: a registry event signed by key"):
        EntryAudit(Signer.generate(ORIGIN).verifier).check(5, registry)
    assert audit.checked == 2


def test_parallel_entry_audit_reports_what_the_sequential_one_does() -> None:
    """Entries checked on worker processes (or, with one job, in this one), in
    batches that finish out of order, must still give the first failure in
    log order, whatever its kind, with each record judged by the keys the
    entries before it added, in its batch or an earlier one."""
    signer = Signer.from_seed(ORIGIN, bytes(range(32)))
    event = {"event": "platform_added", "platform": "example-social", "display_name": "E", "key": {
        "key_id": KEY.key_id, "alg": "ed25519", "public_key": base64.b64encode(KEY.public_key).decode()}}  # fmt: skip
    registry = entry_bytes(0, "registry", canonical(event), log_signature(signer, event))
    forged = entry_bytes(0, "registry", canonical(dict(event, display_name="F")), log_signature(signer, event))
    rec = decision("r-1")
    good = entry_bytes(1, "record", canonical(rec), sign(rec, KEY)["signature"])
    rogue = entry_bytes(1, "record", canonical(rec), sign(rec, PlatformKey(bytes(32)))["signature"])
    altered = entry_bytes(1, "record", canonical(dict(rec, record_id="r-2")), sign(rec, KEY)["signature"])

    def sequential(entries: list[bytes]) -> tuple[str | None, int]:
        audit = EntryAudit(signer.verifier)
        for i, data in enumerate(entries):
            try:
                audit.check(i, data)
            except VerificationFailed as e:
                return str(e), audit.checked
        return None, audit.checked

    def parallel(entries: list[bytes], jobs: int, batch: int) -> tuple[str | None, int]:
        with ParallelEntryAudit(signer.verifier, jobs=jobs) as audit:
            audit.BATCH = batch
            for i, data in enumerate(entries):
                audit.check(i, data)
            try:
                return None, audit.finish()
            except VerificationFailed as e:
                return str(e), -1

    def bundled(entries: list[bytes], jobs: int, batch: int) -> tuple[str | None, int]:
        """The same, given whole bundles of ``batch`` entries as served (the
        last one served full, with entries beyond the tree's, when it can be)."""
        with ParallelEntryAudit(signer.verifier, jobs=jobs) as audit:
            for first in range(0, len(entries), batch):
                part = entries[first : first + batch]
                served = part + [good] * (batch - len(part))
                audit.bundle(first, len(part), len(served), encode_bundle(served), f"bundle {first}")
            leaves = b"".join(audit.hashes())
            assert leaves == b"".join(merkle.record_hash(e) for e in entries)  # batch < 256: leaves, not tile hashes
            try:
                return None, audit.finish()
            except VerificationFailed as e:
                return str(e), -1

    cases = [
        ([registry, *[good] * 6], None),
        ([registry, good, good, altered, good, rogue], "entry 3: the signature does not verify"),
        ([registry, good, rogue, good, altered], "entry 2: signed by key"),
        ([registry, altered, good, good, good, rogue], "entry 1: the signature does not verify"),
        ([forged, good, good, good], "entry 0: the signature does not verify"),
        ([good, registry, altered], "entry 0: signed by key"),
        ([registry, good, good, good, good, good, good, rogue], "entry 7: signed by key"),
        ([good, good, good, registry, good, good], "entry 0: signed by key"),
    ]
    for entries, first in cases:
        want, checked = sequential(entries)
        assert want is None if first is None else (want or "").startswith(first), (want, first)
        for jobs, batch in ((1, 2), (2, 2), (2, 3), (3, 1)):
            got = parallel(entries, jobs, batch)
            assert got == ((want, -1) if want else (None, checked)), (jobs, batch)
            got = bundled(entries, jobs, batch)
            assert got == ((want, -1) if want else (None, checked)), ("bundled", jobs, batch)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1's MTH, recursively, as the reference."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


@pytest.mark.parametrize("jobs", [1, 2])
def test_bundle_audit_hashes_fold_to_the_tree_hash_and_a_malformed_bundle_is_named(jobs: int) -> None:
    """Bundles split and hashed on workers give one hash per bundle whose fold
    is the tree hash of every size around a tile's edges; a bundle that does
    not split fails naming it, before any entry's failure."""
    from client.tiles import root_of_bundles

    entries = [f'{{"n":{i}}}'.encode() for i in range(2 * 256 + 3)]
    for size in (0, 1, 255, 256, 257, 511, 512, 513, 515):
        with ParallelEntryAudit(Signer.from_seed(ORIGIN, bytes(range(32))).verifier, jobs=jobs) as audit:
            for first in range(0, size, 256):
                part = entries[first : min(size, first + 256)]
                audit.bundle(first, len(part), len(part), encode_bundle(part), f"bundle {first}")
            assert root_of_bundles(size, audit.hashes()) == _mth([merkle.record_hash(e) for e in entries[:size]]), size
            if size:
                with pytest.raises(VerificationFailed, match="entry 0: "):  # not a ledger entry
                    audit.finish()
    with ParallelEntryAudit(Signer.from_seed(ORIGIN, bytes(range(32))).verifier, jobs=jobs) as audit:
        audit.bundle(0, 256, 256, encode_bundle(entries[:256]), "bundle 0")

        def give_and_collect() -> None:
            audit.bundle(256, 256, 256, encode_bundle(entries[256:511]), "tile/entries/001")  # raised here (1 job)
            audit.hashes()  # or once collected

        with pytest.raises(VerificationFailed, match="the entry bundle tile/entries/001 is malformed"):
            give_and_collect()


def test_watch_filters() -> None:
    def entry(rec: dict[str, Any]) -> bytes:
        return canonical({"logged_at": "2026-01-01T00:00:00.000Z", "record": rec, "signature": {}})

    dec, amd = example("decision-legislator-removal"), example("amendment-late-classification")
    subject = amd["corrected"]["account"]["subject_key"]
    assert Watch(platform="example-social").line(4, entry(dec)) is not None
    assert Watch(platform="other").line(4, entry(dec)) is None
    assert Watch(subject=subject).line(4, entry(dec)) is None
    line = Watch(subject=subject, rule="civic-integrity/false-voting-claims").line(9, entry(amd))
    assert line is not None
    assert line.startswith("9 2026-01-01T00:00:00.000Z example-social/amd-2026-000007 amendment")
    assert Watch(rule="x").line(1, entry(example("appeal-reversed"))) is None
    assert not Watch()
    assert Watch(rule="x")
