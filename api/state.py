"""How views reach the log the app was built with."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from ledger.bundle_cache import BundleCache
from ledger.log import Log


def get_log() -> Log:
    return log_of(current_app)


def log_of(app: Flask) -> Log:
    """The log of ``app``, without an app context (api/submissions.py ``LeanSubmissions``)."""
    return cast(Log, app.extensions["ledger"].log)


def get_bundle_cache() -> BundleCache:
    return cast(BundleCache, current_app.extensions["bundle_cache"])
