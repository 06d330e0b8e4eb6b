"""Ceilings: what this machine can do at best, measured in the same run.

Each figure of the report is divided by one of these, so a slow machine
(or a noisy one) shows up in the ceiling as much as in the figure:

* Ed25519 verifications per second over all cores (PyNaCl, the library the
  server verifies with), for ingestion: each record costs one;
* SHA-256 of 65-byte inputs (an RFC 6962 node: 0x01 || left || right) per
  second on one core, for the audit, which hashes in one process; and, as
  the ratios' denominator, leaves per second: a record entry's leaf hash
  plus one node hash each;
* a raw sequential read of ``entries.data`` (its stored, compressed form,
  not decoded; SQLAlchemy Core, same
  database), for export;
* the trivial endpoint of the same gunicorn configuration, for reads (in
  run.py, through the load generator like every other read).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from multiprocessing.connection import Connection

import nacl.signing
from sqlalchemy import create_engine, select

from bench import child_signals
from ledger.db import entries

MAX_LOOPS = 50_000_000  # every loop is bounded in count as well as in time


def ed25519_verifications_per_second(message: bytes, seconds: float, processes: int) -> float:
    """Verifications per second of a signature over ``message`` in ``processes`` processes at once."""
    ctx = mp.get_context("fork")
    start = ctx.Event()
    pipes, procs = [], []
    for _ in range(processes):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_verify_loop, args=(message, seconds, start, send), daemon=True)
        proc.start()
        pipes.append(recv)
        procs.append(proc)
    try:
        start.set()
        return sum(pipe.recv() if pipe.poll(seconds + 60) else 0.0 for pipe in pipes)
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def _verify_loop(message: bytes, seconds: float, start: object, send: Connection) -> None:
    child_signals()
    key = nacl.signing.SigningKey.generate()
    signature = key.sign(message).signature
    verify = key.verify_key.verify
    start.wait()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    deadline, n = t0 + seconds, 0
    while n < MAX_LOOPS:
        for _ in range(100):
            verify(message, signature)
        n += 100
        if time.perf_counter() >= deadline:
            break
    send.send(n / (time.perf_counter() - t0))


def sha256_nodes_per_second(seconds: float) -> float:
    """SHA-256 of 65-byte inputs per second on one core (hashlib)."""
    data = b"\x01" + bytes(range(64))
    sha256 = hashlib.sha256
    t0 = time.perf_counter()
    deadline, n = t0 + seconds, 0
    while n < MAX_LOOPS:
        for _ in range(1000):
            data = b"\x01" + sha256(data).digest() * 2
        n += 1000
        if time.perf_counter() >= deadline:
            break
    return n / (time.perf_counter() - t0)


def sha256_leaves_per_second(entry: bytes, seconds: float) -> float:
    """Leaves per second on one core, each costing what it costs an audit at
    least: its leaf hash SHA-256(0x00 || entry) and one interior node hash
    (a tree of n leaves has n - 1 nodes)."""
    leaf, node = b"\x00" + entry, b"\x01" + bytes(range(64))
    sha256 = hashlib.sha256
    t0 = time.perf_counter()
    deadline, n = t0 + seconds, 0
    while n < MAX_LOOPS:
        for _ in range(1000):
            sha256(b"\x01" + sha256(leaf).digest() + node[33:]).digest()
        n += 1000
        if time.perf_counter() >= deadline:
            break
    return n / (time.perf_counter() - t0)


def raw_entry_reads_per_second(url: str, start: int, end: int) -> tuple[float, int]:
    """Entries [start, end) read in order, per second, and their bytes."""
    engine = create_engine(url)
    try:
        t0 = time.perf_counter()
        count = size = 0
        with engine.connect() as conn:
            stmt = select(entries.c.data).where(entries.c.idx >= start, entries.c.idx < end).order_by(entries.c.idx)
            for part in conn.execution_options(stream_results=True, yield_per=2048).execute(stmt).partitions():
                count += len(part)
                size += sum(len(row[0]) for row in part)
        elapsed = time.perf_counter() - t0
    finally:
        engine.dispose()
    if count != end - start:
        raise AssertionError(f"raw read found {count} entries in [{start}, {end})")
    return count / elapsed, size
