"""The application factory and the operator's commands.

Configuration: the defaults below, then ``LEDGER_*`` environment variables
(``LEDGER_DATABASE_URL`` sets ``DATABASE_URL``), then ``test_config``.
Nothing is read at import time. Every key is documented in README.md.
"""

from __future__ import annotations

import gc
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response

import api
import web
from api.lean import LeanReads
from api.submissions import LeanSubmissions
from cli import ledger_cli
from ledger.bundle_cache import BundleCache
from ledger.derived_watch import DerivedWatch, default_state_path
from ledger.log import LogProvider
from ledger.tile_publisher import TilesWatch

ROOT = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": f"sqlite:///{ROOT / 'data' / 'ledger.sqlite3'}",
    "ORIGIN": "localhost/moderation-ledger",
    "KEY_FILE": str(ROOT / "data" / "log.key"),
    # Bodies above this are refused with 413: by their Content-Length before
    # they are read, chunked ones once one byte past it arrives (api/request_body.py).
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    # How long a SQLite writer waits for another process's lock before the
    # request fails with 503 and Retry-After.
    "SQLITE_BUSY_TIMEOUT_MS": 30_000,
    # Full hash tiles each worker keeps (8 KiB each, and as much again for
    # their inner nodes): full tiles never change, so a kept one answers
    # tiles and proofs without the database. 4,096 hold every level-0 tile
    # of a million entries.
    "TILE_CACHE_TILES": 4096,
    # Rows of the feed each worker keeps drawn, as HTML cards (web/cards.py,
    # about 3 KiB each) and as the JSON feed's summaries (api/feed.py, about
    # 1.6 KiB): a kept row is a pure function of its key (every field it
    # shows), so never stale. 5,000 are a hundred pages of 50. 0 keeps none.
    "FEED_ROW_CACHE": 5_000,
    # Witnesses to ask for cosignatures: [{"url": ..., "vkey": ...}] (LEDGER_WITNESSES, JSON).
    "WITNESSES": [],
    # Records per second per platform and per worker, and the burst allowed.
    "RATE_LIMIT_RECORDS_PER_SECOND": 5000,
    "RATE_LIMIT_BURST": 20000,
    # The server's check of its derived rows against the entries: new
    # entries and a slice of the older ones every DERIVED_CHECK_SECONDS (0
    # disables), the slices sweeping the whole log once every
    # DERIVED_FULL_CHECK_SECONDS; the finding and the sweep's cursor are kept
    # in DERIVED_CHECK_STATE (default: beside the key file), the finding
    # reported by /healthz.
    "DERIVED_CHECK_SECONDS": 10,
    "DERIVED_FULL_CHECK_SECONDS": 3600,
    "DERIVED_CHECK_STATE": None,
    # A directory to keep in the c2sp.org/tlog-tiles layout for a static web
    # server (ledger/tile_publisher.py), checked every TILES_INTERVAL_SECONDS
    # by one process per machine; None publishes nothing.
    "TILES_DIR": None,
    "TILES_INTERVAL_SECONDS": 1.0,
    # Election periods the pages report on (web/views_elections.py):
    # [{"slug", "name", "from", "to"}] (LEDGER_ELECTION_PERIODS, JSON).
    "ELECTION_PERIODS": [],
    # Where ``flask ledger dump`` writes full dumps per checkpoint, which
    # /downloads and /api/v1/dumps list and serve (ledger/dumps.py).
    "DUMPS_DIR": str(ROOT / "data" / "dumps"),
    # Where full entry bundles' files are kept once built (ledger/bundle_cache.py),
    # so that the exports of full bundles cost a digest of the stored bundle
    # and a file read; None: beside the key file; "" keeps nothing.
    "EXPORT_CACHE_DIR": None,
}

#: The numeric settings: each one's kind ("whole" or "number") and least
#: value. ``check_settings`` refuses any other at start, naming the
#: environment variable, before a worker serves anything with it.
NUMERIC_SETTINGS: dict[str, tuple[str, float]] = {
    "MAX_CONTENT_LENGTH": ("whole", 1),
    "SQLITE_BUSY_TIMEOUT_MS": ("whole", 0),
    "TILE_CACHE_TILES": ("whole", 0),
    "FEED_ROW_CACHE": ("whole", 0),
    "RATE_LIMIT_RECORDS_PER_SECOND": ("number", 0),
    "RATE_LIMIT_BURST": ("number", 0),
    "DERIVED_CHECK_SECONDS": ("number", 0),
    "DERIVED_FULL_CHECK_SECONDS": ("number", 0),
    "TILES_INTERVAL_SECONDS": ("number", 0),
}


