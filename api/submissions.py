"""``POST /api/v1/records``: platforms submit signed records.

The body is parsed strictly (UTF-8, no duplicate keys), every item is
validated against the record schema and its signature checked over the
RFC 8785 form of the record *as received* (never a re-dump), and only then
charged to its platform's rate limit and handed to the server's one
committer (ledger/intake.py), which appends every queued submission in one
transaction. A request is all or nothing.

One function, :func:`accept`, does all of it, from the WSGI environ to the
answer's status and bytes. The app answers this one method and path with
:class:`LeanSubmissions`, a WSGI layer in front of Flask that calls
:func:`accept` without building Flask's request context and request and
response objects (a third of a single record's CPU in the app, see
docs/performance.md); every other request, and every error of this one,
goes through Flask, whose view for the route calls the same function.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.http import parse_options_header

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
from api.state import log_of
from api.wsgi_layer import WsgiLayer
from ledger.errors import InvalidInput
from ledger.records.entries import format_time, parse_json
from ledger.records.vocab import PATTERNS
from ledger.submit import permalink, verify_items

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

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


def _limiter(app: Flask) -> RateLimiter:
    ext = app.extensions
    if "ledger_rate_limiter" not in ext:
        ext["ledger_rate_limiter"] = RateLimiter(
            float(app.config["RATE_LIMIT_RECORDS_PER_SECOND"]), float(app.config["RATE_LIMIT_BURST"])
        )
    return ext["ledger_rate_limiter"]  # type: ignore[no-any-return]


def _mimetype(environ: WSGIEnvironment) -> str:
    """``request.mimetype``: the Content-Type without its parameters, lower case."""
    value = str(environ.get("CONTENT_TYPE", ""))
    if value == "application/json":  # what clients send; parsing it gives the same
        return value
    return parse_options_header(value)[0].lower()


#: What ``jsonify`` wrote with this app's JSON provider (keys in insertion
#: order, ASCII, compact), then a newline; without a response object.
ENCODER = json.JSONEncoder(separators=(",", ":"))


def records_json(out: list[dict[str, Any]]) -> bytes:
    """``ENCODER.encode(out).encode()`` of the answer's records, by orjson
    where the two write the same bytes: a fifteenth of its CPU (0.7 against
    10.4 µs a record of a batch, as measured).

    For lists and dicts of strings and integers, neither writes whitespace,
    both keep the dicts' order and write an integer's digits, and both escape
    ``"``, ``\\`` and U+0000 to U+001F with the same table (``\\b \\f \\n
    \\r \\t``, otherwise ``\\u00xx`` in lower case) and write the rest of
    printable ASCII as it is. They differ only where ``ENCODER``
    (``ensure_ascii``) writes ``\\uXXXX`` and orjson the character: beyond
    ASCII and at U+007F. An answer whose orjson bytes hold either, or that
    orjson refuses (a lone surrogate), is written by ``ENCODER``
    (tests/api/test_submissions_lean.py compares the two)."""
    try:
        data = orjson.dumps(out)
    except orjson.JSONEncodeError:
        return ENCODER.encode(out).encode()
    return data if data.isascii() and b"\x7f" not in data else ENCODER.encode(out).encode()


def accept(app: Flask, environ: WSGIEnvironment) -> tuple[int, bytes]:
    """Take the submission of ``environ`` and return the answer's status and
    JSON body, or raise the error (a project error or an HTTP one) that the
    app's error table turns into the answer (api/errors.py).

    Durable before it returns: the records are in a signed checkpoint
    (ledger/intake.py). Rate-limit tokens are spent only once every
    signature has verified."""
    if _mimetype(environ) != "application/json":
        raise UnsupportedMediaType("send the submission as Content-Type: application/json")
    items = _items(parse_json(read_body(environ, int(app.config["MAX_CONTENT_LENGTH"]))))
    now_ms = time.time_ns() // 1_000_000
    bodies = _validate(items, datetime.fromtimestamp(now_ms / 1000, UTC))
    counts = Counter(str(it["record"]["platform"]) for it in items)
    limiter = _limiter(app)
    limiter.check(counts)
    log = log_of(app)
    verified = verify_items(log.registry_cache, items, now_ms, bodies)
    # Charged only now that every signature verified: the platform itself
    # sent these records, not someone naming it (api/ratelimit.py).
    limiter.take(counts)
    receipt = log.intake.append(verified)
    cp = receipt.checkpoint
    # The records of a group share their logged_at and the upper levels of
    # their inclusion paths: each distinct value is written once per answer.
    times: dict[int, str] = {}
    hashes: dict[bytes, str] = {}
    out = []
    for r, p, proof in zip(verified, receipt.placed, receipt.proofs, strict=True):
        logged_at = times.get(p.logged_at_ms)
        if logged_at is None:
            logged_at = times[p.logged_at_ms] = format_time(p.logged_at_ms)
        path = []
        for h in proof.proof:
            text = hashes.get(h)
            if text is None:
                text = hashes[h] = _b64(h)
            path.append(text)
        out.append(
            {
                "platform": r.platform,
                "record_id": r.record_id,
                "status": p.status,
                "leaf_index": p.leaf_index,
                "leaf_hash": _b64(proof.leaf_hash),
                "logged_at": logged_at,
                "permalink": permalink(r.platform, r.record_id),
                "tree_size": cp.size,
                "inclusion_path": path,
            }
        )
    status = 201 if any(p.status == "created" for p in receipt.placed) else 200
    # {"checkpoint": ..., "records": ...}, as ENCODER writes it: the signed
    # note's signature lines begin with U+2014, which it escapes.
    checkpoint = ENCODER.encode(checkpoint_answer(cp)).encode()
    return status, b"".join((b'{"checkpoint":', checkpoint, b',"records":', records_json(out), b"}\n"))


#: The answer's own headers, after Content-Type and Content-Length.
_HEADERS = (("Cache-Control", "no-store"),)
#: Where :class:`LeanSubmissions` leaves the error it met for the view to raise.
_ERROR = "ledger.submission_error"


@bp.post("/records")
def submit() -> Response:
    error = request.environ.pop(_ERROR, None)
    if error is not None:
        # LeanSubmissions met this error (the body is read): raised here, it
        # is answered as any view's error is, by the app's error table.
        raise error
    status, body = accept(current_app, request.environ)
    resp = Response(body, status, mimetype="application/json")
    resp.headers.extend(_HEADERS)
    return resp


class LeanSubmissions(WsgiLayer):
    """A WSGI layer in front of Flask (``app.wsgi_app``) that answers
    ``POST /api/v1/records`` by calling :func:`accept`, as the view does,
    without Flask's request context (URL matching, the app and request
    contexts, the request and response objects, header objects): about a
    third of a single record's CPU in the app.

    Everything else goes to ``flask_wsgi`` unchanged. So does every error of
    this path: the error is left in the environ and the view re-raises it,
    so errors are answered by the one error table, with every hook, as
    before. The answer it builds is the one the view's response gives
    (tests/api/test_submissions_lean.py compares them byte for byte);
    ``before`` are the app's ``before_request`` functions (run first, as
    Flask runs them) and ``headers`` what its ``after_request`` adds.
    """

    PATH = "/api/v1/records"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.flask_wsgi(environ, start_response)
        try:
            self._before()
            status, body = accept(self.app, environ)
        except Exception as e:
            environ[_ERROR] = e
            return self.flask_wsgi(environ, start_response)
        start_response(
            _STATUS[status],
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *_HEADERS,
                *self.headers,
            ],
        )
        return [body]


_STATUS = {201: "201 CREATED", 200: "200 OK"}  # werkzeug's status lines


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
