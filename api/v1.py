"""JSON conveniences over the log: its state, entries, and proofs.

Every proof names the signed checkpoint it is against, so a client can
check the answer without trusting this server (``ledger.tlog.verify``).
Hashes and entries are standard padded base64, as in checkpoints.
"""

from __future__ import annotations

import base64
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError, fields
from werkzeug.datastructures import MultiDict

from api.describe import (
    B64,
    INDEX,
    Checkpoint,
    Doc,
    Paths,
    checkpoint_answer,
    hash_b64,
    integer,
    json_answer,
    op,
    problem,
    proof_path,
    query_params,
    string,
)
from api.params import parse_query
from api.schemas import ConsistencyQuery, InclusionQuery
from api.state import get_log, log_of
from ledger.errors import DerivedDataError, InvalidInput
from ledger.log import InclusionProof as LogInclusionProof
from ledger.storage import StoredCheckpoint

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
#: Outside /api/v1, where load balancers look for it.
health_bp = Blueprint("health", __name__)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _inclusion_json(p: LogInclusionProof) -> dict[str, Any]:
    return {
        "leaf_index": p.index,
        "leaf_hash": b64(p.leaf_hash),
        "tree_size": p.checkpoint.size,
        "inclusion_path": [b64(h) for h in p.proof],
        "checkpoint": checkpoint_answer(p.checkpoint),
    }


#: The last proof's checkpoint and its ``checkpoint_answer`` as the app's
#: JSON encodes it: every proof against one checkpoint carries the same.
_CHECKPOINT_JSON: list[tuple[StoredCheckpoint, str]] = []


#: _inclusion_json's keys in its order, compact, and jsonify's newline.
_INCLUSION_BODY = '{"leaf_index":%d,"leaf_hash":"%s","tree_size":%d,"inclusion_path":[%s],"checkpoint":%s}\n'


def inclusion_body(app: Flask, p: LogInclusionProof) -> str | None:
    """``jsonify(_inclusion_json(p))``'s body, byte for byte, with the checkpoint's
    part (its signed note escaped) encoded once per checkpoint and the rest,
    integers and base64 that need no escaping, put together here: the
    encoder's pass over the whole answer cost about a tenth of a kept proof
    (bench/reads_cpu.py). Only for the compact form of the app's encoder in
    insertion order (jsonify's unless in debug mode); else ``None``, and the
    view answers with jsonify itself (api/lean.py hands such requests to it).
    tests/api/test_perf_paths.py compares the two."""
    provider = app.json
    if type(provider) is not DefaultJSONProvider or provider.sort_keys:
        return None
    if not (provider.compact if provider.compact is not None else not app.debug):
        return None
    cp = p.checkpoint
    kept = _CHECKPOINT_JSON[0] if _CHECKPOINT_JSON else None
    if kept is None or kept[0] is not cp:
        kept = (cp, provider.dumps(checkpoint_answer(cp), separators=(",", ":")))
        _CHECKPOINT_JSON[:] = [kept]
    path = ",".join([f'"{b64(h)}"' for h in p.proof])
    return _INCLUSION_BODY % (p.index, b64(p.leaf_hash), cp.size, path, kept[1])


def _inclusion_response(p: LogInclusionProof) -> Response:
    body = inclusion_body(current_app, p)
    if body is None:
        return jsonify(_inclusion_json(p))
    return current_app.response_class(body, mimetype=current_app.json.mimetype)  # type: ignore[attr-defined]


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
                "checkpoint": checkpoint_answer(cp),
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


# Built once, as api/feed.py's: a schema's construction cost more than the
# rest of a cached proof's answer.
INCLUSION_QUERY = InclusionQuery()
_CONSISTENCY_QUERY = ConsistencyQuery()


def _inclusion_query(args: MultiDict[str, str]) -> dict[str, Any]:
    """The query as :func:`parse_query` loads it. A lone ``leaf_index`` or
    ``leaf_hash``, given once (nearly every request), is parsed by its own
    field, as exactly as the schema parses it: the schema's load cost about
    a tenth of a cached proof (bench/reads_cpu.py). Anything else, or a
    value the field refuses, goes through the schema, which words the error."""
    if len(args) == 1:
        ((key, values),) = args.lists()
        if key in ("leaf_index", "leaf_hash") and len(values) == 1:
            try:
                return {key: INCLUSION_QUERY.fields[key].deserialize(values[0])}
            except ValidationError:
                pass
    return parse_query(INCLUSION_QUERY, args)


def inclusion_proof(app: Flask, q: dict[str, Any]) -> LogInclusionProof:
    """The proof the loaded query ``q`` asks for (the view's and api/lean.py's)."""
    log = log_of(app)
    if (q.get("leaf_index") is None) == (q.get("leaf_hash") is None):
        raise InvalidInput("give exactly one of leaf_index and leaf_hash")
    if q.get("leaf_hash") is not None:
        return log.inclusion_by_hash(q["leaf_hash"], q.get("tree_size"))
    return log.inclusion(q["leaf_index"], q.get("tree_size"))


