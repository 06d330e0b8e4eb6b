"""Run the independent Go verifier (tests/interop/tlogcheck) from pytest.

The verifier is written against Debian's ``golang.org/x/mod/sumdb/tlog`` and
``sumdb/note`` (packages ``golang-go`` and ``golang-golang-x-mod-dev``) and is
built offline in GOPATH mode, so it shares no code with the Python log.

Typical use in a test module::

    from tests.interop import gotlog   # or however the tests import it

    @pytest.fixture(scope="session")
    def tlogcheck(tmp_path_factory):
        gotlog.require_go()
        return gotlog.build_tlogcheck(tmp_path_factory.mktemp("tlogcheck"))

    def test_go_verifier_accepts_log(tlogcheck, live_server):
        proc = gotlog.run_tlogcheck(tlogcheck, live_server.url, live_server.vkey,
                                    old=[(5, root5_bytes)])
        gotlog.assert_ok(proc)

Standard library only (pytest is imported lazily inside ``require_go``).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

#: Where Debian's golang-golang-x-mod-dev puts its sources
#: (/usr/share/gocode/src/golang.org/x/mod/...). Overridable for other layouts.
DEFAULT_GOPATH = "/usr/share/gocode"
GOPATH_ENV = "TLOGCHECK_GOPATH"

SOURCE_DIR = Path(__file__).resolve().parent / "tlogcheck"

SKIP_MESSAGE = "Go toolchain with golang.org/x/mod not installed: apt-get install golang-go golang-golang-x-mod-dev"

BUILD_TIMEOUT = 600  # seconds; first build compiles part of the std library
RUN_TIMEOUT = 300

_lock = threading.Lock()
_built: Path | None = None
_available: bool | None = None


def _gopath() -> str:
    return os.environ.get(GOPATH_ENV) or DEFAULT_GOPATH


def _go_binary() -> str | None:
    go = shutil.which("go")
    if go is None:
        for cand in ("/usr/lib/go/bin/go", "/usr/lib/go-1.19/bin/go"):
            if os.access(cand, os.X_OK):
                return cand
    return go


def _build_env(gocache: Path) -> dict:
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",  # GOPATH mode: resolve x/mod from Debian's tree
        GOPATH=_gopath(),
        GOCACHE=str(gocache),
        GOFLAGS="",
        GOPROXY="off",  # never touch the network
        CGO_ENABLED="0",  # static binary, no C toolchain needed
    )
    return env


def go_available() -> bool:
    """True when `go` runs and Debian's x/mod sumdb sources are present."""
    global _available
    if _available is not None:
        return _available
    ok = False
    go = _go_binary()
    src = Path(_gopath()) / "src" / "golang.org" / "x" / "mod" / "sumdb"
    if go and (src / "tlog").is_dir() and (src / "note").is_dir() and SOURCE_DIR.is_dir():
        try:
            proc = subprocess.run(
                [go, "version"],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            ok = proc.returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
    _available = ok
    return ok


def require_go() -> None:
    """pytest.skip() the calling test when the Go verifier cannot be built,
    or fail it when LEDGER_TEST_REQUIRE_GO is set (as in CI)."""
    import pytest

    if not go_available():
        if os.environ.get("LEDGER_TEST_REQUIRE_GO"):
            pytest.fail("LEDGER_TEST_REQUIRE_GO is set but " + SKIP_MESSAGE)
        pytest.skip(SKIP_MESSAGE)


def build_tlogcheck(tmp_path: str | Path) -> Path:
    """Build tests/interop/tlogcheck into tmp_path (once per process).

    Later calls return the first binary while it still exists, whatever
    tmp_path they pass. Raises RuntimeError with the compiler output if
    the build fails.
    """
    global _built
    with _lock:
        if _built is not None and _built.exists():
            return _built
        go = _go_binary()
        if go is None:
            raise RuntimeError(SKIP_MESSAGE)
        out_dir = Path(tmp_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        binary = out_dir / "tlogcheck"
        gocache = out_dir / "gocache"
        gocache.mkdir(exist_ok=True)
        proc = subprocess.run(
            [go, "build", "-o", str(binary), "."],
            cwd=str(SOURCE_DIR),
            env=_build_env(gocache),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0 or not binary.exists():
            raise RuntimeError(
                "building tlogcheck failed (exit %d)\nstdout:\n%s\nstderr:\n%s"
                % (proc.returncode, proc.stdout, proc.stderr)
            )
        _built = binary
        return binary


OldTree = tuple[int, bytes | str]


def _format_old(old: Iterable[OldTree]) -> str:
    parts = []
    for size, root in old:
        if isinstance(root, (bytes, bytearray, memoryview)):
            root = bytes(root)
            if len(root) != 32:
                raise ValueError("old root for size %d must be 32 bytes, got %d" % (size, len(root)))
            root = base64.b64encode(root).decode("ascii")
        parts.append("%d:%s" % (int(size), root))
    return ",".join(parts)


def run_tlogcheck(
    binary: str | Path,
    url: str,
    vkey: str,
    old: Sequence[OldTree] = (),
    *,
    max_pairs: int | None = None,
    origin: str | None = None,
    allow_full_fallback: bool = False,
    extra_args: Sequence[str] = (),
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess:
    """Run the verifier against a live log at `url` (checkpoint at url/checkpoint).

    `vkey` is the signed-note verifier key ``name+hexid+base64key``;
    `old` lists earlier tree heads ``(size, root)`` (root as 32 raw bytes or
    base64 text) that must be consistent with the current checkpoint.
    Returns the CompletedProcess (text mode): returncode 0 and a one-line
    ``OK ...`` summary on stdout when all checks pass, 1 with a
    ``tlogcheck: FAIL: ...`` line on stderr otherwise, 2 on bad arguments.
    """
    args = [str(binary), "-url", url, "-vkey", vkey]
    if old:
        args += ["-old", _format_old(old)]
    if max_pairs is not None:
        args += ["-max-pairs", str(int(max_pairs))]
    if origin is not None:
        args += ["-origin", origin]
    if allow_full_fallback:
        args.append("-allow-full-fallback")
    args += list(extra_args)
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_ok(proc: subprocess.CompletedProcess) -> str:
    """Assert the verifier passed; return its summary line."""
    assert proc.returncode == 0, "tlogcheck failed (exit %d): %s%s" % (
        proc.returncode,
        proc.stderr.strip(),
        ("\nstdout: " + proc.stdout.strip()) if proc.stdout.strip() else "",
    )
    return proc.stdout.strip()


def assert_fails(proc: subprocess.CompletedProcess, fragment: str = "") -> str:
    """Assert the verifier rejected the log (exit 1); return its error text."""
    assert proc.returncode == 1, "tlogcheck exit %d, expected 1\nstdout: %s\nstderr: %s" % (
        proc.returncode,
        proc.stdout.strip(),
        proc.stderr.strip(),
    )
    if fragment:
        assert fragment in proc.stderr, f"expected {fragment!r} in: {proc.stderr.strip()}"
    return proc.stderr.strip()
