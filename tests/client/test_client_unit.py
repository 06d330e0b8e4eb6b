"""The platform client without the real server: the signing vector in
docs/signing.md, key files, ``sign``, entry rebuilding, the retry policy
against a local HTTP server, and ``submit``'s verification against a small
in-memory ledger that signs real checkpoints and proofs with ledger.tlog.merkle."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from client.cli import mdl
from client.http import Http, ProblemResponse, RetryPolicy, Unreachable, retry_after_seconds
from client.signing import parse_time, record_entry, sign_record
from keys.note import Signer
from keys.records import RECORD_CONTEXT, PlatformKey, verify_signature
from ledger.errors import InvalidInput
from ledger.records.entries import canonical, entry_bytes, format_time, parse_json
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from tests.reference import ListReader
from tests.server import local_http

DOC = Path(__file__).resolve().parents[2] / "docs" / "signing.md"
SEED = bytes(range(32))
LOG = Signer.from_seed("test.example/ledger", bytes(range(32, 64)))
Reply = tuple[int, dict[str, str], bytes]


def doc_blocks() -> dict[str, str]:
    """The labelled fenced blocks of docs/signing.md: ```lang label ... ```."""
    blocks = re.findall(r"^```\w+ ([a-z0-9-]+)\n(.*?)\n```$", DOC.read_text(encoding="utf-8"), re.M | re.S)
    return dict(blocks)


def test_signing_vector_in_docs() -> None:
    v = doc_blocks()
    key = PlatformKey(bytes.fromhex(v["seed-hex"]))
    assert key.seed == SEED
    assert key.to_text() == v["key-file"]
    assert base64.b64encode(key.public_key).decode() == v["public-key"]
    assert key.key_id == v["key-id"]
    canon = canonical(parse_json(v["record"].encode()))
    assert canon == v["canonical"].encode()
    assert hashlib.sha256(RECORD_CONTEXT + canon).hexdigest() == v["message-sha256"]
    sig = key.sign(RECORD_CONTEXT, canon)
    assert sig == {"key_id": v["key-id"], "alg": "ed25519", "value": v["signature"]}
    verify_signature(key.public_key, RECORD_CONTEXT, canon, base64.b64decode(v["signature"]))
    assert sign_record(key, parse_json(v["record"].encode())).to_bytes() == v["item"].encode()


# Key files and sign ------------------------------------------------------------


def write_key(tmp_path: Path, seed: bytes = SEED) -> Path:
    path = tmp_path / "platform.key"
    path.write_text(PlatformKey(seed).to_text() + "\n")
    path.chmod(0o600)
    return path


def test_keygen_writes_0600_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "p.key"
    res = CliRunner().invoke(mdl, ["keygen", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = PlatformKey.from_text(out.read_text())
    assert f"key_id: {key.key_id}" in res.stdout
    assert base64.b64encode(key.public_key).decode() in res.stdout
    before = out.read_bytes()
    res = CliRunner().invoke(mdl, ["keygen", "--out", str(out)])
    assert res.exit_code == 1
    assert "refusing to overwrite" in res.stderr
    assert "Traceback" not in res.output
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.key"]  # no temporary file left
    res = CliRunner().invoke(mdl, ["pubkey", "--key", str(out)])
    assert res.stdout.splitlines()[0] == f"key_id: {key.key_id}"


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = write_key(tmp_path)
    path.chmod(0o640)
    res = CliRunner().invoke(mdl, ["pubkey", "--key", str(path)])
    assert res.exit_code == 1
    assert "chmod 600" in res.stderr


def test_sign_verifies(tmp_path: Path) -> None:
    records = [{"type": "decision", "platform": "p", "record_id": str(i), "n": 1.0} for i in range(3)]
    text = "\n".join(json.dumps(r, indent=None) for r in records) + "\n\n"
    res = CliRunner().invoke(mdl, ["sign", "--key", str(write_key(tmp_path))], input=text)
    assert res.exit_code == 0, res.stderr
    lines = res.stdout_bytes.splitlines()
    assert len(lines) == 3
    for line, rec in zip(lines, records, strict=True):
        item = parse_json(line)
        assert item["record"] == rec
        assert line == canonical(item)
        value = base64.b64decode(item["signature"]["value"])
        verify_signature(PlatformKey(SEED).public_key, RECORD_CONTEXT, canonical(rec), value)


@pytest.mark.parametrize(
    "bad,message",
    [
        ("[1, 2]", "line 2: a record must be a JSON object"),
        ('{"a": 1, "a": 2}', "line 2: duplicate key 'a'"),
        ('{"a": NaN}', "line 2: NaN is not JSON"),
        ('{"big": 9007199254740992}', "line 2: cannot be canonicalised"),
        ('{"a": ', "line 2: malformed JSON"),
        ('{"x": "' + "a" * 70000 + '"}', "line 2: the log entry would be"),
    ],
)
def test_sign_rejects_bad_lines_without_output(tmp_path: Path, bad: str, message: str) -> None:
    key = str(write_key(tmp_path))
    text = f'{{"ok": 1}}\n{bad}\n{{"ok": 2}}\n'
    res = CliRunner().invoke(mdl, ["sign", "--key", key], input=text)
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr.startswith(message)
    out = tmp_path / "signed.ndjson"
    res = CliRunner().invoke(mdl, ["sign", "--key", key, "--out", str(out), "-"], input=text)
    assert res.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["platform.key"]


def test_sign_reads_a_json_record_an_array_and_ndjson_alike(tmp_path: Path) -> None:
    """One pretty-printed record, an array of them, or NDJSON: the same items, in order."""
    key = str(write_key(tmp_path))
    records = [{"type": "decision", "platform": "p", "record_id": str(i), "nested": {"b": [1, 2]}} for i in range(3)]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(records[0], indent=2))
    array = tmp_path / "array.json"
    array.write_text(json.dumps(records[1:], indent=4))
    ndjson = tmp_path / "records.ndjson"
    ndjson.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "a.ndjson"
    res = CliRunner().invoke(mdl, ["sign", "--key", key, "--out", str(out), str(one), str(array)])
    assert res.exit_code == 0, res.stderr
    res = CliRunner().invoke(mdl, ["sign", "--key", key, str(ndjson)])
    assert res.exit_code == 0, res.stderr
    assert out.read_bytes() == res.stdout_bytes
    assert [parse_json(line)["record"] for line in res.stdout_bytes.splitlines()] == records


def test_sign_reports_a_broken_pretty_printed_file_once(tmp_path: Path) -> None:
    key = str(write_key(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "type": "decision",\n  "platform": "p"\n  "record_id": "1"\n}\n')
    arr = tmp_path / "arr.json"
    arr.write_text('[{"a": 1}, 7]')
    res = CliRunner().invoke(mdl, ["sign", "--key", key, str(bad), str(arr)])
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f"{bad}: record: not JSON (one record or an array) nor NDJSON: malformed JSON: Expecting ',' delimiter "
        "at line 4 column 3",
        f"{arr}: record 2: a record must be a JSON object",
    ]


# Entries from the log's logged_at string -----------------------------------------


@pytest.mark.parametrize("ms", [0, 1, 999, 1_000, 1_790_000_000_123, 253402300799999])
def test_record_entry_equals_entry_bytes(ms: int) -> None:
    sig = PlatformKey(SEED).sign(RECORD_CONTEXT, b'{"a":1}')
    assert parse_time(format_time(ms)) == ms
    assert record_entry(format_time(ms), b'{"a":1}', sig) == entry_bytes(ms, "record", b'{"a":1}', sig)


@pytest.mark.parametrize(
    "s",
    [
        "2026-11-26T08:00:00Z",
        "2026-11-26T08:00:00.000+00:00",
        "2026-11-26t08:00:00.000Z",
        "2026-11-26T08:00:00.0000Z",
        "2026-02-30T08:00:00.000Z",
        "2026-11-26T24:00:00.000Z",
        "2026-11-26T23:59:60.000Z",
        "２026-11-26T08:00:00.000Z",
        " 2026-11-26T08:00:00.000Z",
    ],
)
def test_parse_time_is_exact(s: str) -> None:
    with pytest.raises(InvalidInput):
        parse_time(s)


# A local HTTP server ---------------------------------------------------------------


@contextmanager
def serve(handle: Callable[[str, str, bytes], Reply]) -> Iterator[tuple[str, list[float]]]:
    """Serve ``handle(method, path, body)`` on 127.0.0.1; yield (URL, request times)."""
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            hits.append(time.monotonic())
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, data = handle(self.command, self.path, body)
            self.send_response(status)
            for k, v in {"Content-Length": str(len(data)), **headers}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply()

        def do_POST(self) -> None:
            self._reply()

        def log_message(self, *args: Any) -> None:
            pass

    with local_http(Handler) as url:
        yield url, hits


def problem(status: int, retry_after: str | None = None, **extra: Any) -> Reply:
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return status, headers, json.dumps({"title": "t", "status": status, "detail": "d", **extra}).encode()


def scripted(*replies: Reply) -> Callable[[str, str, bytes], Reply]:
    """Answer with ``replies`` in turn, then with the last one forever."""
    queue = list(replies)
    return lambda _m, _p, _b: queue.pop(0) if len(queue) > 1 else queue[0]


OK: Reply = (200, {"Content-Type": "application/json"}, b'{"ok": true}')


def client(url: str, sleeps: list[float], attempts: int = 4) -> Http:
    return Http(url, policy=RetryPolicy(attempts=attempts, base_delay=1.0), sleep=sleeps.append, rng=lambda: 0.5)


def test_retry_after_is_honoured() -> None:
    sleeps: list[float] = []
    with serve(scripted(problem(503, "7"), problem(429, "2"), OK)) as (url, hits), client(url, sleeps) as http:
        assert http.get_json("/x") == {"ok": True}
    assert sleeps == [7.0, 2.0]
    assert len(hits) == 3


def test_backoff_without_retry_after_grows_with_jitter() -> None:
    sleeps: list[float] = []
    with serve(scripted(problem(429), problem(503), problem(502), OK)) as (url, _), client(url, sleeps) as http:
        http.post_json("/x", b"{}")
    assert sleeps == [0.75, 1.5, 3.0]  # half the exponential delay, plus half of it times rng() = 0.5


def test_gives_up_after_the_bound() -> None:
    sleeps: list[float] = []
    with (
        serve(scripted(problem(503, "1"))) as (url, hits),
        client(url, sleeps) as http,
        pytest.raises(ProblemResponse, match="after 4 attempts") as e,
    ):
        http.get_json("/x")
    assert e.value.status == 503
    assert len(hits) == 4
    assert sleeps == [1.0] * 3


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422, 500])
def test_other_errors_are_final(status: int) -> None:
    sleeps: list[float] = []
    reply = problem(status, "1", errors=[{"index": 0, "path": "record", "message": "m"}])
    with serve(scripted(reply, OK)) as (url, hits), client(url, sleeps) as http, pytest.raises(ProblemResponse) as e:
        http.post_json("/x", b"{}")
    assert (len(hits), sleeps, e.value.status) == (1, [], status)
    assert e.value.errors == [{"index": 0, "path": "record", "message": "m"}]


def test_too_long_retry_after_is_final() -> None:
    sleeps: list[float] = []
    with (
        serve(scripted(problem(429, "3600"), OK)) as (url, hits),
        client(url, sleeps) as http,
        pytest.raises(ProblemResponse, match="Retry-After: 3600"),
    ):
        http.get_json("/x")
    assert (len(hits), sleeps) == (1, [])


def test_connection_errors_are_retried_then_reported() -> None:
    with serve(scripted(OK)) as (url, _):
        pass  # the port is closed now
    sleeps: list[float] = []
    with client(url, sleeps, attempts=3) as http, pytest.raises(Unreachable, match="after 3 attempts"):
        http.get_json("/x")
    assert sleeps == [0.75, 1.5]


def test_retry_after_really_waits() -> None:
    with serve(scripted(problem(503, "1"), OK)) as (url, hits), Http(url) as http:
        http.get_json("/x")
    assert hits[1] - hits[0] >= 1.0


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("Thu, 26 Nov 2026 08:00:30 GMT", now=1795680000.0) == 30.0
    assert retry_after_seconds("Thu, 26 Nov 2026 07:00:00 GMT", now=1795680000.0) == 0.0
    for bad in (None, "", "1.5", "-1", "soon", "１"):
        assert retry_after_seconds(bad, now=0.0) is None


# submit, against an in-memory ledger ------------------------------------------------


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class FakeLedger:
    """The submission contract over ledger.tlog.merkle and a real log key; ``tamper``
    may rewrite each answer to records before it is sent."""

    def __init__(self) -> None:
        self.tree = ListReader()
        self.logged: dict[tuple[str, str], tuple[int, bytes, str]] = {}
        self.tamper: Callable[[dict[str, Any]], None] = lambda _answer: None
        self.max_items = 1000

    def checkpoint(self) -> Checkpoint:
        size = len(self.tree.entries)
        return Checkpoint(LOG.name, size, merkle.tree_hash(size, self.tree) if size else merkle.EMPTY_ROOT)

    def cp_json(self, cp: Checkpoint) -> dict[str, Any]:
        return {"tree_size": cp.size, "root_hash": b64(cp.root), "signed_note": cp.sign(LOG).decode()}

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        url = urlsplit(path)
        q = {k: int(v[0]) for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v1/log":
            answer = {
                "origin": LOG.name,
                "verifier_key": LOG.verifier.to_key(),
                "checkpoint": self.cp_json(self.checkpoint()),
            }
        elif url.path == "/api/v1/proofs/consistency":
            answer = {"consistency_path": [b64(h) for h in merkle.prove_tree(q["second"], q["first"], self.tree)]}
        elif url.path.startswith("/api/v1/entries/"):
            answer = {"entry": b64(self.tree.entries[int(url.path.rsplit("/", 1)[1])])}
        else:
            return self.submit(parse_json(body)["records"])
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def submit(self, items: list[dict[str, Any]]) -> Reply:
        if len(items) > self.max_items:
            return problem(413)
        placed = []
        for i, it in enumerate(items):
            key = (it["record"]["platform"], it["record"]["record_id"])
            canon = canonical(it["record"])
            if key in self.logged and self.logged[key][1] != canon:
                existing = {"leaf_index": self.logged[key][0], "permalink": "/p"}
                err = {"index": i, "path": "record/record_id", "message": "taken", "existing": existing}
                return problem(409, errors=[err])
            if key not in self.logged:
                logged_at = format_time(1_790_000_000_000 + len(self.tree.entries))
                self.tree.add(entry_bytes(parse_time(logged_at), "record", canon, it["signature"]))
                self.logged[key] = (len(self.tree.entries) - 1, canon, logged_at)
                placed.append((key, "created"))
            else:
                placed.append((key, "existing"))
        cp = self.checkpoint()
        answer = {"checkpoint": self.cp_json(cp), "records": []}
        for key, status in placed:
            index, _, logged_at = self.logged[key]
            answer["records"].append(
                {
                    "platform": key[0],
                    "record_id": key[1],
                    "status": status,
                    "leaf_index": index,
                    "leaf_hash": b64(merkle.record_hash(self.tree.entries[index])),
                    "logged_at": logged_at,
                    "permalink": f"/api/v1/platforms/{key[0]}/records/{key[1]}",
                    "tree_size": cp.size,
                    "inclusion_path": [b64(h) for h in merkle.prove_record(cp.size, index, self.tree)],
                }
            )
        self.tamper(answer)
        created = any(s == "created" for _, s in placed)
        return 201 if created else 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


@pytest.fixture
def fake_log() -> Iterator[tuple[FakeLedger, str]]:
    fake = [FakeLedger()]
    with serve(lambda m, p, b: fake[0].handle(m, p, b)) as (url, _):
        yield fake[0], url


def signed_file(tmp_path: Path, ids: range, text: str = "", seed: bytes = SEED) -> Path:
    key = PlatformKey(seed)
    path = tmp_path / "signed.ndjson"
    lines = [sign_record(key, {"type": "decision", "platform": "p", "record_id": f"r{i}", "t": text}) for i in ids]
    path.write_bytes(b"".join(item.to_bytes() + b"\n" for item in lines))
    return path


def submit(url: str, tmp_path: Path, file: Path, *extra: str) -> Any:
    args = ["submit", "--url", url, "--state", str(tmp_path / "state.json"), "--batch-size", "3", *extra, str(file)]
    return CliRunner().invoke(mdl, args)


def test_submit_verifies_and_reruns_append_nothing(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    fake, url = fake_log
    receipts = tmp_path / "receipts.ndjson"
    res = submit(url, tmp_path, signed_file(tmp_path, range(7)), "--receipts", str(receipts))
    assert res.exit_code == 0, res.output
    assert "no --vkey given" in res.stderr  # trust on first use, pinned in the state file
    assert "7 records: 7 created, 0 already logged" in res.stdout
    lines = [json.loads(line) for line in receipts.read_text().splitlines()]
    assert [r["leaf_index"] for r in lines] == list(range(7))
    assert lines[-1]["checkpoint"].startswith(f"{LOG.name}\n7\n")
    check = CliRunner().invoke(mdl, ["check-receipt", "--vkey", LOG.verifier.to_key(), str(receipts)])
    assert check.exit_code == 0, check.output
    assert len(check.stdout.splitlines()) == 7
    assert check.stdout.startswith("verified: entry 0, record p/r0 (decision)")
    for key, value in [("leaf_index", 3), ("leaf_hash", b64(bytes(32)))]:
        forged = tmp_path / f"forged-{key}.ndjson"
        forged.write_text(json.dumps({**lines[2], key: value}) + "\n")
        check = CliRunner().invoke(mdl, ["check-receipt", "--vkey", LOG.verifier.to_key(), str(forged)])
        assert check.exit_code == 3, check.output
        assert "receipt line 1: its fields do not match its tlog_proof" in check.stderr
    proof = lines[2]["tlog_proof"].split("\n")
    proof[3] = b64(bytes(32))  # the first hash of the inclusion path
    forged.write_text(json.dumps({**lines[2], "tlog_proof": "\n".join(proof)}) + "\n")
    check = CliRunner().invoke(mdl, ["check-receipt", "--vkey", LOG.verifier.to_key(), str(forged)])
    assert check.exit_code == 3, check.output
    assert "do not lead to the root" in check.stderr
    res = submit(url, tmp_path, signed_file(tmp_path, range(10)), "--vkey", LOG.verifier.to_key())
    assert res.exit_code == 0, res.output
    assert "10 records: 3 created, 7 already logged" in res.stdout
    assert "no --vkey" not in res.stderr
    assert len(fake.tree.entries) == 10


def tamper_path(a: dict[str, Any]) -> None:
    a["records"][1]["inclusion_path"][0] = b64(bytes(32))


def tamper_hash(a: dict[str, Any]) -> None:
    a["records"][0]["leaf_hash"] = b64(bytes(32))


def tamper_note(a: dict[str, Any]) -> None:
    a["checkpoint"]["signed_note"] = a["checkpoint"]["signed_note"].replace("\n3\n", "\n4\n", 1)


def tamper_index(a: dict[str, Any]) -> None:
    a["records"][2]["leaf_index"] = 1


@pytest.mark.parametrize(
    "tamper,message",
    [
        (tamper_path, "record 2 (line 2): the inclusion proof of entry 1 does not verify"),
        (tamper_hash, "record 1 (line 1): leaf_hash is not the hash of the entry"),
        (tamper_note, "not a checkpoint signed by the log's key"),
        (tamper_index, "record 3 (line 3): the inclusion proof of entry 1"),
    ],
)
def test_submit_rejects_a_lying_log(
    fake_log: tuple[FakeLedger, str], tmp_path: Path, tamper: Callable[[dict[str, Any]], None], message: str
) -> None:
    fake, url = fake_log
    fake.tamper = tamper
    res = submit(url, tmp_path, signed_file(tmp_path, range(3)), "--vkey", LOG.verifier.to_key())
    assert res.exit_code == 3
    assert message in res.stderr
    assert "Traceback" not in res.output


def test_submit_detects_a_forked_log(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    fake, url = fake_log
    assert submit(url, tmp_path, signed_file(tmp_path, range(3))).exit_code == 0
    fake.__init__()  # the log forgets its history and starts again, same key, same URL
    res = submit(url, tmp_path, signed_file(tmp_path, range(3, 8)))
    assert res.exit_code == 3
    assert "not consistent" in res.stderr


def test_submit_pinned_key_mismatch(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    _, url = fake_log
    assert submit(url, tmp_path, signed_file(tmp_path, range(1))).exit_code == 0
    other = Signer.from_seed(LOG.name, bytes(32)).verifier.to_key()
    res = submit(url, tmp_path, signed_file(tmp_path, range(1)), "--vkey", other)
    assert res.exit_code == 1
    assert "pins another key" in res.stderr


def test_submit_reports_rejected_records(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    _, url = fake_log
    assert submit(url, tmp_path, signed_file(tmp_path, range(5))).exit_code == 0
    res = submit(url, tmp_path, signed_file(tmp_path, range(5), text="changed"))
    assert res.exit_code == 1
    assert "HTTP 409" in res.stderr
    assert "record 1 (line 1): record/record_id: taken (logged as entry 0: /p)" in res.stderr


def test_submit_checks_every_line_before_sending(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    fake, url = fake_log
    file = signed_file(tmp_path, range(3))
    file.write_bytes(file.read_bytes() + b'{"record": {}}\n')
    res = submit(url, tmp_path, file)
    assert res.exit_code == 1
    assert res.stderr.startswith("line 4: expected an object with exactly the keys")
    assert fake.tree.entries == []


def test_submit_existing_under_another_signature(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    _, url = fake_log
    assert submit(url, tmp_path, signed_file(tmp_path, range(4))).exit_code == 0
    # After a key rotation, the same records signed by the new key: the log
    # keeps the first entries, which the client fetches and checks.
    res = submit(url, tmp_path, signed_file(tmp_path, range(4), seed=bytes(32)))
    assert res.exit_code == 0, res.output
    assert "4 records: 0 created, 4 already logged" in res.stdout


def test_submit_splits_a_batch_too_large(fake_log: tuple[FakeLedger, str], tmp_path: Path) -> None:
    fake, url = fake_log
    fake.max_items = 1
    res = submit(url, tmp_path, signed_file(tmp_path, range(5)))
    assert res.exit_code == 0, res.output
    assert len(fake.tree.entries) == 5