@bp.get("/proofs/inclusion")
def inclusion() -> Response:
    q = _inclusion_query(request.args)
    return _no_store(_inclusion_response(inclusion_proof(current_app, q)))


@bp.get("/proofs/consistency")
def consistency() -> Response:
    q = parse_query(_CONSISTENCY_QUERY, request.args)
    p = get_log().consistency(q["first"], q.get("second"))
    return _no_store(
        jsonify(
            {
                "first": p.first.size,
                "second": p.second.size,
                "consistency_path": [b64(h) for h in p.proof],
                "first_checkpoint": checkpoint_answer(p.first),
                "checkpoint": checkpoint_answer(p.second),
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


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


class LogInfo(Doc):
    origin = string("The log's name: the first line of every checkpoint.")
    verifier_key = string("The log's verifier key, <origin>+<key ID>+<base64 key> (c2sp.org/signed-note).")
    tile_height = fields.Integer(required=True, metadata={"enum": [8], "description": "Tiles hold 2^8 hashes."})
    checkpoint = fields.Nested(Checkpoint, required=True)


class InclusionProof(Doc):
    leaf_index = integer("The entry's index in the log.")
    leaf_hash = hash_b64("The RFC 9162 leaf hash of the entry.")
    tree_size = integer("The size of the tree the proof is against: checkpoint.tree_size.")
    inclusion_path = proof_path("The RFC 9162 inclusion proof, leaf to root.")
    checkpoint = fields.Nested(Checkpoint, required=True)


class Entry(InclusionProof):
    entry = string("The entry's bytes, padded base64.", pattern=B64)


class ConsistencyProof(Doc):
    first = integer("The older tree size.")
    second = integer("The newer tree size.")
    consistency_path = proof_path("The RFC 9162 consistency proof from first to second.")
    first_checkpoint = fields.Nested(Checkpoint, required=True, metadata={"description": "The checkpoint of first."})
    checkpoint = fields.Nested(Checkpoint, required=True, metadata={"description": "The checkpoint of second."})


def paths(ma: MarshmallowPlugin) -> Paths:
    """The log, its entries and proofs, and the health check."""
    inclusion = query_params(
        ma,
        InclusionQuery(),
        {
            "leaf_index": "The entry's index. Give exactly one of leaf_index and leaf_hash.",
            "leaf_hash": "The entry's RFC 9162 leaf hash: 64 lower-case hex digits or padded base64.",
            "tree_size": "A tree size the log signed a checkpoint for; the latest if absent.",
        },
    )
    consistency = query_params(
        ma,
        ConsistencyQuery(),
        {
            "first": "The older tree size; the log must have signed a checkpoint for it.",
            "second": "The newer tree size; the latest checkpoint if absent.",
        },
    )
    tag, bad_query = "Log and proofs", "Malformed, repeated or unknown parameters"
    return {
        "/api/v1/log": {
            "get": op(
                tag,
                "getLog",
                "The log's origin, verifier key and latest checkpoint",
                "Compare the verifier key with one obtained out of band.",
                {"200": json_answer(LogInfo, "The log.")},
            )
        },
        "/api/v1/entries/{index}": {
            "get": op(
                tag,
                "getEntry",
                "One entry with its inclusion proof",
                "The proof is against the latest checkpoint, which the answer carries.",
                {"200": json_answer(Entry, "The entry and its proof."), "404": problem("No entry at that index.")},
                [INDEX],
            )
        },
        "/api/v1/proofs/inclusion": {
            "get": op(
                tag,
                "getInclusionProof",
                "An inclusion proof, by leaf index or leaf hash",
                "Each parameter may be given once; unknown parameters are errors.",
                {
                    "200": json_answer(InclusionProof, "The proof and the checkpoint it is against."),
                    "400": problem(f"{bad_query}, or not exactly one of leaf_index and leaf_hash."),
                    "404": problem("No such entry in that tree, or no checkpoint of that tree size."),
                },
                inclusion,
            )
        },
        "/api/v1/proofs/consistency": {
            "get": op(
                tag,
                "getConsistencyProof",
                "A consistency proof between two checkpointed tree sizes",
                "Proves the tree of size second extends the tree of size first. Both checkpoints are in the answer.",
                {
                    "200": json_answer(ConsistencyProof, "The proof and both checkpoints."),
                    "400": problem(f"{bad_query}, or first above second."),
                    "404": problem("No checkpoint of that tree size."),
                },
                consistency,
            )
        },
        "/healthz": {
            "get": op(
                "Health",
                "getHealth",
                "Whether the server answers",
                "For load balancers: 200 and the text ok while the process serves requests. It reads no "
                "database, so polling it costs the database nothing; a database outage shows as 503 on the "
                "log's paths. 503 when the server's own check found a row derived from the log (the feed's "
                "index, the registry tables, published statistics) that differs from its entry: the text "
                "names the table, row, column and both values, and Retry-After says when the check runs again.",
                {
                    "200": {
                        "description": "ok",
                        "content": {"text/plain": {"schema": {"type": "string", "const": "ok"}}},
                    },
                    "503": problem("A derived row differs from its log entry", retry=True),
                },
                reads_log=False,
            )
        },
    }
