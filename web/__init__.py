"""Server-rendered pages. Never imports ``api``; reads the log directly."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import cast

from flask import Blueprint, Flask, current_app, render_template

from ledger.log import Log

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")


def _log() -> Log:
    return cast(Log, current_app.extensions["ledger"].log)


@bp.get("/")
def index() -> str:
    log = _log()
    with log.read() as s:
        cp = log.latest(s)
    return render_template(
        "index.html",
        origin=log.origin,
        vkey=log.verifier.to_key(),
        size=cp.size,
        root=base64.b64encode(cp.root).decode(),
        note=cp.note.decode(),
        signed_at=datetime.fromtimestamp(cp.created_at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
