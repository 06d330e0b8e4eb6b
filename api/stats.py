"""``GET /api/v1/stats/evenness``: the evenness document of a checkpoint.

The answer is RFC 8785 JSON of ``{"document", "document_sha256",
"publication"}``: the document's bytes appear in it exactly as
``ledger.evenness_store.compute_document`` made them (so the digest can be
checked on the bytes received), and ``publication`` says whether, and at
which log entry, the digest of the unfiltered document of that tree size
was published (``flask ledger publish-stats``), else null.

A document depends only on the tree size and the filters, so documents are
kept in the per-process cache of :mod:`ledger.evenness_cache` (shared with
the dashboard's pages) and, when ``tree_size`` is given, served as
cacheable by anyone: immutable once the digest is published; for a minute
before, because only ``publication`` can still change. Without
``tree_size`` the answer describes the latest checkpoint and must be
revalidated (its ETag makes that cheap). A request that finds the process
busy computing another document waits its turn, then gets 429 with
Retry-After (see :mod:`ledger.evenness_cache`).
"""

from __future__ import annotations

from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from marshmallow import RAISE, Schema, fields, validate

from api.describe import Paths, json_answer, op, problem, query_params
from api.feed import TimeParam
from api.params import StrictInt, parse_query
from api.state import get_log
from ledger.evenness_cache import EXTENSION, Documents, shared
from ledger.evenness_store import (
    GROUPS,
    METHOD_VERSION,
    METHOD_VERSIONS,
    METRICS,
    Filters,
    Publication,
    find_publication,
)
from ledger.records.entries import canonical
from ledger.records.vocab import PATTERNS

bp = Blueprint("stats", __name__, url_prefix="/api/v1/stats")

IMMUTABLE = "public, max-age=31536000, immutable"
UNTIL_PUBLISHED = "public, max-age=60"
LATEST = "no-cache"


class EvennessQuery(Schema):
    class Meta:
        unknown = RAISE

    tree_size = StrictInt(metadata={"description": "a tree size the log signed a checkpoint for (default: latest)"})
    platform = fields.String(validate=validate.Regexp(PATTERNS["platform"], error="must match the pattern {regex}"))
    rule_id = fields.String(validate=validate.Regexp(PATTERNS["rule_id"], error="must match the pattern {regex}"))
    group = fields.String(validate=validate.OneOf(tuple(GROUPS)))
    metric = fields.String(validate=validate.OneOf(METRICS))
    decided_from = TimeParam(metadata={"description": "decisions decided at or after this time"})
    decided_to = TimeParam(metadata={"description": "decisions decided before this time"})
    method_version = StrictInt(
        validate=validate.OneOf(METHOD_VERSIONS),
        metadata={
            "description": "1 (default): the account comparisons; 2: version 1 and the protection section "
            "(whom content targeted, who reported it)"
        },
    )


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    shared(state.app.extensions)


def _filters(args: dict[str, Any]) -> Filters:
    return Filters(
        platform=args.get("platform"),
        rule_id=args.get("rule_id"),
        group=args.get("group"),
        metric=args.get("metric"),
        decided_from_ms=args.get("decided_from"),
        decided_to_ms=args.get("decided_to"),
    )


@bp.get("/evenness")
def evenness() -> Response:
    args = parse_query(EvennessQuery(), request.args)
    filters = _filters(args)
    pinned = args.get("tree_size")
    version = args.get("method_version", METHOD_VERSION)
    documents: Documents = current_app.extensions[EXTENSION]
    log = get_log()
    with log.read() as s:
        cp = log.checkpoint_for(s, pinned)
        publication = find_publication(s, cp.size, version)
    data, digest = documents.document(log, cp, filters, version)
    return _response(data, digest, publication, pinned is not None)


def _response(data: bytes, digest: str, publication: Publication | None, pinned: bool) -> Response:
    # RFC 8785 orders "document" < "document_sha256" < "publication", and a
    # canonical value stays canonical inside a canonical object.
    published = b"null" if publication is None else canonical(publication.as_json())
    body = b"".join([b'{"document":', data, b',"document_sha256":"', digest.encode(), b'","publication":', published])
    resp = Response(body + b"}", mimetype="application/json")
    # The document's digest, plus where it was published once it was: the
    # body changes exactly when one of the two does.
    resp.set_etag(digest if publication is None else f"{digest}.p{publication.leaf_index}")
    if not pinned:
        resp.headers["Cache-Control"] = LATEST
    else:
        resp.headers["Cache-Control"] = UNTIL_PUBLISHED if publication is None else IMMUTABLE
    resp.make_conditional(request)  # in place
    return resp


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


def paths(ma: MarshmallowPlugin) -> Paths:
    """The evenness statistics."""
    publication = {
        "type": "object",
        "required": ["tree_size", "method_version", "leaf_index", "document_sha256"],
        "properties": {
            "tree_size": {"type": "integer", "minimum": 0},
            "method_version": {"type": "integer", "minimum": 1},
            "leaf_index": {"type": "integer", "minimum": 0, "description": "The registry entry that published it."},
            "document_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
    }
    answer = {
        "type": "object",
        "required": ["document", "document_sha256", "publication"],
        "properties": {
            "document": {
                "type": "object",
                "description": "The evenness document (method version 1 by default): method and parameters, "
                "checkpoint, filters, totals, cells, comparisons with their strata tables, platform summaries, the "
                "monthly series and the flagged list; method version 2 adds the protection section (treatment by "
                "the class of the content's target, time to decision by reporter class). Its RFC 8785 bytes "
                "appear in the answer verbatim.",
            },
            "document_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "publication": {"oneOf": [{"type": "null"}, publication]},
        },
    }
    ok = json_answer(answer, "The document (RFC 8785 JSON).")
    ok["headers"] = {
        "ETag": {"description": "The document's SHA-256, and where it was published.", "schema": {"type": "string"}},
        "Cache-Control": {
            "description": "immutable once published for a given tree_size; public, max-age=60 before; "
            "no-cache without tree_size.",
            "schema": {"type": "string"},
        },
    }
    return {
        "/api/v1/stats/evenness": {
            "get": op(
                "Statistics",
                "getEvenness",
                "Evenness statistics of a checkpoint",
                "Were public accounts and ordinary users treated alike, as far as the recorded decisions show? "
                "Rates, times and actions by platform, rule and account class, compared with ordinary users, "
                "with intervals, tests, Benjamini-Hochberg q-values and plain-words sentences. Reproducible byte "
                "for byte from the log's entries (ledger.evenness_store.compute_document).",
                {
                    "200": ok,
                    "304": {"description": "Not modified (If-None-Match)."},
                    "400": problem("Malformed, repeated or unknown parameters."),
                    "404": problem("No checkpoint of that tree size."),
                },
                query_params(ma, EvennessQuery(), {}),
            )
        }
    }
