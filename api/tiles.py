"""The C2SP read path: ``/checkpoint`` and ``/tile/...`` (c2sp.org/tlog-tiles).

Full tiles and full entry bundles never change and are served as immutable.
A partial tile ``.p/W`` is the first W hashes of its tile, fixed forever
once the tree has reached them, so it is cacheable too. The checkpoint
changes with every append and is never cached.

``/checkpoint`` is the latest checkpoint: the log's signature, then the
witness cosignatures stored for that size (c2sp.org/tlog-cosignature), in
a stable order. Verifiers ignore signatures by keys they do not know, so a
client that trusts no witness reads it as before. Right after an append the
latest checkpoint has no cosignatures yet; a client that requires a quorum
of witnesses should read ``/api/v1/checkpoints/cosigned``, the newest
checkpoint with at least one, and prove consistency from there.
"""

from __future__ import annotations

from flask import Blueprint, Response

from api.state import get_log
from ledger.cosign import cosigned_note, latest_cosigned
from ledger.errors import NotFound
from ledger.tlog.tile import parse_tile_path

bp = Blueprint("tlog", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"


def _note(note: bytes) -> Response:
    resp = Response(note, mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/checkpoint")
def checkpoint() -> Response:
    log = get_log()
    with log.read() as s:
        note = cosigned_note(s, log.latest(s))
    return _note(note)


@bp.get("/api/v1/checkpoints/cosigned")
def cosigned_checkpoint() -> Response:
    """The newest checkpoint that at least one witness cosigned, with its cosignatures."""
    log = get_log()
    with log.read() as s:
        cp = latest_cosigned(s)
        if cp is None:
            raise NotFound("no witness has cosigned a checkpoint of this log yet")
        note = cosigned_note(s, cp)
    return _note(note)


@bp.get("/tile/<path:rest>")
def tile(rest: str) -> Response:
    t = parse_tile_path("tile/" + rest)
    data = get_log().tile(t)
    resp = Response(data, mimetype="application/octet-stream")
    resp.headers["Cache-Control"] = IMMUTABLE
    return resp
