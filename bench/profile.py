"""Sampling the gunicorn workers with py-spy while a step runs (``--profile``).

py-spy (``.venv/bin/pip install py-spy``; not a requirement) samples each
worker's Python stacks from outside; the raw "collapsed" stacks are then
summed per function, inclusive of callees, so the dominant step of a
missed target can be named. Profiled runs are extra runs: their timings
are not reported, since sampling costs the server some CPU.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@contextmanager
def sampling(pids: list[int], out: Path, rate: int = 200, gil: bool = False) -> Iterator[None]:
    """Record ``pids`` while the block runs; write the top functions to ``out``.

    With ``gil``, only the thread holding the GIL is sampled (py-spy
    ``--gil``): the shares are then of the interpreter's work, free of
    threads that py-spy takes for busy while they wait in C (``recv``,
    ``sleep``, a lock), but without the C code that releases the GIL
    (Ed25519, zlib, SQLite's and psycopg's calls)."""
    exe = py_spy()
    if exe is None:
        out.write_text("py-spy is not installed: .venv/bin/pip install py-spy\n")
        yield
        return
    raws = [out.with_name(f"{out.stem}-{pid}.raw") for pid in pids]
    procs = [
        subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--full-filenames",
                *(["--gil"] if gil else []),
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for pid, raw in zip(pids, raws, strict=True)
    ]
    try:
        yield
    finally:
        errors = []
        for proc in procs:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode not in (0, -signal.SIGINT) and err:
                errors.append(err.decode(errors="replace")[-500:])
        # The raw stacks stay beside the summary, for flame graph tools.
        out.write_text(summarise([r for r in raws if r.exists()]) + "".join(errors))


def summarise(raws: list[Path], top: int = 25) -> str:
    """Where the samples in ``raws`` (py-spy raw format) went: the project's own
    functions inclusive of what they call, then the leaf functions of all code."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for raw in raws:
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [f for f in stack.split(";") if not f.startswith(("thread ", "process "))]
            total += n
            for name in {_short(f) for f in frames if _ours(f)}:
                inclusive[name] += n
            if frames:
                own[_short(frames[-1])] += n
    if not total:
        return "no samples\n"
    lines = [
        f"{total} samples of the busy threads",
        "",
        "The project's functions (not the bench's), inclusive of callees:",
    ]
    lines += [f"{n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "Leaf functions (own time), any code:"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _where(frame: str) -> str:
    return frame.partition(" (")[2].rsplit(":", 1)[0].rstrip(")")


def _ours(frame: str) -> bool:
    """Is the frame in the project's code (not the standard library or .venv)?"""
    file = _where(frame)
    if not file or file.startswith("<"):
        return False
    path = ROOT / file  # relative paths are relative to the server's directory, ROOT
    return ROOT in path.parents and not {".venv", "bench"} & set(path.relative_to(ROOT).parts)


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (to/file.py)``: one entry per function."""
    name = frame.partition(" (")[0]
    parts = Path(_where(frame)).parts
    return f"{name} ({'/'.join(parts[-2:])})"
