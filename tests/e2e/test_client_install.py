"""The client installed on its own: a fresh virtual environment, the
repository's distribution (pyproject.toml) installed into it, and its ``mdl``
console script signing, submitting, checking receipts and verifying against
a live gunicorn server.

Offline, as CI must run: the wheel is built with this environment's
setuptools (``--no-build-isolation``), and the client's declared
dependencies come from this environment's site-packages, linked into a
folder the fresh environment reads through a ``.pth`` file. Only those
distributions are linked (found from the wheel's own ``Requires-Dist``,
recursively), so an import of anything else, Flask or SQLAlchemy above all,
fails there as it would for a platform engineer.
"""

from __future__ import annotations

import base64
import email
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from keys.records import PlatformKey
from tests.server import ROOT, gunicorn

pytestmark = pytest.mark.slow

ORIGIN = "install.example/ledger"
#: What the distribution is built from (pyproject.toml decides what goes in).
SOURCES = ["pyproject.toml", "setup.py", "README.md", "client", "keys", "ledger"]
EXAMPLES = ROOT / "docs" / "examples"
#: The examples as one batch, decisions before the appeal and amendment that refer to them.
EXAMPLE_BATCH = [
    *sorted(EXAMPLES.glob("decision-*.json")),
    EXAMPLES / "appeal-reversed.json",
    EXAMPLES / "amendment-late-classification.json",
]


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _requirement_names(requires: list[str] | None) -> list[str]:
    """Distribution names of the requirements that apply here, without extras."""
    out = []
    for line in requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(req.name)
    return out


def link_dependencies(requires: list[str], into: Path) -> list[str]:
    """Link the installed files of ``requires`` and their dependencies into ``into``; return the names."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(requires)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        todo += _requirement_names(dist.requires)
    into.mkdir()
    for dist in seen.values():
        for f in dist.files or []:
            top = f.parts[0]
            if top == ".." or top == "__pycache__" or (into / top).exists():
                continue
            source = Path(str(dist.locate_file(top)))
            if source.exists():
                (into / top).symlink_to(source)
    return sorted(seen)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the client installed; return its bin folder."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / name)
    wheels = base / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, "."]
    res = run(build, src)
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = email.message_from_bytes(z.read(meta)).get_all("Requires-Dist")
    # The server side of ledger stays out (setup.py); the pure folders go in.
    assert "ledger/errors.py" in names
    assert "ledger/tlog/verify.py" in names
    assert not [n for n in names if n in ("ledger/db.py", "ledger/storage.py", "ledger/sequencer.py")]
    assert not [n for n in names if n.split("/")[0] in ("api", "web", "demo", "app.py")]

    venv = base / "venv"
    res = run([sys.executable, "-m", "venv", venv], base)
    assert res.returncode == 0, res.stderr
    py = venv / "bin" / "python"
    site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base).stdout.strip()
    linked = link_dependencies(_requirement_names(requires), base / "deps")
    assert not {"flask", "sqlalchemy"} & set(linked)
    Path(site, "client-deps.pth").write_text(str(base / "deps") + "\n")
    res = run([py, "-m", "pip", "install", "--no-index", "--no-deps", wheel], base)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([py, "-m", "pip", "check"], base)
    assert res.returncode == 0, res.stdout + res.stderr
    return venv / "bin"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "LEDGER_KEY_FILE": str(tmp_path / "log.key"),
        "LEDGER_ORIGIN": ORIGIN,
    }
    with gunicorn(env, workers=2) as url:
        yield url, env


def test_installed_client_loads_no_server_library(installed: Path, tmp_path: Path) -> None:
    code = "import client, client.cli\nfor m in ('flask', 'sqlalchemy', 'marshmallow', 'api', 'web'):\n"
    code += "    try:\n        __import__(m)\n    except ImportError:\n        continue\n    print(m)\n"
    code += "print(client.__file__)\n"
    res = run([installed / "python", "-c", code], tmp_path)
    assert res.returncode == 0, res.stderr
    (where,) = res.stdout.splitlines()  # nothing of the server imported, and the client is the installed one
    assert where.startswith(str(installed.parent / "lib")), where


def test_installed_mdl_signs_submits_and_verifies(
    installed: Path, server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """The README's platform and auditor commands, with the installed ``mdl``."""
    url, env = server
    mdl = installed / "mdl"
    key = tmp_path / "platform.key"
    res = run([mdl, "keygen", "--out", key], tmp_path)
    assert res.returncode == 0, res.stderr
    public = base64.b64encode(PlatformKey.from_text(key.read_text()).public_key).decode()
    flask = [sys.executable, "-m", "flask", "--app", "app", "ledger"]
    add = [*flask, "platform", "add", "example-social", "--name", "Example Social", "--public-key", public]
    res = run(add, ROOT, env)
    assert res.returncode == 0, res.stderr
    vkey = run([*flask, "vkey"], ROOT, env).stdout.strip()

    signed = tmp_path / "signed.ndjson"
    res = run([mdl, "sign", "--key", key, "--out", signed, *EXAMPLE_BATCH], tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(signed.read_text().splitlines()) == len(EXAMPLE_BATCH)

    state, receipts = tmp_path / "state.json", tmp_path / "receipts.ndjson"
    submit = [mdl, "submit", "--url", url, "--vkey", vkey, "--state", state, "--receipts", receipts, signed]
    res = run(submit, tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"{len(EXAMPLE_BATCH)} records: {len(EXAMPLE_BATCH)} created, 0 already logged" in res.stdout

    res = run([mdl, "check-receipt", "--vkey", vkey, receipts], tmp_path)
    assert res.returncode == 0, res.stderr
    verified = res.stdout.splitlines()
    assert len(verified) == len(EXAMPLE_BATCH)
    assert "record example-social/apl-2026-000031 (appeal)" in verified[-2]

    res = run([mdl, "verify", "--url", url, "--vkey", vkey, "--state", state, "--full"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
