"""The import contract, checked rather than remembered.

One direction: ``keys`` <- ``ledger`` <- {``api``, ``web``} <- ``app.py``
<- ``wsgi.py``; ``api`` and ``web`` never import each other. The pure parts
of ``ledger`` (the transparency-log formats, the record formats, the
statistics) import no database, web or schema library and nothing from the
database side, so that ``client`` (which imports only those) runs without
Flask, SQLAlchemy or a database driver. No module imports another's
private name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The folders of ``ledger`` that do no I/O and need no server library: the
#: transparency-log formats, the record formats, the statistics. What they may
#: import of ``ledger`` besides each other: the package itself and its errors.
PURE_FOLDERS = ("ledger.tlog", "ledger.records", "ledger.evenness", "ledger.stats")
PURE_SHARED = {"ledger", "ledger.errors"}


def is_pure(module: str) -> bool:
    return module in PURE_SHARED or any(module == f or module.startswith(f + ".") for f in PURE_FOLDERS)


SERVER_LIBRARIES = {"flask", "werkzeug", "marshmallow", "apispec", "sqlalchemy", "alembic", "psycopg", "gunicorn"}

#: What each top-level package may not import (project packages and libraries).
FORBIDDEN = {
    "keys": {"ledger", "api", "web", "app", "cli", "wsgi", "client", "demo"} | SERVER_LIBRARIES,
    "ledger": {"api", "web", "app", "cli", "wsgi", "client", "demo", "flask", "werkzeug", "marshmallow", "apispec"},
    "api": {"web", "app", "cli", "wsgi", "client", "demo"},
    # Pages call ``ledger`` for every read and build no SQL: no database library.
    "web": {"api", "app", "cli", "wsgi", "client", "demo", "sqlalchemy", "alembic", "psycopg"},
    "client": {"api", "web", "app", "cli", "wsgi", "demo"} | SERVER_LIBRARIES,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported from it, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((module, [a.name for a in node.names], node.lineno))
    return out


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    bad = []
    for path in _sources(package):
        for module, _, line in _imports(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_pure_ledger_modules_import_only_pure_ones() -> None:
    bad = []
    for path in _sources("ledger"):
        name = _module_name(path)
        if not is_pure(name):
            continue
        for module, _, line in _imports(path):
            top = module.split(".")[0]
            if top in SERVER_LIBRARIES:
                bad.append(f"{name}:{line} imports {module}")
            elif top == "ledger" and not is_pure(module):
                bad.append(f"{name}:{line} imports {module}, which is not pure")
    assert not bad, "\n".join(bad)


#: Views call ``ledger`` read functions (``ledger.query`` above all) and never
#: build SQL, so ``api`` and ``web`` import no SQLAlchemy: they hold a session
#: (``ledger.db.Session``) and catch ``ledger.db.DatabaseError``, nothing more.
VIEW_PACKAGES = ("api", "web")


def test_views_build_no_sql() -> None:
    bad = []
    for package in VIEW_PACKAGES:
        for path in _sources(package):
            where = path.relative_to(ROOT).as_posix()
            bad += [
                f"{where}:{line} imports {module}"
                for module, _, line in _imports(path)
                if module.split(".")[0] == "sqlalchemy"
            ]
    assert not bad, "\n".join(bad)


def test_client_imports_only_the_pure_ledger() -> None:
    bad = []
    for path in _sources("client"):
        for module, _, line in _imports(path):
            if module.split(".")[0] == "ledger" and not is_pure(module):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_no_private_name_crosses_a_module() -> None:
    project = {"keys", "ledger", "api", "web", "client", "demo", "app", "cli", "bench"}
    bad = []
    for package in ("keys", "ledger", "api", "web", "client", "demo", "bench"):
        for path in _sources(package):
            for module, names, line in _imports(path):
                if module.split(".")[0] not in project:
                    continue
                for n in names:
                    if n.startswith("_") and not n.startswith("__"):
                        bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}.{n}")
    assert not bad, "\n".join(bad)


def test_the_client_loads_no_server_library() -> None:
    """At run time too: every client command's module, imported in a fresh interpreter."""
    code = (
        "import sys, client.__main__, client.audit, client.evenness, client.mirror, client.platform, client.witness\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(SERVER_LIBRARIES)!r}))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the client loaded {out.stdout.strip()}"
