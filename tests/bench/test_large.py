"""``make bench-large`` (bench/large.py) at a tiny size, on SQLite (the stage is SQLite's).

The fill resumes: a second session continues the bulk records' numbering
where the first stopped, so the log holds each record once, its follow-ups
refer to decisions it holds, and every audit of it passes. The measurement
runs the suite's read and storage steps against the real gunicorn and
writes a results file with the figures issue 14 names."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench import ingest, large
from bench.corpus import Corpus
from bench.server import ORIGIN
from client.signing import record_entry
from ledger.audit import audit
from ledger.db import entries, record_index
from ledger.entry_codec import decode_entry
from ledger.log import LogProvider
from ledger.records.entries import format_time


def _state(d: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((d / large.STATE).read_text())
    return state


def test_the_fill_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_BATCH", 13)  # several transactions per session, the last one short
    d = tmp_path / "large"
    assert large.main(["--size", "40", "--dir", str(d), "--fill-only"]) == 0
    first = _state(d)["first"]
    assert large.main(["--size", "95", "--dir", str(d), "--fill-only"]) == 0
    state = _state(d)
    assert [(s["from"], s["to"]) for s in state["sessions"]] == [(first, 40), (40, 95)]
    corpus = Corpus(bytes.fromhex(state["seed"]))

    provider = LogProvider(f"sqlite:///{d / 'ledger.sqlite3'}", str(d / "log.key"), ORIGIN)
    log = provider.log
    try:
        with Session(log.engine) as s:
            report = audit(s, log.verifier)
            assert report.ok, report.problems
            assert report.size == 95
            ids = s.scalars(select(record_index.c.record_id)).all()
            refs = {r for r in s.scalars(select(record_index.c.ref_record_id)) if r is not None}
            assert s.scalar(select(func.count()).select_from(record_index)) == 95 - first
            stored = s.execute(select(entries.c.idx, entries.c.data).where(entries.c.idx >= first)).all()
            logged_at = {
                r.record_id: r.logged_at_ms
                for r in s.execute(select(record_index.c.record_id, record_index.c.logged_at_ms))
            }
    finally:
        provider.close()
    # Each bulk record once, numbered on across the sessions, and the
    # follow-ups (one in eight) refer to decisions the log holds.
    assert sorted(ids) == [f"bk-{n:010d}" for n in range(95 - first)]
    assert refs
    assert refs <= set(ids)
    for idx, data in stored:
        signed = corpus.sign_bulk(idx - first)
        entry = record_entry(format_time(logged_at[signed.record_id]), signed.canonical, signed.signature)
        assert decode_entry(bytes(data)) == entry


def test_a_database_without_its_state_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "large"
    d.mkdir()
    (d / "ledger.sqlite3").write_bytes(b"")
    with pytest.raises(SystemExit, match=r"without large\.json"):
        large.main(["--size", "10", "--dir", str(d), "--fill-only"])


def test_bench_large_measures_reads_and_storage_at_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ingest, "MAX_BATCH", 100)
    monkeypatch.setattr(large, "RESULTS", tmp_path / "results")
    d = tmp_path / "large"
    before = signal.getsignal(signal.SIGTERM)
    assert large.main(["--size", "300", "--dir", str(d), "--fill-only"]) == 0
    assert "fill: 300 / 300 entries" in capsys.readouterr().out
    # main() puts the process's SIGTERM handler back: left installed, later
    # tests' multiprocessing pools inherited it and hung (bench.sigterm_interrupts).
    assert signal.getsignal(signal.SIGTERM) is before
    assert large.main(["--size", "300", "--dir", str(d), "--quick", "--workers", "1", "--threads", "4"]) == 0
    assert "no fill" in capsys.readouterr().out
    (results_file,) = (tmp_path / "results").glob("*-large.json")
    assert results_file.with_suffix(".md").exists()
    results = json.loads(results_file.read_text())
    assert results["large"]["size"] == 300
    sqlite = results["backends"]["sqlite"]
    figs = sqlite["figures"]
    for name in (
        "trivial endpoint",
        "checkpoint",
        "inclusion proof by index",
        "inclusion proof by hash",
        "tile, level 0",
        "tile, level 1",
        "filtered feed page",
    ):
        fig = figs[f"read_large_{name}"]
        assert fig["value"] > 0, name
        assert fig["errors"] == 0, name
        assert fig["p95_ms"] > 0, name
    first = _state(d)["first"]
    assert sqlite["storage"]["entries"] == 300 - first
    assert sqlite["storage"]["bytes_per_entry"] > sqlite["storage"]["canonical_bytes_per_entry"] > 0
    assert figs["bulk_append"]["value"] > 0
    feed = next(t for t in results["targets"] if t["figure"].startswith("filtered feed"))
    assert "at 300 entries" in feed["sqlite"]["text"]
