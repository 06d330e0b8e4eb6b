"""The server refuses a numeric setting it cannot run with, at start,
naming the ``LEDGER_*`` variable (app.check_settings, gunicorn.conf.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import DEFAULTS, NUMERIC_SETTINGS, SettingsError, create_app
from tests.server import ROOT, free_port

BAD = [
    ("TILE_CACHE_TILES", "-1", "LEDGER_TILE_CACHE_TILES must be a whole number of 0 or more, not -1"),
    ("FEED_ROW_CACHE", "lots", "LEDGER_FEED_ROW_CACHE must be a whole number of 0 or more, not 'lots'"),
    ("FEED_ROW_CACHE", "1.5", "LEDGER_FEED_ROW_CACHE must be a whole number of 0 or more, not 1.5"),
    ("MAX_CONTENT_LENGTH", "0", "LEDGER_MAX_CONTENT_LENGTH must be a whole number of 1 or more, not 0"),
    ("SQLITE_BUSY_TIMEOUT_MS", "true", "LEDGER_SQLITE_BUSY_TIMEOUT_MS must be a whole number of 0 or more, not True"),
    (
        "RATE_LIMIT_RECORDS_PER_SECOND",
        "-5",
        "LEDGER_RATE_LIMIT_RECORDS_PER_SECOND must be a number of 0 or more, not -5",
    ),
    ("RATE_LIMIT_BURST", "null", "LEDGER_RATE_LIMIT_BURST must be a number of 0 or more, not None"),
    ("DERIVED_CHECK_SECONDS", "ten", "LEDGER_DERIVED_CHECK_SECONDS must be a number of 0 or more, not 'ten'"),
    ("TILES_INTERVAL_SECONDS", "[1]", "LEDGER_TILES_INTERVAL_SECONDS must be a number of 0 or more, not [1]"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_a_bad_value_stops_the_app_naming_its_variable(
    key: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"LEDGER_{key}", value)
    with pytest.raises(SettingsError) as raised:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}", "KEY_FILE": str(tmp_path / "k")})
    assert str(raised.value) == message


def test_every_default_and_every_least_value_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths = {"DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}", "KEY_FILE": str(tmp_path / "k")}
    assert set(NUMERIC_SETTINGS) <= set(DEFAULTS)
    create_app(paths)
    for key, (kind, least) in NUMERIC_SETTINGS.items():
        # The least value itself, as a fraction where fractions are allowed.
        monkeypatch.setenv(f"LEDGER_{key}", str(int(least)) if kind == "whole" else f"{least:g}.0")
    app = create_app(paths)
    assert app.config["TILE_CACHE_TILES"] == 0
    assert app.config["RATE_LIMIT_BURST"] == 0.0
    assert app.config["MAX_CONTENT_LENGTH"] == 1


def _gunicorn(env: dict[str, str], tmp_path: Path, elsewhere: bool = False) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "LEDGER_BIND": f"127.0.0.1:{free_port()}",
        "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}",
        "LEDGER_KEY_FILE": str(tmp_path / "k"),
        **env,
    }
    return subprocess.run(
        # elsewhere: as a service manager may start it, from another
        # directory, the config by its path and the app by --chdir.
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT), "wsgi:app"]
        if elsewhere
        else [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=tmp_path if elsewhere else ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEDGER_FEED_ROW_CACHE": "-1"}, "LEDGER_FEED_ROW_CACHE must be a whole number of 0 or more, not -1"),
        ({"LEDGER_THREADS": "sixteen"}, "LEDGER_THREADS must be a whole number of 1 or more, not 'sixteen'"),
        ({"LEDGER_WORKERS": "0"}, "LEDGER_WORKERS must be a whole number of 1 or more, not 0"),
    ],
)
@pytest.mark.parametrize("elsewhere", [False, True], ids=["in-the-project", "from-elsewhere"])
def test_gunicorn_stops_with_one_line_naming_the_variable(
    env: dict[str, str], message: str, elsewhere: bool, tmp_path: Path
) -> None:
    done = _gunicorn(env, tmp_path, elsewhere)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == message
    assert "Traceback" not in done.stderr
