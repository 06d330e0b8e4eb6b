"""Many clients at once, for a while (issue 7): platforms submitting signed
records, readers fetching proofs, tiles, feed pages and checkpoints, and
exporters downloading the log, all against real gunicorn workers on SQLite
and PostgreSQL.

Throughout: every answer is 2xx, except 429 with Retry-After from the
submission rate limit (deliberately low here), which is honoured and
retried; every proof, tile, checkpoint and export verifies. After: the log
has no gap, every acknowledged record is in it where its receipt said, the
whole log re-verifies (tests/checklog.py), no worker died, and the workers'
memory stayed flat.

``make test`` runs it for LEDGER_SOAK_SECONDS (default 20 s per database);
``make soak`` sets several minutes.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.http import Http
from client.signing import record_entry, sign_record
from client.tiles import TileClient, TileHashReader, check_inclusion
from keys.note import Verifier
from keys.records import PlatformKey
from ledger import storage
from ledger.db import record_index
from ledger.log import LogProvider
from ledger.records.entries import canonical, parse_entry
from ledger.tlog import merkle, verify
from ledger.tlog.checkpoint import Checkpoint
from tests.checklog import check_log
from tests.recordkit import amendment, decision
from tests.reference import ListReader
from tests.server import gunicorn

SECONDS = float(os.environ.get("LEDGER_SOAK_SECONDS", "20"))
ORIGIN = "concurrency.example/ledger"
PLATFORM = "example-social"
KEY = PlatformKey(bytes([77]) * 32)
#: An upper bound on any one thread's iterations, whatever the clock says.
MAX_ROUNDS = 100_000
SUBMITTERS, READERS, EXPORTERS = 3, 3, 1


@dataclass
class Run:
    """What the threads share: the deadline, what was acknowledged, and what went wrong."""

    url: str
    verifier: Verifier
    deadline: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)
    acked: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # record_id -> (leaf index, leaf hash)
    counts: dict[str, int] = field(default_factory=dict)

    def going(self) -> bool:
        return time.monotonic() < self.deadline and not self.errors

    def fail(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n


def call(run: Run, http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response | None:
    """One request; only 2xx is an answer. A 429 must say Retry-After, and is retried after it."""
    for _ in range(30):
        try:
            r = http.request(method, path, **kw)
        except httpx.HTTPError as e:
            run.fail(f"{method} {path}: {type(e).__name__}: {e}")
            return None
        if r.status_code == 429:
            after = r.headers.get("Retry-After", "")
            if not after.isdigit():
                run.fail(f"{method} {path}: 429 without a valid Retry-After ({after!r})")
                return None
            run.count("429")
            time.sleep(min(int(after), 2) + random.random() / 10)
            continue
        if not 200 <= r.status_code < 300:
            run.fail(f"{method} {path}: {r.status_code} {r.text[:500]}")
            return None
        run.count("requests")
        return r
    run.fail(f"{method} {path}: still 429 after 30 tries")
    return None


def checkpoint(run: Run, http: httpx.Client) -> Checkpoint | None:
    r = call(run, http, "GET", "/checkpoint")
    return None if r is None else verify.verify_checkpoint(r.content, run.verifier)


# Submitters ---------------------------------------------------------------------------


def submitter(run: Run, worker: int) -> None:
    """Sign and submit batches of 1 or 20 records (some amending earlier ones); verify every receipt."""
    mine: list[str] = []
    with httpx.Client(base_url=run.url, timeout=60) as http:
        for n in range(MAX_ROUNDS):
            if not run.going():
                return
            recs = [decision(f"c{worker}-{n}-{i}") for i in range(1 if n % 2 else 20)]
            if mine and n % 4 == 3:
                recs.append(amendment(f"c{worker}-{n}-amd", random.choice(mine)))
            items = [sign_record(KEY, rec) for rec in recs]
            body = b'{"records":[' + b",".join(i.to_bytes() for i in items) + b"]}"
            r = call(run, http, "POST", "/api/v1/records", content=body, headers={"Content-Type": "application/json"})
            if r is None:
                return
            answer = r.json()
            cp = verify.verify_checkpoint(answer["checkpoint"]["signed_note"].encode(), run.verifier)
            for item, res in zip(items, answer["records"], strict=True):
                entry = record_entry(res["logged_at"], item.canonical_record, item.signature)
                leaf = base64.b64decode(res["leaf_hash"])
                if leaf != merkle.record_hash(entry):
                    run.fail(f"receipt for {item.record['record_id']}: the leaf hash is not the entry's")
                    return
                verify.verify_entry(entry, res["leaf_index"], [base64.b64decode(h) for h in res["inclusion_path"]], cp)
                with run.lock:
                    run.acked[item.record["record_id"]] = (res["leaf_index"], leaf)
            mine += [rec["record_id"] for rec in recs if rec["type"] == "decision"]
            run.count("records", len(items))


# Readers ------------------------------------------------------------------------------


def _proof(run: Run, ans: dict[str, Any]) -> None:
    cp = verify.verify_checkpoint(ans["checkpoint"]["signed_note"].encode(), run.verifier)
    path = [base64.b64decode(h) for h in ans["inclusion_path"]]
    verify.verify_inclusion(base64.b64decode(ans["leaf_hash"]), ans["leaf_index"], path, cp)


def _read_proofs(run: Run, http: httpx.Client, cp: Checkpoint) -> None:
    i = random.randrange(cp.size)
    for path, params in (
        ("/api/v1/proofs/inclusion", {"leaf_index": i, "tree_size": cp.size}),
        (f"/api/v1/entries/{i}", {}),
    ):
        r = call(run, http, "GET", path, params=params)
        if r is None:
            return
        ans = r.json()
        _proof(run, ans)
        if "entry" in ans and merkle.record_hash(base64.b64decode(ans["entry"])) != base64.b64decode(ans["leaf_hash"]):
            run.fail(f"entry {i}: its bytes do not hash to its leaf hash")
    with run.lock:
        acked = random.choice(list(run.acked.values())) if run.acked else None
    if acked is not None:
        r = call(run, http, "GET", "/api/v1/proofs/inclusion", params={"leaf_hash": acked[1].hex()})
        if r is not None:
            _proof(run, r.json())
            if r.json()["leaf_index"] != acked[0]:
                run.fail(f"the proof by hash names index {r.json()['leaf_index']}, the receipt said {acked[0]}")


def _read_tiles(run: Run, cp: Checkpoint) -> None:
    """Entries and tiles as the auditing client checks them, against the checkpoint's root."""
    with Http(run.url, on_retry=lambda msg: run.fail(f"tiles: retried: {msg}")) as http:
        reader = TileHashReader(TileClient(http), cp)
        check_inclusion(reader, random.sample(range(cp.size), min(3, cp.size)))
    run.count("tile checks")


