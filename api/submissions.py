"""``POST /api/v1/records``: platforms submit signed records.

The body is parsed strictly (UTF-8, no duplicate keys), every item is
validated against the record schema and its signature checked over the
RFC 8785 form of the record *as received* (never a re-dump), and only then
charged to its platform's rate limit and handed to the server's one
committer (ledger/intake.py), which appends every queued submission in one
transaction. A request is all or nothing.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from werkzeug.exceptions import UnsupportedMediaType

from api.describe import (
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
    problem,
    proof_path,
    string,
)
from api.params import flatten
from api.ratelimit import RateLimiter
from api.record_validator import validate_parsed
from api.request_body import read_body
from api.state import get_log
from ledger.errors import InvalidInput
from ledger.records.entries import format_time, parse_json
from ledger.records.vocab import PATTERNS
from ledger.submit import permalink, verify_items

bp = Blueprint("submissions", __name__, url_prefix="/api/v1")

MAX_ITEMS = 1000


class SignatureSchema(Schema):
    class Meta:
        unknown = RAISE

    key_id = fields.String(
        required=True, validate=validate.Regexp(r"^[0-9a-f]{16}$", error="must be 16 lower-case hex digits")
    )
    alg = fields.String(required=True, validate=validate.Equal("ed25519", error="must be 'ed25519'"))
    value = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9+/]{86}==$", error="must be a 64-byte Ed25519 signature in padded base64"
        ),
    )


# Shared by every request thread: a load keeps no state on the schema.
_SIGNATURE = SignatureSchema()


_KEY_ID = re.compile(r"[0-9a-f]{16}")
_VALUE = re.compile(r"[A-Za-z0-9+/]{86}==")


def signature_errors(signature: object) -> list[dict[str, str]]:
    """The errors of an item's ``signature`` object (paths from the item), or ``[]``.

    The common case, a well-formed signature, is told without building
    marshmallow objects (13 µs of a record's CPU, measured by
    bench/writes.py): the test below accepts only what ``SignatureSchema``
    loads unchanged (exactly its three string fields, each matching its
    pattern in full), and anything else goes to the schema, whose errors
    the client gets (tests/api/test_submissions.py compares the two).
    """
    if (
        type(signature) is dict
        and len(signature) == 3
        and type(key_id := signature.get("key_id")) is str
        and _KEY_ID.fullmatch(key_id)
        and signature.get("alg") == "ed25519"
        and type(value := signature.get("value")) is str
        and _VALUE.fullmatch(value)
    ):
        return []
    try:
        _SIGNATURE.load(signature)  # type: ignore[arg-type]
    except ValidationError as e:
        return [
            {"path": f"signature/{x['path']}".rstrip("/"), "message": str(x["message"])} for x in flatten(e.messages)
        ]
    return []


class SubmissionItemSchema(Schema):
    """A submission item, for the OpenAPI document (the record's own schema
    is validated by ``validate_record``)."""

    class Meta:
        unknown = RAISE

    record = fields.Dict(required=True)
    signature = fields.Nested(SignatureSchema, required=True)


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict) and set(body) == {"records"}:
        items = body["records"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise InvalidInput(
                f"'records' must be a list of 1 to {MAX_ITEMS} items",
                [{"path": "records", "message": f"must be a list of 1 to {MAX_ITEMS} items"}],
            )
        return items
    if isinstance(body, dict) and "record" in body:
        return [body]
    raise InvalidInput('the body must be one item {record, signature} or {"records": [items]}')


def _validate(items: list[Any], now: datetime) -> list[bytes]:
    """Raise with every schema error of ``items``, or return each record's RFC 8785 bytes."""
    errors: list[dict[str, object]] = []
    bodies: list[bytes] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"record", "signature"}:
            errors.append(
                {"index": i, "path": "", "message": "an item is an object with exactly 'record' and 'signature'"}
            )
            continue
        errors += [{"index": i, **x} for x in signature_errors(item["signature"])]
        if not isinstance(item["record"], dict):
            errors.append({"index": i, "path": "record", "message": "must be an object"})
            continue
        record_errors, body = validate_parsed(item["record"], now)
        for x in record_errors:
            errors.append({"index": i, "path": f"record/{x['path']}".rstrip("/"), "message": x["message"]})
        if body is not None:
            bodies.append(body)
    if errors:
        raise InvalidInput(
            f"{len({e['index'] for e in errors})} of {len(items)} items are invalid; nothing was appended", errors
        )
    return bodies


