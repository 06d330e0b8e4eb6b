"""Every command block of the README, run as a reader would, on a fresh checkout (issue 15).

The repository is cloned into a temporary folder at HEAD, with this working
tree's uncommitted changes to tracked files applied (CI's tree is clean, so
there it is HEAD exactly; a developer tests what they would commit; files
git does not track, ``data/`` above all, stay behind). Then every ``sh``
block runs in README order from the clone's root, as one ``bash`` script
with ``set -euo pipefail`` each, sharing the files they make: ``make run``
starts the server that the later blocks use, ``make demo`` fills it, the
platform and auditor blocks use ``mdl`` against it. A block the test cannot
run must say why in a ``<!-- not run: reason -->`` line right above it;
any other block runs and must exit 0, so a new block cannot go untested.

What differs from a reader's terminal, and why:

- ``.venv`` is a link to the environment running this test, which
  ``make test`` built from the same requirements files (their dates in the
  clone are set before its ``.run-installed``, so make does not reinstall):
  a fresh ``pip install`` would take minutes.
- ``mdl`` is ``.venv/bin/python -m client`` from the clone, which the README
  says is the same command; the block that installs it alone from PyPI is
  not run (tests/e2e/test_client_install.py installs it offline).
- ``python3`` is the environment's (a researcher's Python with pandas).
- Addresses: the README's ports (8000, 7380) are replaced by free ones, with
  ``LEDGER_BIND`` set to match, so the test runs beside other servers; every
  other ``LEDGER_*`` setting is the README's default; ``HOME`` is a
  temporary folder (``~/mdl``, the client's state files).
- Placeholders are filled in as the README says to: ``'<verifier key>'``
  with what ``make vkey`` prints, ``<base64>`` with the public key
  ``mdl keygen`` printed, the operator's synopsis (``SLUG``, ``BASE64|@FILE``,
  ...) with a platform and keys made here; optional ``[...]`` arguments are
  left out. A ``<placeholder>`` left unfilled fails the test.
- Commands that run until stopped (``make run``, ``mdl monitor``,
  ``mdl witness serve``) start in the background, in a session of their own,
  and the block goes on once each is ready; the test stops them at the end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from keys.records import PlatformKey
from tests.e2e.test_readme_api import README
from tests.server import ROOT, free_port

pytestmark = pytest.mark.slow

#: A command block: these languages are commands for a shell.
FENCE = re.compile(r"^```(sh|bash|shell|console)\n(.*?)^```$", re.M | re.S)
#: The marker of a block the test does not run, on the line right above the block.
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>[^\n]*?) -->\n\Z")
#: ``[--tree-size N]``: optional arguments, left out.
OPTIONAL = re.compile(r" \[[^\]\n]*\]")
#: ``<verifier key>``: a value the reader fills in.
PLACEHOLDER = re.compile(r"<[a-z][a-z0-9 _-]*>")
#: Continuation lines, joined before background commands are found.
CONTINUED = re.compile(r"\\\n\s*")

#: Commands that run until stopped, and the shell condition that says one is ready
#: (``{url}`` is the server's address, ``{log}`` the command's output).
BACKGROUND = {
    "make run": "curl -sf {url}/healthz > /dev/null",
    "mdl monitor": "grep -Eq 'watching .+ from tree size [0-9]+' {log}",
    "mdl witness serve": "grep -q 'listening on http://' {log}",
}

PRELUDE = r"""set -euo pipefail
ready() {  # pid, output file, condition: wait (120 s at most) until the condition holds
    for _ in $(seq 1200); do
        if eval "$3"; then return 0; fi
        if ! kill -0 "$1" 2>/dev/null; then echo "it stopped before it was ready:" >&2; cat "$2" >&2; return 1; fi
        sleep 0.1
    done
    echo "not ready in 120 s:" >&2; cat "$2" >&2; return 1
}
"""


@dataclass(frozen=True)
class Block:
    line: int
    code: str
    not_run: str | None


def command_blocks(text: str) -> list[Block]:
    """The README's shell blocks in order, with the reason of a ``not run`` marker right above one."""
    out = []
    for m in FENCE.finditer(text):
        mark = NOT_RUN.search(text, 0, m.start())
        out.append(Block(text.count("\n", 0, m.start()) + 1, m.group(2), mark.group("reason") if mark else None))
    return out


