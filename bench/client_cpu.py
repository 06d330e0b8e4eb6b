"""CPU an entry of the client's bulk commands, ``mirror`` and ``verify --full``,
against the real gunicorn, this checkout's client and another's taking turns.

One log of ``--size`` entries (the bench's records) behind gunicorn (this
checkout's server, 2 workers x 16 threads, as ``make bench``); each round
runs ``python -m client mirror`` into a new file and ``python -m client
verify --full --sample 0`` from each tree in turn, in a child process. The
client's CPU is the child's with its reaped worker processes
(``RUSAGE_CHILDREN``), interpreter start-up included, and its main
process's alone (what bounds the wall rate of ``verify --full`` when the
workers have cores to spare); the server's is
gunicorn's process tree (and its backends on PostgreSQL) over the command.
Wall rates are printed too, but on shared cores only the CPU compares.

    python -m bench.client_cpu --against /work/main --size 20001 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cpu, turns
from bench.corpus import Corpus
from bench.server import gunicorn

SEED = bytes(range(32))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


#: Runs ``python -m client``, then prints the CPU seconds of this (main) process
#: alone on stderr's last line, its worker processes being reaped by then.
_WRAPPER = (
    "import atexit, resource, runpy, sys\n"
    "def cpu():\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print(f'main-cpu {r.ru_utime + r.ru_stime}', file=sys.stderr)\n"
    "atexit.register(cpu)\n"
    "runpy.run_module('client', run_name='__main__')\n"
)


def _run(tree: Path, argv: list[str]) -> tuple[float, float, float]:
    """Run ``python -m client ARGV`` with ``tree``'s code: (CPU s with its
    workers, CPU s of its main process alone, wall s)."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    before, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} from {tree} failed: {done.stderr[-2000:]}")
    main = float(done.stderr.strip().splitlines()[-1].split()[-1])
    return _children_cpu() - before, main, wall


def run(kind: str, args: argparse.Namespace, pg_url: str | None) -> None:
    trees = turns.trees(args.against)
    with (
        turns.filled_log(kind, pg_url, Corpus(SEED), args.size) as (db, key_file),
        tempfile.TemporaryDirectory() as tmp,
        gunicorn(db, key_file.parent, 2, 16) as srv,
    ):
        base = ["--url", srv.url, "--vkey", srv.vkey, "--evidence", f"{tmp}/evidence"]

        def argv(command: str, r: int, name: str) -> list[str]:
            if command == "mirror":
                return ["mirror", *base, "--db", f"{tmp}/m-{name}-{r}.sqlite3"]
            return ["verify", *base, "--full", "--sample", "0", "--state", f"{tmp}/s-{name}-{r}.json"]

        # a warm-up: the server's first reads of the tiles
        _run(trees["this"], argv("verify --full", -1, "warm"))
        got: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
        for r in range(args.rounds):
            for command in ("mirror", "verify --full"):
                for name, tree in trees.items():
                    s0 = srv.cpu_probe()
                    client, main, wall = _run(tree, argv(command, r, name))
                    server = sum(cpu.delta(s0, srv.cpu_probe()).values())
                    got.setdefault((command, name), []).append((client, server, wall, main))
        n = args.size
        for (command, name), runs in got.items():
            c = [x[0] / n * 1e6 for x in runs]
            s = [x[1] / n * 1e6 for x in runs]
            w = [n / x[2] for x in runs]
            m = [x[3] / n * 1e6 for x in runs]
            print(
                f"{kind} {command:14} {name:8} client {statistics.median(c):6.1f} µs/entry "
                f"({' '.join(f'{v:.1f}' for v in c)}), its main process {statistics.median(m):6.1f} "
                f"({' '.join(f'{v:.1f}' for v in m)}), server {statistics.median(s):5.1f} "
                f"({' '.join(f'{v:.1f}' for v in s)}), wall {statistics.median(w):6.0f}/s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--size", type=int, default=20_001)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="another checkout whose client to measure in turn (before a change)")
    args = parser.parse_args()
    for kind, pg_url in turns.backends(args.backends):
        run(kind, args, pg_url)


if __name__ == "__main__":
    main()