def _read_feed(run: Run, http: httpx.Client) -> None:
    query = random.choice(["", "current=true", "type=amendment", "account_class=legislator", "platform=" + PLATFORM])
    r = call(run, http, "GET", f"/api/v1/records?limit=20&{query}")
    for _ in range(3):
        if r is None:
            return
        page = r.json()
        indexes = [x["leaf_index"] for x in page["records"]]
        if indexes != sorted(indexes, reverse=True) or any(i >= page["tree_size"] for i in indexes):
            run.fail(f"feed page ({query}) out of order or beyond its tree size: {indexes}")
            return
        if page["next_cursor"] is None:
            return
        r = call(run, http, "GET", f"/api/v1/records?limit=20&{query}&cursor={page['next_cursor']}")


def reader(run: Run, _worker: int) -> None:
    with httpx.Client(base_url=run.url, timeout=60) as http:
        for n in range(MAX_ROUNDS):
            if not run.going():
                return
            cp = checkpoint(run, http)
            if cp is None:
                return
            if cp.size:
                _read_proofs(run, http, cp)
                if n % 3 == 0:
                    _read_tiles(run, cp)
            _read_feed(run, http)


# Exporters ----------------------------------------------------------------------------


def exporter(run: Run, _worker: int) -> None:
    """Download the log up to the current checkpoint; its entries must rebuild that root."""
    with httpx.Client(base_url=run.url, timeout=120) as http:
        for _ in range(MAX_ROUNDS):
            if not run.going():
                return
            cp = checkpoint(run, http)
            if cp is None:
                return
            r = call(run, http, "GET", "/api/v1/export", params={"start": 0, "end": cp.size, "format": "ndjson"})
            if r is None:
                return
            lines = gzip.decompress(r.content).splitlines()
            head = json.loads(lines[0])
            if verify.verify_checkpoint(head["checkpoint"]["signed_note"].encode(), run.verifier) != cp:
                run.fail(f"export to {cp.size}: the file names another checkpoint")
                return
            ref = ListReader()
            for n, line in enumerate(lines[1:]):
                x = json.loads(line)
                kind = "record" if "record" in x else "registry"
                entry = canonical({"logged_at": x["logged_at"], kind: x[kind], "signature": x["signature"]})
                if x["index"] != n or base64.b64decode(x["leaf_hash"]) != merkle.record_hash(entry):
                    run.fail(f"export to {cp.size}: line {n} is not entry {n}")
                    return
                ref.add(entry)
            if len(ref.entries) != cp.size or merkle.tree_hash(cp.size, ref) != cp.root:
                run.fail(f"export to {cp.size}: its entries do not rebuild the checkpoint's root")
                return
            run.count("exports")