#: The languages of the README's other blocks, which are not commands.
NOT_COMMANDS = {"python", "nginx"}


def fence_languages(text: str) -> list[str]:
    """The info string of every opening fence (closing fences alternate with them)."""
    return re.findall(r"^```(.*)$", text, re.M)[::2]


def test_every_block_is_labelled_so_that_none_escapes() -> None:
    """A block without a language, or in one this test does not know, could hold
    commands that never run: each must be a shell block or a known other language."""
    assert fence_languages("```sh\nls\n```\n```\nx\n```\n") == ["sh", ""]
    languages = fence_languages(README.read_text())
    assert set(languages) <= {"sh", *NOT_COMMANDS}, languages
    # ... and every shell block is one the test reads.
    assert languages.count("sh") == len(command_blocks(README.read_text()))


def test_blocks_and_markers_are_read_exactly() -> None:
    text = "a\n```sh\nmake run\n```\n<!-- not run: why -->\n```bash\nmake test\n```\n\n```python\nx\n```\n"
    assert command_blocks(text) == [Block(2, "make run\n", None), Block(6, "make test\n", "why")]
    # A marker counts only on the line right above its block.
    assert command_blocks("<!-- not run: why -->\n\n```sh\nls\n```\n")[0].not_run is None
    blocks = command_blocks(README.read_text())
    assert len(blocks) >= 10
    assert all(b.not_run is None or b.not_run.strip() for b in blocks)
    assert sum(b.not_run is None for b in blocks) >= 8
    assert OPTIONAL.sub("", "dump [--tree-size N] [--dir DIR]   # x") == "dump   # x"


def test_placeholders_are_filled_in_order_and_unknown_ones_refused() -> None:
    fills = {"'<verifier key>'": lambda: ["'k'"], "KEY": lambda: ["one", "two"]}
    used: dict[str, int] = {}
    code = "add KEY $KEY KEY= --vkey '<verifier key>' [--from T]\nadd KEY\nadd KEY_ID\n"
    assert fill(code, fills, used) == "add one $KEY KEY= --vkey 'k'\nadd two\nadd KEY_ID\n"
    assert fill("add KEY", fills, used) == "add two"  # the last value repeats
    with pytest.raises(AssertionError, match="<new key>"):
        fill("mdl x --key <new key>", fills, used)


@dataclass
class Checkout:
    """The fresh clone and what the blocks run with."""

    root: Path
    env: dict[str, str]
    url: str
    witness_port: int
    #: Test keys for the operator's synopsis (``platform add SLUG ... BASE64|@FILE``).
    first: PlatformKey = field(default_factory=PlatformKey.generate)
    second: PlatformKey = field(default_factory=PlatformKey.generate)
    pids: Path = field(init=False)
    _vkey: str | None = None

    def __post_init__(self) -> None:
        self.pids = self.root / ".readme-test-pids"

    def vkey(self) -> str:
        """The log's verifier key, as ``make vkey`` prints it (the log exists once ``make run`` ran)."""
        if self._vkey is None:
            res = subprocess.run(
                ["make", "-s", "vkey"], cwd=self.root, env=self.env, capture_output=True, text=True, check=False
            )
            assert res.returncode == 0, res.stderr
            self._vkey = res.stdout.strip()
        return self._vkey

    def fills(self) -> dict[str, Callable[[], list[str]]]:
        """Each placeholder the README uses and its values, one per occurrence in README order (the last repeats)."""
        second_file = self.root / "second.pub"
        second_file.write_text(_b64(self.second) + "\n")
        return {
            "http://127.0.0.1:8000": lambda: [self.url],
            "127.0.0.1:7380": lambda: [f"127.0.0.1:{self.witness_port}"],
            "'<verifier key>'": lambda: [shlex.quote(self.vkey())],
            "'<log verifier key>'": lambda: [shlex.quote(self.vkey())],
            # What `mdl keygen --out platform.key`, run just before, printed, as the reader pastes it.
            "<base64>": lambda: ["\"$(mdl pubkey --key platform.key | sed -n 's/^public_key: //p')\""],
            # The operator's synopsis: a platform other than the onboarding block's, its key, a second key, revoked.
            "SLUG": lambda: ["readme-social"],
            "NAME": lambda: ["'README Social'"],
            "BASE64|@FILE": lambda: [_b64(self.first), f"@{second_file.name}"],
            "KEY_ID": lambda: [self.second.key_id],
            "TEXT": lambda: ["'a test of the README'"],
        }


