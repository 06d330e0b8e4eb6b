"""A real gunicorn serving the app, for end-to-end tests (loopback only)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
DEPLOYMENT = ROOT / "docs" / "deployment.md"
DOCUMENTED_TILES_DIR = "/var/lib/ledger/tiles"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerURL(str):
    """A running server's base URL, which also knows the gunicorn master's pid."""

    pid: int

    def processes(self) -> list[int]:
        """The master and its workers."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                children.append(int(stat.parent.name))
        return [self.pid, *children]


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, timeout: float = 90) -> Iterator[ServerURL]:
    """Run gunicorn with ``env`` (LEDGER_* settings); yield its base URL."""
    port = free_port()
    full_env = {**os.environ, **env, "LEDGER_BIND": f"127.0.0.1:{port}", "LEDGER_WORKERS": str(workers)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/checkpoint", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"gunicorn did not start:\n{out}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, dict(e.headers), body


@contextmanager
def local_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread; yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def documented_nginx_conf(upstream_port: int, listen_port: int, tiles_dir: Path | None = None) -> str:
    """The nginx configuration of docs/deployment.md, as tested: the one
    ``nginx`` block verbatim except its upstream address, its TLS listen
    line (plain HTTP on loopback; TLS changes no timeout or buffer) and,
    given ``tiles_dir``, the tile directory's ``root``. Each rewritten line
    must occur exactly once, so a changed document fails here rather than
    testing something else."""
    blocks = re.findall(r"^```nginx\n(.*?)^```$", DEPLOYMENT.read_text(), flags=re.M | re.S)
    if len(blocks) != 1:
        raise AssertionError(f"docs/deployment.md has {len(blocks)} nginx blocks, not one")
    conf = blocks[0]
    root = f"root {DOCUMENTED_TILES_DIR};"
    for documented, tested in [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{listen_port};"),
        (root, root if tiles_dir is None else f"root {tiles_dir};"),
    ]:
        if conf.count(documented) != 1:
            raise AssertionError(f"docs/deployment.md's nginx block no longer has {documented!r} once")
        conf = conf.replace(documented, tested)
    return conf


def require_nginx() -> None:
    """Skip the calling test without Debian's nginx, or fail it when
    LEDGER_TEST_REQUIRE_NGINX=1 (as in CI)."""
    import pytest

    if Path(NGINX).exists():
        return
    why = f"{NGINX} is missing: apt-get install nginx"
    if os.environ.get("LEDGER_TEST_REQUIRE_NGINX") == "1":
        pytest.fail(f"nginx tests required (LEDGER_TEST_REQUIRE_NGINX=1) but {why}", pytrace=False)
    pytest.skip(f"nginx tests skipped: {why}")


@contextmanager
def nginx(site: str, tmp: Path, listen_port: int, timeout: float = 30) -> Iterator[str]:
    """Run Debian's nginx in the foreground with ``site`` (an http-context
    snippet, as a file in /etc/nginx/conf.d/ would be) under Debian's own
    main settings, every file in ``tmp``; yield its base URL."""
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    # As root, nginx's workers would run as "nobody" and could not write
    # their temporary files in a private tmp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 768; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{site}
}}
"""
    )
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{listen_port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", listen_port), timeout=1):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
                raise RuntimeError(f"nginx did not start:\n{out}\n{log}")
            time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # nginx's fast shutdown: stalled connections are not waited for
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
