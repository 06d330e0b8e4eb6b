"""Reading records back: by leaf index, by (platform, record_id), and the
platform registry. Each answer carries the log entry and its inclusion
proof against the latest signed checkpoint, so it can be checked offline."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify
from marshmallow import fields

from api.describe import (
    B64,
    INDEX,
    Checkpoint,
    Doc,
    Paths,
    checkpoint_answer,
    choice,
    hash_b64,
    integer,
    json_answer,
    log_time,
    op,
    path_param,
    problem,
    proof_path,
    string,
)
from api.state import get_log
from api.submissions import SignatureSchema
from ledger import query, storage
from ledger.db import Session
from ledger.errors import NotFound
from ledger.records.entries import format_time, parse_entry
from ledger.records.vocab import PATTERNS, RECORD_TYPES
from ledger.registry import list_platforms, read_key_states
from ledger.submit import permalink

bp = Blueprint("records", __name__, url_prefix="/api/v1")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _summary(row: Any) -> dict[str, Any]:
    return {
        "leaf_index": row.leaf_index,
        "record_id": row.record_id,
        "type": row.type,
        "logged_at": format_time(row.logged_at_ms),
        "permalink": permalink(row.platform, row.record_id),
    }


def _history(s: Session, row: Any) -> dict[str, Any]:
    h = query.history(s, row)
    amendments = [_summary(r) for r in h.amendments]
    out: dict[str, Any] = {
        "appeals": [_summary(r) for r in h.appeals],
        "amendments": amendments,
        # As documented in the OpenAPI description: a decision's latest amendment, else null.
        "superseded_by": amendments[-1] if amendments and row.type == "decision" else None,
    }
    if row.ref_record_id is not None:
        out["refers_to"] = _summary(h.refers_to) if h.refers_to else None
    return out


def _record(find: Callable[[Session], Any]) -> Response:
    log = get_log()
    with log.read() as s:
        row = find(s)
        if row is None:
            raise NotFound("no such record in the log")
        cp = log.latest(s)
        entry = storage.read_entries(s, row.leaf_index, row.leaf_index + 1)[0]
        key = read_key_states(s, [row.key_id])[row.key_id]
        hist = _history(s, row)
    proof = log.inclusions([row.leaf_index], cp)[0]
    parsed = parse_entry(entry)
    body = {
        "leaf_index": row.leaf_index,
        "logged_at": parsed.logged_at,
        "platform": row.platform,
        "record_id": row.record_id,
        "type": row.type,
        "record": parsed.body,
        "signature": parsed.signature,
        "key": {
            "key_id": key.key_id,
            "platform": key.platform,
            "public_key": b64(key.public_key),
            "valid_from": format_time(key.valid_from_ms),
            "revoked_from": None if key.revoked_from_ms is None else format_time(key.revoked_from_ms),
            "revocation_reason": key.revoked_reason,
        },
        "history": hist,
        "entry": b64(entry),
        "leaf_hash": b64(proof.leaf_hash),
        "tree_size": cp.size,
        "inclusion_path": [b64(h) for h in proof.proof],
        "checkpoint": checkpoint_answer(cp),
    }
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/records/<int(max=9223372036854775807):index>")
def by_index(index: int) -> Response:
    return _record(lambda s: query.record_at(s, index))


@bp.get("/platforms/<slug>/records/<path:record_id>")
def by_record_id(slug: str, record_id: str) -> Response:
    return _record(lambda s: query.record_by_id(s, slug, record_id))


@bp.get("/platforms")
def platforms() -> Response:
    log = get_log()
    with log.read() as s:
        return jsonify({"platforms": list_platforms(s)})


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


class RecordSummary(Doc):
    leaf_index = integer("The record's entry index.")
    record_id = string("The record's record_id.", pattern=PATTERNS["record_id"])
    type = choice(RECORD_TYPES, "The record type.")
    logged_at = log_time("When the log appended it.")
    permalink = string("Where it can be read.")


class RecordHistory(Doc):
    appeals = fields.List(fields.Nested(RecordSummary), required=True)
    amendments = fields.List(fields.Nested(RecordSummary), required=True)
    superseded_by = fields.Nested(
        RecordSummary,
        required=True,
        allow_none=True,
        metadata={"description": "For a decision, its latest amendment; otherwise null."},
    )
    refers_to = fields.Nested(
        RecordSummary,
        allow_none=True,
        metadata={"description": "Appeals and amendments only: the decision they refer to."},
    )


class KeyState(Doc):
    key_id = string("The key ID: 16 lower-case hex digits.", pattern=r"^[0-9a-f]{16}$")
    platform = string("The platform the key signs for.", pattern=PATTERNS["platform"])
    public_key = hash_b64("The Ed25519 public key, padded base64.")
    valid_from = log_time("When the key became valid.")
    revoked_from = log_time("When a revocation took effect, or null.", allow_none=True)
    revocation_reason = string("Why it was revoked, or null.", allow_none=True)


class RecordPage(Doc):
    leaf_index = integer("The record's entry index.")
    logged_at = log_time("When the log appended it.")
    platform = string("The record's platform.", pattern=PATTERNS["platform"])
    record_id = string("The record's record_id.", pattern=PATTERNS["record_id"])
    type = choice(RECORD_TYPES, "The record type.")
    record = fields.Raw(required=True)  # replaced by _RECORD below
    signature = fields.Nested(SignatureSchema, required=True)
    key = fields.Nested(KeyState, required=True, metadata={"description": "The signing key's state now."})
    history = fields.Nested(RecordHistory, required=True)
    entry = string("The log entry: the RFC 8785 form of {logged_at, record, signature}, padded base64.", pattern=B64)
    leaf_hash = hash_b64("The entry's RFC 9162 leaf hash.")
    tree_size = integer("The size of the tree the proof is against.")
    inclusion_path = proof_path("The entry's inclusion proof against the checkpoint.")
    checkpoint = fields.Nested(Checkpoint, required=True)


class PlatformKey(Doc):
    key_id = string("The key ID: 16 lower-case hex digits.", pattern=r"^[0-9a-f]{16}$")
    alg = choice(("ed25519",), "The signature algorithm.")
    public_key = hash_b64("The Ed25519 public key, padded base64.")
    valid_from = log_time("When the key became valid.")
    added_leaf_index = integer("The registry entry that added the key.")
    revoked_from = log_time("When a revocation took effect, or null.", allow_none=True)
    revocation_reason = string("Why it was revoked, or null.", allow_none=True)
    revoked_leaf_index = integer("The registry entry that revoked it, or null.", allow_none=True)


class Platform(Doc):
    platform = string("The platform's slug.", pattern=PATTERNS["platform"])
    display_name = string("The platform's name.")
    registered_at = log_time("When the platform was registered.")
    leaf_index = integer("The registry entry that registered it.")
    keys = fields.List(fields.Nested(PlatformKey), required=True, metadata={"description": "Oldest first."})


class PlatformList(Doc):
    platforms = fields.List(fields.Nested(Platform), required=True, metadata={"description": "By slug."})


def paths(ma: MarshmallowPlugin) -> Paths:
    """Records by index and by record_id, and the platform registry."""
    slug = path_param("slug", {"type": "string", "pattern": PATTERNS["platform"]}, "The platform.")
    record_id = path_param("record_id", {"type": "string", "pattern": PATTERNS["record_id"]}, "The record_id.")
    tag = "Records"
    return {
        "/api/v1/records/{index}": {
            "get": op(
                tag,
                "getRecordByIndex",
                "A record, by the index of its entry",
                "As the permalink.",
                {
                    "200": json_answer(RecordPage, "The record."),
                    "404": problem("No record at that index (registry entries are not records)."),
                },
                [INDEX],
            )
        },
        "/api/v1/platforms/{slug}/records/{record_id}": {
            "get": op(
                tag,
                "getRecord",
                "A record's permalink",
                "The record with its log entry, the entry's inclusion proof against the latest checkpoint, the "
                "signing key's state, and the appeals and amendments that refer to it.",
                {"200": json_answer(RecordPage, "The record."), "404": problem("No such record in the log.")},
                [slug, record_id],
            )
        },
        "/api/v1/platforms": {
            "get": op(
                tag,
                "listPlatforms",
                "Platforms and the history of their keys",
                "Every key ever registered, with the registry entries that added and revoked it. Platforms "
                "should watch the entries for their slug.",
                {"200": json_answer(PlatformList, "The registry.")},
            )
        },
    }
