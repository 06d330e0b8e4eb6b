"""The load generator: separate processes that send HTTP requests to 127.0.0.1.

:func:`run` forks ``processes`` processes of ``clients / processes``
threads each; every thread holds one keep-alive connection and sends its
share of the prepared requests (client ``c`` sends requests ``c``,
``c + clients``, ...). Every loop is bounded twice: by the number of
requests prepared and by a deadline. All clients connect first and start
together; throughput is what they completed between the first start and
the last finish, and the parent kills any process that overstays.

Over the same window the run records who used the cores (bench/cpu.py):
each process's own CPU, the machine's busy time, and whatever the load's
``probe`` counts (the server's processes), so every throughput comes with
the generator's share of the machine and the server's.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import multiprocessing as mp
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench import child_signals, cpu

HOST = "127.0.0.1"  # the only host the load generator talks to
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    weight: int = 1  # records a submission carries, entries an export streams


@dataclass
class Load:
    port: int
    requests: list[Request]
    clients: int
    seconds: float  # the time bound
    processes: int = 2
    keep_bodies: int = 0  # response bodies each client returns, for checking
    expect: tuple[int, ...] = (200, 201)
    probe: cpu.Probe | None = None  # the server's cumulative CPU counters (Server.cpu_probe)


@dataclass
class Result:
    """What the clients saw. Latencies in seconds, in completion order."""

    done: int = 0
    weight: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bodies: list[tuple[int, bytes]] = field(default_factory=list)  # (request number, body)
    elapsed: float = 0.0
    error_sample: str = ""
    # CPU seconds by part (bench/cpu.py) over ``cpu_wall`` seconds, from the
    # clients' start signal to the last process's report.
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_wall: float = 0.0
    cores: int = os.cpu_count() or 1

    @property
    def per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def merged(self, other: Result) -> Result:
        """Two loads run at the same time, as one: their counts added, over the longer time.

        Their CPU counters add up, but for the machine's busy time, which
        both measured over (nearly) the same window.
        """
        used = {k: self.cpu.get(k, 0.0) + other.cpu.get(k, 0.0) for k in self.cpu.keys() | other.cpu.keys()}
        if cpu.MACHINE in used:
            used[cpu.MACHINE] = max(self.cpu.get(cpu.MACHINE, 0.0), other.cpu.get(cpu.MACHINE, 0.0))
        return Result(
            self.done + other.done,
            self.weight + other.weight,
            self.errors + other.errors,
            self.statuses + other.statuses,
            self.latencies + other.latencies,
            self.bodies + other.bodies,
            max(self.elapsed, other.elapsed),
            cpu=used,
            cpu_wall=max(self.cpu_wall, other.cpu_wall),
            cores=self.cores,
        )

    @property
    def shares(self) -> dict[str, float]:
        """Each part's share of the machine during the run (bench/cpu.py)."""
        return cpu.shares(self.cpu, self.cores, self.cpu_wall)

    @property
    def weight_per_second(self) -> float:
        return self.weight / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency (nearest rank), in seconds."""
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs), max(1, math.ceil(p / 100 * len(xs)))) - 1]


def run(load: Load) -> Result:
    """Run ``load`` in separate processes and merge what they measured."""
    processes = max(1, min(load.processes, load.clients))
    ctx = mp.get_context("fork")
    # Two barriers: every client connected (ready), then the counters read
    # and every client released (start), so no request runs before the window opens.
    ready, start = ctx.Barrier(processes + 1), ctx.Barrier(processes + 1)
    procs, pipes = [], []
    for p in range(processes):
        clients = list(range(p, load.clients, processes))
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_process, args=(load, clients, (ready, start), send), daemon=True)
        proc.start()
        send.close()
        procs.append(proc)
        pipes.append(recv)
    try:
        # A process that failed to connect breaks the barrier; its report says why.
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait(timeout=60)
        # The window opens just before the clients are released and closes
        # once all have reported; each set of counters is read just after
        # its clock, so both cover windows of the same length. (Read after
        # the release, a busy machine let requests run before the window.)
        t0 = time.monotonic()
        before = _counters(load)
        if ready.broken:  # a client could not connect: nobody waits at the second barrier
            start.abort()
        else:
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=60)
        parts = [_receive(pipe, load.seconds + 120) for pipe in pipes]
        wall = time.monotonic() - t0
        after = _counters(load)
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    res = _merge(parts)
    res.cpu = {**cpu.delta(before, after), cpu.LOAD_GENERATOR: sum(p["cpu_s"] for p in parts)}
    res.cpu_wall = wall
    return res


def _counters(load: Load) -> cpu.Counters:
    """The machine's busy seconds and the probe's counters, now."""
    return {cpu.MACHINE: cpu.machine_busy(), **(load.probe() if load.probe else {})}


def _receive(pipe: Connection, timeout: float) -> dict[str, Any]:
    if not pipe.poll(timeout):
        raise RuntimeError("a load generator process did not report back in time")
    part: dict[str, Any] = pipe.recv()
    pipe.close()
    return part


def _merge(parts: list[dict[str, Any]]) -> Result:
    res = Result()
    starts, ends = [], []
    for part in parts:
        if "failed" in part:
            raise RuntimeError(f"load generator: {part['failed']}")
        for c in part["clients"]:
            res.done += c["done"]
            res.weight += c["weight"]
            res.errors += c["errors"]
            res.statuses.update(c["statuses"])
            res.latencies += c["latencies"]
            res.bodies += c["bodies"]
            res.error_sample = res.error_sample or c["error_sample"]
            starts.append(c["start"])
            ends.append(c["end"])
    res.elapsed = max(ends) - min(starts) if starts else 0.0
    return res


def _process(load: Load, clients: list[int], barriers: tuple[Any, Any], send: Connection) -> None:
    ready, release = barriers
    child_signals()
    results: list[dict[str, Any]] = [{} for _ in clients]
    go = threading.Event()
    conns = [http.client.HTTPConnection(HOST, load.port, timeout=load.seconds + 60) for _ in clients]
    try:
        for conn in conns:
            conn.connect()
    except OSError as e:
        ready.abort()
        send.send({"failed": f"cannot connect to {HOST}:{load.port}: {e}"})
        return
    threads = [
        threading.Thread(target=_client, args=(load, c, conns[i], go, results[i]), daemon=True)
        for i, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    ready.wait(timeout=60)
    release.wait(timeout=60)
    start = time.process_time()  # this process, every thread
    go.set()
    for t in threads:
        t.join(load.seconds + 90)
    used = time.process_time() - start
    send.send({"clients": [r for r in results if r], "cpu_s": used})
    send.close()


def _client(
    load: Load, client: int, conn: http.client.HTTPConnection, go: threading.Event, out: dict[str, Any]
) -> None:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    bodies: list[tuple[int, bytes]] = []
    done = weight = errors = 0
    error_sample = ""
    go.wait()
    start = time.monotonic()
    deadline = start + load.seconds
    for number in range(client, len(load.requests), load.clients):
        if time.monotonic() >= deadline:
            break
        req = load.requests[number]
        t0 = time.perf_counter()
        try:
            conn.request(req.method, req.path, req.body, JSON if req.body is not None else {})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            error_sample = error_sample or f"{type(e).__name__}: {e}"
            conn.close()
            conn = http.client.HTTPConnection(HOST, load.port, timeout=load.seconds + 60)
            continue
        latencies.append(time.perf_counter() - t0)
        statuses[resp.status] += 1
        if resp.status not in load.expect:
            errors += 1
            error_sample = error_sample or f"HTTP {resp.status}: {data[:300]!r}"
            continue
        done += 1
        weight += req.weight
        if len(bodies) < load.keep_bodies:
            bodies.append((number, data))
    conn.close()
    out.update(
        done=done,
        weight=weight,
        errors=errors,
        statuses=statuses,
        latencies=latencies,
        bodies=bodies,
        start=start,
        end=time.monotonic(),
        error_sample=error_sample,
    )
