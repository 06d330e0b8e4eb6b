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

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app

from api.describe import Paths, op, path_param, problem
from api.state import get_log, log_of
from ledger.cosign import cosigned_note, latest_cosigned
from ledger.errors import NotFound
from ledger.tlog.tile import parse_tile_path

bp = Blueprint("tlog", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"


def _note(note: bytes) -> Response:
    resp = Response(note, mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def checkpoint_note(app: Flask) -> bytes:
    """``/checkpoint``'s body (the view's and api/lean.py's)."""
    return log_of(app).checkpoint_note()


@bp.get("/checkpoint")
def checkpoint() -> Response:
    return _note(checkpoint_note(current_app))


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


def tile_bytes(app: Flask, rest: str) -> bytes:
    """The bytes of tile ``tile/<rest>`` (the view's and api/lean.py's)."""
    t = parse_tile_path("tile/" + rest)
    # Always from the database, never from the bundle cache: a bundle kept
    # from before an operator rewrote an entry would show verifiers the
    # honest bytes while every page showed the rewritten ones, and the
    # independent verifier (tests/e2e/test_server.py) would pass.
    return log_of(app).tile(t)


@bp.get("/tile/<path:rest>")
def tile(rest: str) -> Response:
    resp = Response(tile_bytes(current_app, rest), mimetype="application/octet-stream")
    resp.headers["Cache-Control"] = IMMUTABLE
    return resp


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


# ledger.tlog.tile.parse_tile_path, without the leading "tile/": level -1 (entries)
# to 63, index groups without a leading x000, partial width 1 to 255.
TILE_PATH = (
    r"^(?:entries|[0-9]|[1-5][0-9]|6[0-3])/(?:x(?:00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})/(?:x[0-9]{3}/)*)?[0-9]{3}"
    r"(?:\.p/(?:[1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$"
)


def paths(ma: MarshmallowPlugin) -> Paths:
    """The C2SP read paths."""
    tile = path_param(
        "path",
        {"type": "string", "pattern": TILE_PATH},
        "The tile path after tile/, e.g. 0/x001/234.p/5 or entries/000; its slashes are sent as they are.",
    )
    note = {"description": "The signed note.", "content": {"text/plain": {"schema": {"type": "string"}}}}
    tag = "C2SP read path"
    return {
        "/checkpoint": {
            "get": op(
                tag,
                "getCheckpoint",
                "The latest signed checkpoint",
                "A c2sp.org/tlog-checkpoint signed note: origin, tree size and root hash, signed by the log's key, "
                "then the witness cosignatures stored for that size (c2sp.org/tlog-cosignature), if any. "
                "Never cached.",
                {"200": note},
            )
        },
        "/api/v1/checkpoints/cosigned": {
            "get": op(
                tag,
                "getCosignedCheckpoint",
                "The newest checkpoint a witness cosigned",
                "As /checkpoint, for the newest tree size with at least one cosignature: a client that requires "
                "witnesses starts there and proves consistency to the latest checkpoint.",
                {"200": note, "404": problem("No witness has cosigned a checkpoint yet.")},
            )
        },
        "/tile/{path}": {
            "get": op(
                tag,
                "getTile",
                "A hash tile or an entry bundle",
                "c2sp.org/tlog-tiles, height 8: tile/<L>/<N>[.p/<W>] is 32*W bytes of hashes; "
                "tile/entries/<N>[.p/<W>] is W entries, each a big-endian uint16 length and the entry. "
                "Full and partial tiles never change and are served as immutable.",
                {
                    "200": {
                        "description": "The tile's bytes.",
                        "content": {"application/octet-stream": {"schema": {}}},
                    },
                    "400": problem("A malformed or non-canonical tile path."),
                    "404": problem("A tile beyond the tree."),
                },
                [tile],
            )
        },
    }