def _b64(key: PlatformKey) -> str:
    return base64.b64encode(key.public_key).decode()


def fill(code: str, fills: dict[str, Callable[[], list[str]]], used: dict[str, int]) -> str:
    """``code`` with optional arguments left out and placeholders filled; ``used`` counts occurrences."""
    code = OPTIONAL.sub("", code)
    for name, values in fills.items():
        pattern = re.escape(name) if not name.isupper() else rf"(?<![$\w]){re.escape(name)}(?![\w=])"
        if not re.search(pattern, code):
            continue
        chosen = values()

        def one(_: re.Match[str], name: str = name, chosen: list[str] = chosen) -> str:
            used[name] = used.get(name, 0) + 1
            return chosen[min(used[name], len(chosen)) - 1]

        code = re.sub(pattern, one, code)
    left = PLACEHOLDER.findall(code)
    assert not left, f"placeholders the test does not know how to fill: {left}"
    return code


def script(code: str, n: int, checkout: Checkout) -> str:
    """The block as a bash script, commands that run until stopped sent to the background."""
    lines = []
    for i, line in enumerate(CONTINUED.sub(" ", code).splitlines()):
        command = line.split("  #", 1)[0].strip()
        kind = next((k for k in BACKGROUND if command.startswith(k)), None)
        if kind is None:
            lines.append(line)
            continue
        log = checkout.root / f".readme-test-{n}-{i}.log"
        ready = BACKGROUND[kind].format(url=checkout.url, log=log)
        lines.append(f"setsid {command} > {log} 2>&1 &")
        lines.append(f"echo $! >> {checkout.pids}; ready $! {log} {shlex.quote(ready)}")
    return PRELUDE + "\n".join(lines) + "\n"


#: What the README says a block's commands print, checked after the block ran
#: (keyed by a command of the block; every key must match a block).
OUTCOMES = {
    "make demo": [
        r"generated 3000 records",
        *(rf"{slug} +[0-9]+ records: +[0-9]+ created" for slug in ("demo-chirp", "demo-tubeview", "demo-facespace")),
        r"all verified in the log's tree of size [0-9]+",
    ],
    "make vkey": [r"localhost/moderation-ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*\n", r"audit ok: [0-9]+ entries"],
    "ledger platform list": [r"readme-social"],
    "mdl check-receipt --vkey": [
        r"7 records: 7 created, 0 already logged",
        r"(verified: entry [0-9]+, record .*\n){7}",
    ],
    "mdl dsa-import": [r"imported and signed 2 statements"],
    "grep -i '^ledger-checkpoint-size'": [r"(?i)ledger-checkpoint-size: [0-9]+", r"\([1-9][0-9]*, [0-9]+\)"],
    "mdl evenness": [
        r"full: the root recomputed from all [0-9]+ entries matches",
        r"identical \(sha256 [0-9a-f]{64}\)",
    ],
    "mdl witness keygen": [r"witness\.example/w1\+[0-9a-f]{8}\+"],
}


