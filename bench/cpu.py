"""Who used the cores during a timed run: the load generator, the server, the rest.

On a 2-core machine the load generator (it sends, reads and parses every
answer) competes with the server for the same cores, so a throughput
alone says as much about the client as about the server. Every load run
therefore records CPU seconds, from ``/proc``, over its timed window:

* the **load generator**: its forked processes, each measuring its own
  CPU (every thread) from the start signal to its last client's finish
  (``loadgen.py``); the parent only waits on pipes and is not counted;
* the **server**: the gunicorn master and every process below it (workers,
  and whatever they start), each with the CPU of the children it has
  reaped, so a worker that exits during the run is still counted;
* its **PostgreSQL backends**: the backend processes whose
  ``application_name`` is the server's (``server.py`` sets it), not the WAL
  writer, checkpointer or autovacuum, which the database server shares
  with every other database and client;
* the **machine**: busy time of all cores from ``/proc/stat``, so that what
  none of the above used (other processes, the kernel's softirqs) shows as
  the rest.

A share of the machine is CPU seconds over (cores times wall seconds); the
server-side figure is throughput per second of server CPU (gunicorn and
its PostgreSQL backends), which does not depend on how much of the
machine the generator took.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
#: Counters by part, cumulative CPU seconds; a probe returns one per call.
Counters = dict[str, float]
Probe = Callable[[], Counters]

LOAD_GENERATOR, SERVER, DATABASE, MACHINE = "load generator", "server", "postgresql", "machine busy"


def parse_stat(text: str) -> tuple[int, float]:
    """(ppid, CPU seconds of the process and of its reaped children) from ``/proc/<pid>/stat``.

    proc(5): the command name is field 2, in parentheses, and may itself
    hold spaces and parentheses, so fields are counted from the last ")".
    After it come state (3), ppid (4), ... utime (14), stime (15),
    cutime (16), cstime (17), in clock ticks.
    """
    rest = text.rpartition(")")[2].split()
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def _stats() -> Iterator[tuple[int, str]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # gone since the listing
                continue


def tree_cpu(root: int, stats: Iterable[tuple[int, str]] | None = None) -> float:
    """CPU seconds of ``root`` and every process below it, reaped children included.

    A process that exits and is reaped moves its CPU (its own and its
    reaped children's) into its parent's cutime/cstime, so the sum over
    the live tree only grows while the root lives.
    """
    parsed = {pid: parse_stat(text) for pid, text in (_stats() if stats is None else stats)}
    below: dict[int, list[int]] = {}
    for pid, (ppid, _) in parsed.items():
        below.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in parsed:
            total += parsed[pid][1]
            todo += below.get(pid, [])
    return total


def pids_cpu(part: str, pids: Iterable[int]) -> Counters:
    """CPU seconds of each of the processes ``pids`` that is visible, as "part/pid" counters."""
    out: Counters = {}
    for pid in pids:
        try:
            out[f"{part}/{pid}"] = parse_stat(Path(f"/proc/{pid}/stat").read_text())[1]
        except (OSError, IndexError, ValueError):  # gone, or not ours to read
            continue
    return out


def machine_busy(text: str | None = None) -> float:
    """Busy CPU seconds of all cores since boot, from the ``cpu`` line of ``/proc/stat``.

    proc(5): user nice system idle iowait irq softirq steal guest guest_nice;
    guest time is already inside user, so busy is everything but idle,
    iowait and the two guest fields.
    """
    line = (text if text is not None else Path("/proc/stat").read_text()).splitlines()[0]
    fields = [int(x) for x in line.split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def delta(before: Counters, after: Counters) -> Counters:
    """CPU seconds used between two probes, by part.

    A key "part/id" counts one process of a part (a PostgreSQL backend):
    one that appeared in between counts from zero, one that left is dropped
    (its last seconds are lost, never subtracted); the parts are summed.
    """
    out: Counters = {}
    for key, value in after.items():
        part = key.partition("/")[0]
        out[part] = out.get(part, 0.0) + value - before.get(key, 0.0)
    return out


def shares(cpu: Counters, cores: int, wall: float) -> Counters:
    """Each part's CPU seconds as a share of the machine (cores times wall), and the rest.

    "other" is what the machine was busy with beyond the parts measured
    (other processes, interrupts); it is present only when the machine's
    busy time was measured, and never below zero: the counters are read at
    slightly different moments, and the machine's busy time is sampled at
    clock ticks while a process's is the scheduler's exact runtime (on CI's
    machine a one-second run read the machine busy for half the CPU one
    process used), so "other" is a rough figure and zero means "too little
    to measure".
    """
    if wall <= 0 or cores <= 0:
        return {}
    out = {k: v / (cores * wall) for k, v in cpu.items() if k != MACHINE}
    if MACHINE in cpu:
        out["other"] = max(0.0, cpu[MACHINE] / (cores * wall) - sum(out.values()))
    return out


def server_cpu(cpu: Counters) -> float | None:
    """The server's CPU seconds: gunicorn and its PostgreSQL backends; None if unmeasured."""
    if SERVER not in cpu:
        return None
    return cpu[SERVER] + cpu.get(DATABASE, 0.0)