class SettingsError(ValueError):
    """A setting the server cannot run with; the message names its ``LEDGER_*`` variable."""


def check_settings(config: Mapping[str, Any]) -> None:
    """Refuse a numeric setting of the wrong kind or below its least value.

    ``from_prefixed_env`` reads each ``LEDGER_*`` value as JSON where it
    parses (``4096`` a number, ``true`` a boolean), otherwise as text; so a
    mistyped value arrives as text or a boolean, and without this check
    failed later with a message that named no setting (``int()``'s, or
    ``an LRU of -1 entries``), or not at all (a negative rate).
    """
    for key, (kind, least) in NUMERIC_SETTINGS.items():
        _check(f"LEDGER_{key}", kind, least, config[key])


def environment_whole(name: str, default: int, least: int) -> int:
    """A whole-number ``LEDGER_*`` environment variable read before any app
    exists (gunicorn.conf.py), parsed as ``from_prefixed_env`` parses it and
    refused in the words of :func:`check_settings`."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    _check(name, "whole", least, value)
    return int(value)


def _check(name: str, kind: str, least: float, value: Any) -> None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    number = whole or (isinstance(value, float) and math.isfinite(value))
    if (whole if kind == "whole" else number) and value >= least:
        return
    wanted = "a whole number" if kind == "whole" else "a number"
    raise SettingsError(f"{name} must be {wanted} of {least:g} or more, not {value!r}")


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: Added to every answer that has none of its own (``after_request``).
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Access-Control-Allow-Origin", "*"),  # the log is public; let any verifier fetch it
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LEDGER")
    if test_config:
        app.config.from_mapping(test_config)
    check_settings(app.config)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    provider = app.extensions["ledger"] = LogProvider(
        str(app.config["DATABASE_URL"]),
        str(app.config["KEY_FILE"]),
        str(app.config["ORIGIN"]),
        sqlite_busy_timeout_ms=int(app.config["SQLITE_BUSY_TIMEOUT_MS"]),
        tile_cache_size=int(app.config["TILE_CACHE_TILES"]),
    )
    watch = app.extensions["derived_watch"] = DerivedWatch(
        lambda: provider.log,
        Path(app.config["DERIVED_CHECK_STATE"] or default_state_path(app.config["KEY_FILE"])),
        float(app.config["DERIVED_CHECK_SECONDS"]),
        float(app.config["DERIVED_FULL_CHECK_SECONDS"]),
    )
    # Serving processes only (not the operator's commands), once each, after fork.
    starters = [watch.start]
    if app.config["TILES_DIR"]:
        tiles = app.extensions["tiles_watch"] = TilesWatch(
            lambda: provider.log, Path(app.config["TILES_DIR"]), float(app.config["TILES_INTERVAL_SECONDS"])
        )
        starters.append(tiles.start)
    for start in starters:
        app.before_request(start)
    cache_dir = app.config["EXPORT_CACHE_DIR"]
    if cache_dir is None:
        cache_dir = f"{app.config['KEY_FILE']}.bundles"
    app.extensions["bundle_cache"] = BundleCache(Path(cache_dir) if cache_dir else None)
    api.init_app(app)
    web.init_app(app)
    app.after_request(_security_headers)
    # POST /api/v1/records answered before Flask, by the view's own function,
    # with the same hooks and headers (api/submissions.py).
    # GET /checkpoint, tiles and inclusion proofs likewise (api/lean.py):
    # one layer for the reads, inside the one for submissions.
    reads = LeanReads(app, app.wsgi_app, starters, SECURITY_HEADERS)
    app.wsgi_app = LeanSubmissions(app, reads, starters, SECURITY_HEADERS)  # type: ignore[method-assign]
    app.cli.add_command(ledger_cli)
    return app


def _security_headers(resp: Response) -> Response:
    for name, value in SECURITY_HEADERS:
        resp.headers.setdefault(name, value)
    return resp


def freeze_start_up_objects() -> None:
    """Leave the objects made at start-up (modules, the app, SQLAlchemy's
    metadata, the schema validator: some 120,000) out of the garbage
    collector's full passes (``gc.freeze``), as they live as long as the process.

    A batch of 1,000 records parses into some 30,000 dicts and lists that
    survive the young generations while the request runs, so nearly every
    batch set off a full collection, which walked the start-up objects too:
    25 of a record's ~300 us of CPU (bench/writes.py, gc callbacks); frozen,
    2 us. Called by wsgi.py once the worker has built its app, and by the
    benchmark that runs the app in its own process.
    """
    gc.collect()
    gc.freeze()
