"""Reading records back: by leaf index, by (platform, record_id), and the
platform registry. Each answer carries the log entry and its inclusion
proof against the latest signed checkpoint, so it can be checked offline."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from api.state import get_log
from ledger import query, storage
from ledger.db import Session
from ledger.errors import NotFound
from ledger.records.entries import format_time, parse_entry
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
        # A coverage statement's: the latest statement that supersedes it.
        "superseded_by": amendments[-1] if amendments and row.type in ("decision", "coverage") else None,
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
        "checkpoint": {"tree_size": cp.size, "root_hash": b64(cp.root), "signed_note": cp.note.decode()},
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