def _limiter() -> RateLimiter:
    ext = current_app.extensions
    if "ledger_rate_limiter" not in ext:
        ext["ledger_rate_limiter"] = RateLimiter(
            float(current_app.config["RATE_LIMIT_RECORDS_PER_SECOND"]), float(current_app.config["RATE_LIMIT_BURST"])
        )
    return ext["ledger_rate_limiter"]  # type: ignore[no-any-return]


@bp.post("/records")
def submit() -> tuple[Response, int]:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the submission as Content-Type: application/json")
    items = _items(parse_json(read_body()))
    now_ms = time.time_ns() // 1_000_000
    bodies = _validate(items, datetime.fromtimestamp(now_ms / 1000, UTC))
    counts = Counter(str(it["record"]["platform"]) for it in items)
    limiter = _limiter()
    limiter.check(counts)
    log = get_log()
    verified = verify_items(log.registry_cache, items, now_ms, bodies)
    # Charged only now that every signature verified: the platform itself
    # sent these records, not someone naming it (api/ratelimit.py).
    limiter.take(counts)
    receipt = log.intake.append(verified)
    cp = receipt.checkpoint
    # The records of a group share their logged_at and the upper levels of
    # their inclusion paths: each distinct value is written once per answer.
    as_time, as_b64 = functools.cache(format_time), functools.cache(_b64)
    out = []
    for r, p, proof in zip(verified, receipt.placed, receipt.proofs, strict=True):
        out.append(
            {
                "platform": r.platform,
                "record_id": r.record_id,
                "status": p.status,
                "leaf_index": p.leaf_index,
                "leaf_hash": _b64(proof.leaf_hash),
                "logged_at": as_time(p.logged_at_ms),
                "permalink": permalink(r.platform, r.record_id),
                "tree_size": cp.size,
                "inclusion_path": [as_b64(h) for h in proof.proof],
            }
        )
    body = {
        "checkpoint": checkpoint_answer(cp),
        "records": out,
    }
    status = 201 if any(p.status == "created" for p in receipt.placed) else 200
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp, status


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


class SubmittedRecord(Doc):
    platform = string("The record's platform.", pattern=PATTERNS["platform"])
    record_id = string("The record's record_id.", pattern=PATTERNS["record_id"])
    status = choice(("created", "existing"), "created: appended now; existing: logged before with the same content.")
    leaf_index = integer("The record's entry index.")
    leaf_hash = hash_b64("The entry's RFC 9162 leaf hash.")
    logged_at = log_time("When the log appended the entry.")
    permalink = string("Where the record can be read back.")
    tree_size = integer("The size of the tree the proof is against.")
    inclusion_path = proof_path("The entry's inclusion proof against the checkpoint of the answer.")


class SubmissionResult(Doc):
    checkpoint = fields.Nested(Checkpoint, required=True)
    records = fields.List(
        fields.Nested(SubmittedRecord), required=True, metadata={"description": "One receipt per item, in order."}
    )


class SubmissionBatch(Schema):
    class Meta:
        unknown = RAISE

    records = fields.List(fields.Nested(SubmissionItemSchema), required=True, validate=validate.Length(1, MAX_ITEMS))


def paths(ma: MarshmallowPlugin) -> Paths:
    """Submitting records: the POST of /api/v1/records (its GET is the feed's)."""
    return {"/api/v1/records": {"post": _submit()}}


def _submit() -> dict[str, Any]:
    return op(
        "Submissions",
        "submitRecords",
        "Submit signed records",
        f'One item, or {{"records": [items]}} of 1 to {MAX_ITEMS}. All or nothing: every item is checked (schema, '
        "platform, key, Ed25519 signature over mdl/record/v1 and the RFC 8785 form of the record as received) "
        "before any is appended. Resubmitting a logged record is safe: it comes back as existing.",
        {
            "201": json_answer(SubmissionResult, "At least one record was appended."),
            "200": json_answer(SubmissionResult, "Every record was already logged with the same content."),
            "400": problem(
                "Malformed JSON, a body of the wrong shape, or records that break the schema; errors lists each "
                "problem with its item index."
            ),
            "409": problem(
                "A record_id already logged with different content; the error names the existing entry. "
                "Corrections are amendments."
            ),
            "413": problem("The body exceeds the server's size limit."),
            "415": problem("The body is not application/json."),
            "422": problem(
                "A bad signature; an unknown, foreign or revoked key; an unknown platform; or a reference to a "
                "record not in the log."
            ),
            "429": problem("The platform is over its rate limit.", retry=True),
        },
        body={"oneOf": [SubmissionItemSchema, SubmissionBatch]},
    )
