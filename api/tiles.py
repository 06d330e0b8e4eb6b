"""The C2SP read path: ``/checkpoint`` and ``/tile/...`` (c2sp.org/tlog-tiles).

Full tiles and full entry bundles never change and are served as immutable.
A partial tile ``.p/W`` is the first W hashes of its tile, fixed forever
once the tree has reached them, so it is cacheable too. The checkpoint
changes with every append and is never cached.
"""

from __future__ import annotations

from flask import Blueprint, Response

from api.state import get_log
from ledger.tile import parse_tile_path

bp = Blueprint("tlog", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"


@bp.get("/checkpoint")
def checkpoint() -> Response:
    log = get_log()
    with log.read() as s:
        cp = log.latest(s)
    resp = Response(cp.note, mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/tile/<path:rest>")
def tile(rest: str) -> Response:
    t = parse_tile_path("tile/" + rest)
    data = get_log().tile(t)
    resp = Response(data, mimetype="application/octet-stream")
    resp.headers["Cache-Control"] = IMMUTABLE
    return resp