def _fresh_clone(root: Path, venv: Path) -> None:
    """Clone this repository at HEAD into ``root``, with the working tree's changes to
    tracked files, and link ``venv`` as its ``.venv`` dated after its requirements files."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(root)], check=True)
    subprocess.run(["git", "checkout", "--quiet", head.stdout.strip()], cwd=root, check=True)
    diff = subprocess.run(["git", "diff", "--binary", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    if diff:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=root, input=diff, check=True)
    installed = venv / ".run-installed"
    assert installed.exists(), f"{venv} was not made by the Makefile (no .run-installed): run `make test`"
    (root / ".venv").symlink_to(venv)
    before = installed.stat().st_mtime - 1
    for name in ("requirements.txt", "requirements-test.txt"):
        os.utime(root / name, (before, before))


def _reader_env(root: Path, venv: Path, tools: Path, home: Path, port: int) -> dict[str, str]:
    """A reader's environment: ``mdl`` and a ``python3`` with pandas in ``tools``, the
    README's default settings but ``LEDGER_BIND``, and ``home`` as ``HOME``."""
    tools.mkdir()
    home.mkdir()
    (tools / "mdl").write_text(f'#!/bin/sh\nPYTHONPATH={root} exec {root}/.venv/bin/python -m client "$@"\n')
    # A script, not a link: Python finds its environment beside the path it was started by.
    (tools / "python3").write_text(f'#!/bin/sh\nexec {venv}/bin/python "$@"\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "XDG_STATE_HOME", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_") and k not in drop}
    # An activated environment's bin folder would hide a README command that forgets `.venv/bin/`.
    path = [p for p in env["PATH"].split(os.pathsep) if Path(p).resolve() != venv / "bin"]
    return env | {"HOME": str(home), "PATH": os.pathsep.join([str(tools), *path]), "LEDGER_BIND": f"127.0.0.1:{port}"}


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    if shutil.which("git") is None:
        pytest.skip("git is missing: the README's commands run on a fresh clone")
    root, venv = tmp_path / "clone", Path(sys.prefix).resolve()
    _fresh_clone(root, venv)
    port = free_port()
    env = _reader_env(root, venv, tmp_path / "bin", tmp_path / "home", port)
    co = Checkout(root, env, f"http://127.0.0.1:{port}", free_port())
    try:
        yield co
    finally:
        _stop(co.pids)


def _stop(pids: Path) -> None:
    """Stop each background command's session (make and its gunicorn, a monitor, a witness)."""
    groups = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    for pgid in groups:
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_every_readme_command_block_runs_on_a_fresh_checkout(checkout: Checkout) -> None:
    blocks = command_blocks((checkout.root / "README.md").read_text())
    fills = checkout.fills()
    used: dict[str, int] = {}
    outcomes_seen = set()
    for n, block in enumerate(blocks):
        if block.not_run is not None:
            continue
        code = fill(block.code, fills, used)
        res = subprocess.run(
            ["bash", "-c", script(code, n, checkout)],
            cwd=checkout.root,
            env=checkout.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        shown = f"README.md line {block.line}:\n{code}\nexit {res.returncode}\n{res.stdout}\n{res.stderr}"
        assert res.returncode == 0, shown
        for key, patterns in OUTCOMES.items():
            if key in block.code:
                outcomes_seen.add(key)
                for pattern in patterns:
                    assert re.search(pattern, res.stdout + res.stderr), f"{pattern!r} not printed by {shown}"
    assert outcomes_seen == set(OUTCOMES), "an expected outcome names no command of the README"
    # The synopsis's two keys went to their two places, each once.
    assert used.get("BASE64|@FILE") == 2
    _after(checkout)


def _after(checkout: Checkout) -> None:
    """What the README says the blocks leave behind."""
    root = checkout.root
    # `make run`: the SQLite database under data/, the log's key in data/log.key, mode 0600.
    assert (root / "data" / "ledger.sqlite3").stat().st_size > 0
    assert stat.S_IMODE((root / "data" / "log.key").stat().st_mode) == 0o600
    # `ledger dump`: one folder per checkpoint, whose SHA256SUMS names its files and their sums.
    (dump,) = (root / "data" / "dumps").iterdir()
    sums = [line.split("  ", 1) for line in (dump / "SHA256SUMS").read_text().splitlines()]
    assert {"checkpoint"} < {name for _, name in sums}
    for digest, name in sums:
        assert hashlib.sha256((dump / name).read_bytes()).hexdigest() == digest, name
    for name in ("records.csv", "records-dsa.csv", "political.csv", "42.tlog-proof", "witness.key"):
        assert (root / name).stat().st_size > 0, name
    # The server `make run` started is still the one answering, and the blocks grew its log.
    log = httpx.get(f"{checkout.url}/api/v1/log", timeout=10).json()
    assert log["verifier_key"] == checkout.vkey()
