"""The benchmark steps for one backend, in order, on one server:

1. fill the log to 10k entries through the API (batches of 1,000);
2. reads at 10k (and the trivial endpoint, their ceiling);
3. export of those entries (and the raw read, its ceiling); the client's
   mirror and full audit of the log, and the operator's audit;
4. batch ingestion, then single-record ingestion (32 clients); time to
   inclusion is their latency, every record's answer carrying its proof;
5. bytes on disk of what the API wrote, and the workers' peak memory;
6. (full mode) bulk append to 1M entries, reads at 1M, an export of
   25,600 of them, the operator's audit of all of them;
7. evenness statistics, when the server has them.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench import ceilings, ingest, loadgen, reads
from bench.corpus import PLATFORM, PLATFORM_NAME, Corpus, Signed
from bench.profile import sampling
from bench.report import figure, load_figure, missing, shares_text, with_ceiling
from bench.server import Database, Server, database, gunicorn
from keys.note import Verifier
from ledger.derived_watch import default_state_path
from ledger.records.entries import entry_bytes as ledger_entry_bytes
from ledger.storage import read_entries
from ledger.tlog.verify import verify_checkpoint

if TYPE_CHECKING:
    from bench.run import Config

Progress = Callable[[str], None]
#: Entries exported from the middle of the large log: 100 bundles.
EXPORT_LARGE = 25_600
#: Entries read at a time when the storage step sums the entries' bytes.
STORAGE_SLICE = 100_000
#: Read endpoints sampled with py-spy under --profile.
PROFILED_READS = ("checkpoint", "inclusion proof by index", "tile, level 0", "filtered feed page")


def _submit_into(out: list[Any], k: int, srv: Server, items: Sequence[Signed], clients: int, cfg: Config) -> None:
    out[k] = ingest.submit(srv.port, items, cfg.batch_size, clients, cfg.ingest_seconds, probe=srv.cpu_probe)


class Suite:
    def __init__(self, cfg: Config, corpus: Corpus, items: Sequence[Signed], ceilings: dict[str, float]) -> None:
        self.cfg = cfg
        self.corpus = corpus
        self.items = items
        self.ed25519 = ceilings["ed25519"]
        self.sha256_leaf = ceilings["sha256_leaf"]
        self.rng = random.Random(7)

    def run(self, kind: str, progress: Progress, results_dir: Path, stamp: str) -> dict[str, Any]:
        self.kind, self.progress = kind, progress
        self.profile_to = results_dir / stamp if self.cfg.profile else None
        out: dict[str, Any] = {"figures": {}, "notes": []}
        self.figs: dict[str, Any] = out["figures"]
        with tempfile.TemporaryDirectory(prefix=f"ledger-bench-{kind}-") as d:
            tmp = Path(d)
            with (
                database(kind, tmp, self.cfg.pg_url) as db,
                gunicorn(db, tmp, self.cfg.workers, self.cfg.threads) as srv,
            ):
                out["version"] = db.version()
                self._steps(out, db, srv, tmp)
        return out

    def measure_grown(
        self, db: Database, srv: Server, first: int, empty: int, progress: Progress, kind: str = "sqlite"
    ) -> dict[str, Any]:
        """The large log's steps on a log grown outside the suite (bench/large.py):
        the reads at its size (stage "large") and bytes on disk per record of
        the entries from ``first`` on, less the ``empty`` log's bytes, as the
        suite's own steps measure them."""
        self.kind, self.progress, self.profile_to = kind, progress, None
        out: dict[str, Any] = {"figures": {}, "notes": [], "version": db.version()}
        self.figs = out["figures"]
        self.verifier = Verifier.from_key(srv.vkey)
        size = self._size(srv)
        self._derived_check_settled(srv, size)
        self._reads("large", srv, db, size)
        out["storage"] = self._storage(db, srv, first, empty)
        out["memory_kib"] = srv.peak_memory_kib()
        self._memory(out["memory_kib"])
        return out

    def _derived_check_settled(self, srv: Server, size: int, limit: float = 1800.0) -> None:
        """Wait until the server's check of its derived rows (ledger/derived_watch.py,
        on by default) has reached ``size``. A log grown outside the server (the
        bulk append, bench/large.py) is checked by the server once, its new
        entries' rows derived again on one worker's thread (minutes at 1M);
        measured meanwhile, the reads, the audit and the statistics shared the
        cores and a worker's GIL with that catch-up. The steady cost, each new
        entry checked once and a slice of the older ones swept each interval,
        stays in the measurements: the wait is for ``checked_size``, the new
        entries, not for a whole sweep of the log."""
        state = default_state_path(srv.key_file)
        began = time.monotonic()
        while True:
            waited = time.monotonic() - began
            try:
                checked = int(json.loads(state.read_text())["checked_size"])
            except (OSError, ValueError, KeyError, TypeError):
                checked = -1
            if checked >= size:
                self.say(f"the server's derived-row check reached {size:,} entries ({waited:,.0f} s waited)")
                return
            if waited > limit:
                self.say(
                    f"the server's derived-row check is at {checked:,} of {size:,} after {limit:,.0f} s; measuring"
                )
                return
            time.sleep(1.0)

    def say(self, text: str) -> None:
        self.progress(f"{self.kind}: {text}")

    def _steps(self, out: dict[str, Any], db: Database, srv: Server, tmp: Path) -> None:
        srv.flask(
            "ledger", "platform", "add", PLATFORM, "--name", PLATFORM_NAME, "--public-key", self.corpus.public_key_b64
        )
        self.verifier = Verifier.from_key(srv.vkey)
        first, empty = self._size(srv), db.disk_bytes()
        self.say(f"server up ({self.cfg.workers} workers × {self.cfg.threads} threads), platform registered")
        self.next = self._fill(srv, self.cfg.small)
        db.analyze()
        size = self._size(srv)
        self._reads("small", srv, db, size)
        self._export("small", srv, db, 0, size)
        self._client_tools("small", srv, db, tmp, size, self.cfg.runs)
        self._ingestion(srv)
        if db.kind == "postgresql":
            self._two_servers(db, srv, tmp)
        out["storage"] = self._storage(db, srv, first, empty)
        out["memory_kib"] = srv.peak_memory_kib()
        self._memory(out["memory_kib"])
        if self.cfg.large:
            self._large(out, db, srv, tmp)
            out["memory_kib"] = srv.peak_memory_kib()
            self._memory(out["memory_kib"])
        self._statistics(srv)

    def _statistics(self, srv: Server) -> None:
        size = self._size(srv)
        label = f"evenness statistics at {size:,} entries, cold"
        path = reads.find_statistics_path(srv.url)
        if path is None:
            why = "not yet available (issue 5: no statistics endpoint in /api/v1/openapi.json)"
            self.say(f"evenness statistics: {why}")
            self.figs["statistics"] = missing(label, "s", why)
            return
        cold, warm = reads.measure_statistics(srv.port, path)
        fig = figure(label, "s", [cold], f"GET {path}")
        fig["entries"] = size
        fig["cached_p50_ms"] = warm.percentile(50) * 1000
        fig["cached_p95_ms"] = warm.percentile(95) * 1000
        fig["note"] += f"; cached: p50 {fig['cached_p50_ms']:.1f} ms, p95 {fig['cached_p95_ms']:.1f} ms"
        self.figs["statistics"] = fig
        self.say(f"evenness statistics: cold {cold:.2f} s, cached p95 {fig['cached_p95_ms']:.1f} ms")

    def _size(self, srv: Server) -> int:
        with urllib.request.urlopen(srv.url + "/checkpoint", timeout=10) as r:
            return verify_checkpoint(r.read(), self.verifier).size

    def _take(self, n: int) -> Sequence[Signed]:
        if self.next + n > len(self.items):
            raise AssertionError("bench: not enough signed records prepared")
        part = self.items[self.next : self.next + n]
        self.next += n
        return part

    def _fill(self, srv: Server, n: int) -> int:
        res = ingest.submit(srv.port, self.items[:n], self.cfg.batch_size, self.cfg.batch_clients, 300)
        if res.errors or res.weight != n:
            raise RuntimeError(f"filling the log: {res.errors} errors, e.g. {res.error_sample}")
        checked = ingest.check_answers(res, self.items[:n], self.cfg.batch_size, self.verifier)
        self.say(
            f"log filled with {n:,} records through the API "
            f"({res.weight_per_second:,.0f}/s; {checked:,} proofs verified)"
        )
        return n

    # Reads -------------------------------------------------------------------------

    def _reads(self, stage: str, srv: Server, db: Database, size: int) -> None:
        hashes = reads.sample_leaf_hashes(db.url, size, self.rng)
        paths = reads.read_paths(size, hashes, self.rng)

        def report(name: str, run: int, res: Any) -> None:
            self.say(
                f"{name} at {size:,} entries, run {run + 1}/{self.cfg.runs}: "
                f"{res.per_second:,.0f} req/s, p99 {res.percentile(99) * 1000:.1f} ms; {shares_text(res)}"
            )

        measured = reads.measure_reads(
            srv.port,
            paths,
            self.cfg.read_clients,
            self.cfg.read_seconds,
            self.cfg.runs,
            self.verifier,
            report,
            srv.cpu_probe,
        )
        for name in PROFILED_READS if self.profile_to else ():
            with self._profiling(srv, f"read-{stage}-{name.replace(' ', '-').replace(',', '')}"):
                reads.measure_reads(
                    srv.port,
                    {name: paths[name]},
                    self.cfg.read_clients,
                    self.cfg.read_seconds,
                    1,
                    self.verifier,
                    lambda *_: None,
                )
        trivial = load_figure(
            f"{reads.TRIVIAL} ({reads.TRIVIAL_PATH}) at {size:,} entries", "req/s", measured[reads.TRIVIAL]
        )
        self.figs[f"read_{stage}_{reads.TRIVIAL}"] = trivial
        for name, results in measured.items():
            if name != reads.TRIVIAL:
                fig = load_figure(f"{name} at {size:,} entries", "req/s", results)
                fig["entries"] = size
                self.figs[f"read_{stage}_{name}"] = with_ceiling(fig, "trivial", trivial["value"])

    def _export(self, stage: str, srv: Server, db: Database, start: int, end: int) -> None:
        """Both layouts, alternating: the stream (one gzip member, built per
        request) and the bundles (full bundles' members from the bundle
        cache; the first run builds and keeps them, and is reported as cold)."""
        runs: dict[str, list[loadgen.Result]] = {"stream": [], "bundles": []}
        raw = []
        profile = self._profiling(srv, f"export-{stage}")
        for run in range(self.cfg.runs + (profile is not None)):
            raw.append(ceilings.raw_entry_reads_per_second(db.url, start, end)[0])
            for layout in ("stream", "bundles"):
                with profile if run == self.cfg.runs and profile and layout == "stream" else nullcontext():
                    res = reads.measure_export(srv.port, start, end, srv.cpu_probe, layout)
                if run < self.cfg.runs:
                    runs[layout].append(res)
                    self.say(
                        f"export [{start:,}, {end:,}), layout {layout}, run {run + 1}: "
                        f"{res.weight_per_second:,.0f} entries/s (raw read {raw[-1]:,.0f}/s)"
                    )
        raw_median = sorted(raw[: self.cfg.runs])[len(raw[: self.cfg.runs]) // 2]
        for layout, key in (("stream", f"export_{stage}"), ("bundles", f"export_bundles_{stage}")):
            label = f"export, ndjson, {end - start:,} entries" + (", bundle layout" if layout == "bundles" else "")
            fig = load_figure(label, "entries/s", runs[layout], per="weight")
            for p in ("p50_ms", "p95_ms", "p99_ms"):
                del fig[p]  # one request per run: its latency is the figure itself
            if layout == "bundles":
                fig["cold_per_second"] = runs[layout][0].weight_per_second
            self.figs[key] = with_ceiling(fig, "raw sequential read", raw_median)

    def _client_tools(self, stage: str, srv: Server, db: Database, tmp: Path, size: int, runs: int) -> None:
        """The client's mirror and full audit over HTTP, and the operator's audit;
        on the large log (time) only the operator's audit."""
        base = ["--url", srv.url, "--vkey", srv.vkey, "--evidence", str(tmp / "evidence")]
        tools = [
            ("mirror", "client mirror-and-verify", "mirror", lambda r: [*base, "--db", f"{tmp}/mirror-{r}.sqlite3"]),
            (
                "audit",
                "client full audit (verify --full)",
                "verify",
                lambda r: [*base, "--full", "--sample", "0", "--state", f"{tmp}/state-{r}.json"],
            ),
            (
                "operator_audit",
                "operator audit (ledger audit)",
                "operator-audit",
                lambda r: [db.url, str(srv.key_file)],
            ),
        ]
        for key, label, command, argv in tools:
            if stage == "large" and key != "operator_audit":
                continue
            # verify --full also checks every entry (and its signature) on --jobs
            # worker processes (all cores by default): issue 14 asks for 80% of Ed25519 on all cores.
            ceiling = (f"Ed25519 verify, {self.cfg.nproc} cores", self.ed25519) if key == "audit" else None
            key = key if stage == "small" else f"{key}_{stage}"
            self._timed(key, label, command, argv, size, runs, tmp, ceiling)

    def _timed(
        self,
        key: str,
        label: str,
        command: str,
        argv: Callable[[int], list[str]],
        size: int,
        runs: int,
        tmp: Path,
        ceiling: tuple[str, float] | None,
    ) -> None:
        rates: list[float] = []
        why = ""
        profile = self._profile_path(key)
        for run in range(runs + (profile is not None)):
            extra_run = run == runs
            log = tmp / f"{key}-{run}.log"
            secs, why = reads.time_client(command, argv(run), log, timeout=600, profile=profile if extra_run else None)
            if secs is None or extra_run:
                break
            rates.append(size / secs)
            self.say(f"{label} of {size:,} entries, run {run + 1}: {rates[-1]:,.0f} entries/s")
        label = f"{label}, {size:,} entries"
        if not rates:
            self.say(f"{label}: {why}")
            self.figs[key] = missing(label, "entries/s", why)
            return
        name, value = ceiling or ("leaf hash, 1 core", self.sha256_leaf)
        self.figs[key] = with_ceiling(figure(label, "entries/s", rates), name, value)

    # Writes ------------------------------------------------------------------------

    def _ingestion(self, srv: Server) -> None:
        cfg = self.cfg
        plans = {
            "ingest_batch": (
                f"batch ingestion ({cfg.batch_size:,}/request, {cfg.batch_clients} clients)",
                cfg.batch_size,
                cfg.batch_clients,
                cfg.batches_per_run * cfg.batch_size,
            ),
            "ingest_single": (
                f"single-record ingestion ({cfg.single_clients} clients)",
                1,
                cfg.single_clients,
                cfg.singles_per_run,
            ),
        }
        for key, (label, batch, clients, count) in plans.items():
            results = []
            profile = self._profiling(srv, key)
            for run in range(cfg.runs + (profile is not None)):
                items = self._take(count)
                with profile if run == cfg.runs and profile else nullcontext():
                    res = ingest.submit(srv.port, items, batch, clients, cfg.ingest_seconds, probe=srv.cpu_probe)
                if res.errors:
                    raise RuntimeError(f"{label}: {res.errors} errors, e.g. {res.error_sample}")
                checked = ingest.check_answers(res, items, batch, self.verifier)
                if run < cfg.runs:
                    results.append(res)
                    self.say(
                        f"{label} run {run + 1}: {res.weight_per_second:,.0f} records/s, "
                        f"p50 {res.percentile(50) * 1000:.0f} ms, p99 {res.percentile(99) * 1000:.0f} ms; "
                        f"{checked:,} proofs verified; {shares_text(res)}"
                    )
            fig = load_figure(f"{label}; latency = time to inclusion", "records/s", results, per="weight")
            self.figs[key] = with_ceiling(fig, f"Ed25519 ({self.cfg.nproc} cores)", self.ed25519)

    def _two_servers(self, db: Database, srv: Server, tmp: Path) -> None:
        """Batch ingestion split across two servers sharing the database, each
        with the same key and its own workers, against the one-server figure."""
        cfg = self.cfg
        second_dir = tmp / "second-server"
        second_dir.mkdir()
        shutil.copy2(srv.key_file, second_dir / "log.key")
        label = f"batch ingestion, two servers ({cfg.batch_size:,}/request, {cfg.batch_clients} clients split)"
        results = []
        with gunicorn(db, second_dir, cfg.workers, cfg.threads) as other:
            for run in range(cfg.runs):
                half = cfg.batches_per_run * cfg.batch_size // 2
                items = [self._take(half), self._take(half)]
                out: list[Any] = [None, None]
                servers = (srv, other)
                clients = max(1, cfg.batch_clients // 2)
                threads = [
                    threading.Thread(target=_submit_into, args=(out, k, servers[k], items[k], clients, cfg))
                    for k in range(2)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for k, res in enumerate(out):
                    if res.errors:
                        raise RuntimeError(f"{label}: {res.errors} errors, e.g. {res.error_sample}")
                    ingest.check_answers(res, items[k], cfg.batch_size, self.verifier)
                merged = out[0].merged(out[1])
                results.append(merged)
                self.say(f"{label} run {run + 1}: {merged.weight_per_second:,.0f} records/s; {shares_text(merged)}")
        fig = load_figure(f"{label}; latency = time to inclusion", "records/s", results, per="weight")
        self.figs["ingest_batch_two_servers"] = with_ceiling(fig, f"Ed25519 ({self.cfg.nproc} cores)", self.ed25519)

    def _profile_path(self, step: str) -> Path | None:
        if self.profile_to is None:
            return None
        return self.profile_to.with_name(f"{self.profile_to.name}-{self.kind}-{step}.profile.txt")

    def _profiling(self, srv: Server, step: str) -> Any:
        out = self._profile_path(step)
        return None if out is None else sampling(srv.worker_pids(), out)

    def _storage(self, db: Database, srv: Server, first: int, empty: int) -> dict[str, Any]:
        size = self._size(srv)
        used = db.disk_bytes() - empty
        # The entries' own bytes, as served: the stored form is compressed
        # (ledger/entry_codec.py).
        engine = create_engine(db.url)
        try:
            with Session(engine) as session:
                # In slices: at 10M entries (bench/large.py) the whole log
                # would not fit in memory.
                entry_bytes = sum(
                    len(e)
                    for lo in range(first, size, STORAGE_SLICE)
                    for e in read_entries(session, lo, min(size, lo + STORAGE_SLICE))
                )
        finally:
            engine.dispose()
        # An entry frames the canonical record with a logged_at and a
        # signature object of fixed lengths, so the records' canonical bytes
        # are the entries' bytes less that frame.
        s = self.items[0]
        frame = len(ledger_entry_bytes(0, "record", s.canonical, s.signature)) - len(s.canonical)
        n = size - first
        canonical = int(entry_bytes) - n * frame
        storage: dict[str, Any] = {
            "bytes": used,
            "entries": n,
            "canonical_bytes": canonical,
            "entry_bytes": int(entry_bytes),
            "bytes_per_entry": used / n,
            "canonical_bytes_per_entry": canonical / n,
            "ratio_to_canonical": used / canonical,
            # Whole tables (the registry's few rows and empty pages included).
            "table_bytes_per_entry": {k: v / n for k, v in db.table_bytes().items()},
        }
        tables = ", ".join(f"{k} {v:,.0f}" for k, v in storage["table_bytes_per_entry"].items() if v >= 1)
        self.figs["storage"] = figure(
            f"bytes on disk per record ({n:,} records, all tables and indexes)",
            "B/record",
            [used / n],
            f"{used / canonical:.2f}× the canonical record of {canonical / n:,.0f} B; "
            f"log entry {int(entry_bytes) / n:,.0f} B; by table, B/record: {tables}",
        )
        self.say(f"storage: {used / n:,.0f} B/record on disk, {used / canonical:.2f}× canonical; B/record: {tables}")
        return storage

    def _memory(self, mem: dict[str, int]) -> None:
        workers = {k: v for k, v in mem.items() if k != "master"}
        peak = max(workers.values(), default=0)
        detail = ", ".join(f"{k} {v / 1024:,.0f}" for k, v in mem.items())
        self.figs["memory"] = figure("peak memory of a worker (VmHWM)", "MiB", [peak / 1024], f"MiB: {detail}")

    # A million entries --------------------------------------------------------------

    def _large(self, out: dict[str, Any], db: Database, srv: Server, tmp: Path) -> None:
        deadline = time.monotonic() + self.cfg.populate_seconds

        def report(size: int, elapsed: float) -> None:
            self.say(f"bulk append: {size:,} entries ({elapsed:,.0f} s)")

        size, rate = ingest.populate(db.url, srv.key_file, self.corpus, self.cfg.large, deadline, report)
        note = (
            "in the bench process through Sequencer.sequence: entries, hashes and feed index rows; "
            "no HTTP or verification"
        )
        if size < self.cfg.large:
            note += f"; stopped at the time bound ({self.cfg.populate_seconds:.0f} s) at {size:,} entries"
            out["notes"].append(f"the log reached {size:,} entries, not {self.cfg.large:,}, within the time bound")
        self.figs["bulk_append"] = figure(
            f"bulk append to {size:,} entries, 10,000 per transaction", "entries/s", [rate], note
        )
        db.analyze()
        size = self._size(srv)
        self._derived_check_settled(srv, size)
        self._reads("large", srv, db, size)
        start = (size // 2) // 256 * 256
        self._export("large", srv, db, start, min(size, start + EXPORT_LARGE))
        self._client_tools("large", srv, db, tmp, size, 1)  # one run over the whole log
