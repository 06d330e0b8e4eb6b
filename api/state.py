"""How views reach the log the app was built with."""

from __future__ import annotations

from typing import cast

from flask import current_app

from ledger.log import Log


def get_log() -> Log:
    return cast(Log, current_app.extensions["ledger"].log)
