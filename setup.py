"""Leaves the server side of ``ledger`` out of the client distribution (pyproject.toml).

``ledger`` is one package whose top-level modules (db, storage, sequencer, ...)
need SQLAlchemy; the client needs only its ``__init__`` and ``errors`` and the
pure folders. setuptools includes a package's every module, so this filter
is the one place that says which the client ships.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

CLIENT_LEDGER_MODULES = {"__init__", "errors"}


class ClientBuildPy(build_py):  # type: ignore[misc]
    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        if package != "ledger":
            return modules
        return [m for m in modules if m[1] in CLIENT_LEDGER_MODULES]


setup(cmdclass={"build_py": ClientBuildPy})
