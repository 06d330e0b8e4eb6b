"""The tile directory behind Debian's nginx, configured with the one block
of docs/deployment.md (its upstream, `listen` and `root` rewritten), in
front of a real gunicorn that keeps the directory (LEDGER_TILES_DIR): nginx
serves the app's bytes and headers from the files, sends what is not a file
to the app, and, once gunicorn is stopped, Go's x/mod/sumdb/tlog and note
verify the whole log from the files alone."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from ledger.log import LogProvider
from ledger.tlog.checkpoint import open_checkpoint
from tests.interop import gotlog
from tests.server import DEPLOYMENT, ROOT, documented_nginx_conf, free_port, get, gunicorn, nginx, require_nginx

ORIGIN = "static.example/ledger"
SERVED_HEADERS = ("Content-Type", "Cache-Control", "Access-Control-Allow-Origin", "X-Content-Type-Options")


def _served_files(root: Path) -> list[str]:
    paths = [str(p.relative_to(root)) for p in (root / "tile").rglob("*") if p.is_file()]
    return ["checkpoint", *sorted(paths)]


def _wait_published(tiles: Path, provider: LogProvider, size: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        note = (tiles / "checkpoint").read_bytes() if (tiles / "checkpoint").exists() else None
        if note is not None and open_checkpoint(note, provider.log.verifier).checkpoint.size == size:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server did not publish tree size {size} to {tiles} within {timeout} s")


def test_nginx_serves_the_directory_and_go_verifies_it(db_url: str, tmp_path: Path) -> None:
    require_nginx()
    gotlog.require_go()
    binary = gotlog.build_tlogcheck(tmp_path / "go")
    tiles, key_file = tmp_path / "tiles", tmp_path / "keys" / "log.key"
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": str(key_file),
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_TILES_DIR": str(tiles),
        "LEDGER_TILES_INTERVAL_SECONDS": "0.1",
        "LEDGER_DERIVED_CHECK_SECONDS": "0",
    }
    with ExitStack() as app:
        upstream = app.enter_context(gunicorn(env))
        provider = LogProvider(db_url, str(key_file), ORIGIN)
        app.callback(provider.close)
        log = provider.log
        old = []
        for batch in ([b"hello"], [b"a%d" % i for i in range(300)], [b"b%d" % i for i in range(213)], [b"last"]):
            res = log.sequencer.append(batch)
            old.append((res.checkpoint.size, res.checkpoint.root))
        _wait_published(tiles, provider, 515)
        vkey = log.verifier.to_key()
        listen = free_port()
        port = urlsplit(upstream).port
        assert port
        with nginx(documented_nginx_conf(port, listen, tiles), tmp_path / "nginx", listen) as front:
            for path in _served_files(tiles):
                status, headers, body = get(f"{front}/{path}")
                app_status, app_headers, app_body = get(f"{upstream}/{path}")
                assert (status, app_status) == (200, 200), path
                assert body == app_body == (tiles / path).read_bytes(), path
                assert {h: headers.get(h) for h in SERVED_HEADERS} == {h: app_headers.get(h) for h in SERVED_HEADERS}
            # Not files: partial tiles of sizes 1 and 301, deleted (if the
            # follower published those sizes at all) once their tiles were
            # full. The app still serves them.
            for path in ("tile/0/000.p/1", "tile/entries/001.p/45"):
                assert not (tiles / path).exists()
                status, _, body = get(f"{front}/{path}")
                assert status == 200, path
                assert body == get(f"{upstream}/{path}")[2]

            app.close()  # gunicorn stops: from here on, nginx has only the files
            assert get(f"{front}/tile/0/000.p/1")[0] == 502
            summary = gotlog.assert_ok(gotlog.run_tlogcheck(binary, front, vkey, old=old[:-1], max_pairs=0))
            assert "size=515" in summary
            assert "inclusion=515/515" in summary
            assert "fallbacks=0" in summary


def test_readme_shows_the_tested_block() -> None:
    """README's excerpt is made of lines of the block the test above runs."""
    (excerpt,) = re.findall(r"^```nginx\n(.*?)^```$", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    (block,) = re.findall(r"^```nginx\n(.*?)^```$", DEPLOYMENT.read_text(), flags=re.M | re.S)
    lines = {line.strip() for line in block.splitlines()}
    for line in excerpt.splitlines():
        if line.strip() and line.strip() != "...":
            assert line.strip() in lines, line
