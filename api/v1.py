"""JSON conveniences over the log: its state, entries, and proofs.

Every proof names the signed checkpoint it is against, so a client can
check the answer without trusting this server (``ledger.tlog.verify``).
Hashes and entries are standard padded base64, as in checkpoints.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from api.params import parse_query
from api.schemas import ConsistencyQuery, InclusionQuery
from api.state import get_log
from ledger.errors import DerivedDataError, InvalidInput
from ledger.log import InclusionProof
from ledger.storage import StoredCheckpoint

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
#: Outside /api/v1, where load balancers look for it.
health_bp = Blueprint("health", __name__)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _checkpoint_json(cp: StoredCheckpoint) -> dict[str, Any]:
    return {"tree_size": cp.size, "root_hash": b64(cp.root), "signed_note": cp.note.decode()}


def _inclusion_json(p: InclusionProof) -> dict[str, Any]:
    return {
        "leaf_index": p.index,
        "leaf_hash": b64(p.leaf_hash),
        "tree_size": p.checkpoint.size,
        "inclusion_path": [b64(h) for h in p.proof],
        "checkpoint": _checkpoint_json(p.checkpoint),
    }


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/log")
def log_info() -> Response:
    log = get_log()
    with log.read() as s:
        cp = log.latest(s)
    return _no_store(
        jsonify(
            {
                "origin": log.origin,
                "verifier_key": log.verifier.to_key(),
                "tile_height": 8,
                "checkpoint": _checkpoint_json(cp),
            }
        )
    )


@bp.get("/entries/<int(max=9223372036854775807):index>")
def entry(index: int) -> Response:
    log = get_log()
    proof = log.inclusion(index)
    data, _ = log.entry(index)
    body = _inclusion_json(proof)
    body["entry"] = b64(data)
    return _no_store(jsonify(body))


@bp.get("/proofs/inclusion")
def inclusion() -> Response:
    q = parse_query(InclusionQuery(), request.args)
    log = get_log()
    if (q.get("leaf_index") is None) == (q.get("leaf_hash") is None):
        raise InvalidInput("give exactly one of leaf_index and leaf_hash")
    if q.get("leaf_hash") is not None:
        proof = log.inclusion_by_hash(q["leaf_hash"], q.get("tree_size"))
    else:
        proof = log.inclusion(q["leaf_index"], q.get("tree_size"))
    return _no_store(jsonify(_inclusion_json(proof)))


@bp.get("/proofs/consistency")
def consistency() -> Response:
    q = parse_query(ConsistencyQuery(), request.args)
    p = get_log().consistency(q["first"], q.get("second"))
    return _no_store(
        jsonify(
            {
                "first": p.first.size,
                "second": p.second.size,
                "consistency_path": [b64(h) for h in p.proof],
                "first_checkpoint": _checkpoint_json(p.first),
                "checkpoint": _checkpoint_json(p.second),
            }
        )
    )


@health_bp.get("/healthz")
def healthz() -> Response:
    """The process serves requests, and the server's check of its derived
    rows (ledger/derived_watch.py) found none that differs from its entry.
    It reads no database, so a load balancer polling it does not add to the
    database's load or fail with it; a broken database shows as 503 on the
    log's own paths. A mismatch answers 503: the feed, pages and statistics
    would show something the log does not hold."""
    finding = current_app.extensions["derived_watch"].finding()
    if finding is not None and not finding.ok:
        raise DerivedDataError(f"derived rows differ from the log entries: {finding.problem}")
    return _no_store(Response("ok", mimetype="text/plain"))
