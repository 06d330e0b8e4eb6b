"""How views reach the log the app was built with."""

from __future__ import annotations

from typing import cast

from flask import current_app

from ledger.bundle_cache import BundleCache
from ledger.log import Log


def get_log() -> Log:
    return cast(Log, current_app.extensions["ledger"].log)


def get_bundle_cache() -> BundleCache:
    return cast(BundleCache, current_app.extensions["bundle_cache"])
