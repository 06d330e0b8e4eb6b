"""The operator's side of the demo: the ``flask --app app ledger`` commands,
run as subprocesses exactly as an operator would type them.

They inherit this process's environment, so ``LEDGER_DATABASE_URL``,
``LEDGER_KEY_FILE`` and ``LEDGER_ORIGIN`` must be the running server's:
the commands write to the database directly, not through the server.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from keys.records import PlatformKey

ROOT = Path(__file__).resolve().parent.parent


class OperatorError(Exception):
    """An operator command failed; the message holds its output."""


class Operator:
    """``flask --app app ledger ...`` in the repository, with this process's environment."""

    def __init__(self, python: str = sys.executable, cwd: Path = ROOT, timeout: float = 120) -> None:
        self.base = [python, "-m", "flask", "--app", "app", "ledger"]
        self.cwd, self.timeout = cwd, timeout

    def run(self, *args: str) -> str:
        """Run one command; return its standard output, or raise with what it printed."""
        cmd = [*self.base, *args]
        res = subprocess.run(cmd, cwd=self.cwd, capture_output=True, text=True, timeout=self.timeout, check=False)  # noqa: S603 - our own CLI, no shell
        if res.returncode != 0:
            out = (res.stderr.strip() or res.stdout.strip()).splitlines()
            raise OperatorError(f"`flask --app app ledger {' '.join(args[:3])}` failed: {out[-1] if out else ''}")
        return res.stdout

    def vkey(self) -> str:
        """The log's verifier key, read from its key file: the out-of-band copy."""
        return self.run("vkey").strip()

    def add_platform(self, slug: str, name: str, key: PlatformKey) -> str:
        return self.run("platform", "add", slug, "--name", name, "--public-key", _b64(key)).strip()

    def add_key(self, slug: str, key: PlatformKey) -> str:
        return self.run("platform", "add-key", slug, "--public-key", _b64(key)).strip()


def _b64(key: PlatformKey) -> str:
    return base64.b64encode(key.public_key).decode()