# Memory -------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry))
    return out


def gunicorn_workers() -> list[int]:
    """The workers of the gunicorn this test process started (its child's children)."""
    masters = [p for p in _children(os.getpid()) if b"gunicorn" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return sorted(w for m in masters for w in _children(m))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# The test -----------------------------------------------------------------------------


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, LogProvider]]:
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_THREADS": "4",
        # Low enough that the submitters meet the limit, so 429 and Retry-After are exercised too.
        "LEDGER_RATE_LIMIT_RECORDS_PER_SECOND": "40",
        "LEDGER_RATE_LIMIT_BURST": "80",
    }
    with gunicorn(env, workers=2) as url:
        # gunicorn forks its workers a random 0-100 ms apart, and the server
        # answers as soon as the first is up: wait for both before counting them.
        deadline = time.monotonic() + 30
        while len(gunicorn_workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        provider = LogProvider(db_url, env["LEDGER_KEY_FILE"], ORIGIN)
        yield url, provider
        provider.close()


def _sample_memory(run: Run, threads: list[threading.Thread]) -> list[tuple[float, int]]:
    """Sum of the workers' VmRSS (KiB) about twice a second until the threads end."""
    workers = gunicorn_workers()
    assert len(workers) == 2, workers
    start, samples = time.monotonic(), []
    while any(t.is_alive() for t in threads) and time.monotonic() < run.deadline + 300:
        if gunicorn_workers() != workers:
            run.fail(f"a worker died or was replaced: {workers} became {gunicorn_workers()}")
            break
        samples.append((time.monotonic() - start, sum(rss_kib(w) for w in workers)))
        time.sleep(0.5)
    return samples


def _check_log_holds(provider: LogProvider, run: Run) -> None:
    log = provider.log
    with log.read() as s:
        size = log.latest(s).size
        by_index = {r.leaf_index: r.record_id for r in s.execute(record_index.select()).all()}
        kinds = [parse_entry(d).kind for d in storage.read_entries(s, 0, size)]
    # No gap: every entry is a registry event or a record, and every record is indexed.
    assert sorted(by_index) == [i for i, k in enumerate(kinds) if k == "record"]
    for record_id, (index, _) in run.acked.items():
        assert by_index.get(index) == record_id, (record_id, index)
    check_log(log)


def test_many_clients_at_once(server: tuple[str, LogProvider]) -> None:
    url, provider = server
    provider.log.registry.add_platform(PLATFORM, "Example Social", KEY.public_key)
    run = Run(url, provider.log.verifier, time.monotonic() + SECONDS)
    roles: list[tuple[Callable[[Run, int], None], int]] = [
        (submitter, SUBMITTERS),
        (reader, READERS),
        (exporter, EXPORTERS),
    ]
    threads = [threading.Thread(target=fn, args=(run, w), daemon=True) for fn, k in roles for w in range(k)]
    for t in threads:
        t.start()
    try:
        samples = _sample_memory(run, threads)
    finally:  # whatever happened, no client thread outlives the server
        if any(t.is_alive() for t in threads) and time.monotonic() < run.deadline:
            run.fail("the test stopped early")
        for t in threads:
            t.join(timeout=max(1.0, run.deadline + 120 - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], "a client thread did not finish"
    assert not run.errors, run.errors[:5]
    assert run.counts.get("records", 0) > 0
    assert run.counts.get("exports", 0) > 0
    assert run.counts.get("tile checks", 0) > 0
    _check_log_holds(provider, run)
    # Memory stays flat: the second half of the run may not need much more
    # than the first. The first half holds the warm-up (imports on first
    # use, connection pools, caches filling to their bounds) and the same
    # mix of requests as the second, so a leak proportional to the work
    # shows as growth between the halves; 1.3x + 20 MB leaves room for
    # CPython's allocator, which keeps freed arenas, and for a busy machine.
    half = samples[-1][0] / 2
    first = max(kib for t, kib in samples if t <= half)
    second = max(kib for t, kib in samples if t > half)
    assert second <= 1.3 * first + 20 * 1024, (first, second, run.counts)
