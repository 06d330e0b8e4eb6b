"""The OpenAPI 3.1 document of the JSON API and the C2SP read paths, and the
routes that serve it and the page that reads it (``api/openapi_page.py``).

apispec generates the document from the marshmallow schemas that validate
input (``api/schemas.py``, ``api/submissions.py``, ``api/record_schema.py``,
``api/feed.py``), so what is documented is what is checked. The views build
their answers as dicts, so the response schemas below are written here from
the view code: they document and never validate. ``tests/api/test_openapi.py``
holds them to the real answers field by field, and every route of the app to
the document and back.

The document is static: it is built once per app and cached in
``app.extensions``.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Blueprint, Response, current_app, jsonify, render_template
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from api.coverage import ANSWER as COVERAGE_ANSWER
from api.coverage import CoverageQuery
from api.export import FORMATS, MAX_RANGE, ExportQuery
from api.feed import FeedQuery, StrictBoolParam, TimeParam
from api.openapi_page import METHODS as METHODS  # re-exported: the tests walk the document with it
from api.openapi_page import docs_context
from api.params import Hash, StrictInt
from api.record_enums import (
    Choice,
    DateTime,
    PostedAt,
    SchemaVersion,
    StrictBool,
    TerritorialScope,
    Text,
    UniqueList,
)
from api.record_schema import AmendmentRecord, AppealRecord, CoverageRecord, DecisionRecord
from api.schemas import ConsistencyQuery, InclusionQuery
from api.stats import EvennessQuery
from api.submissions import MAX_ITEMS, SignatureSchema, SubmissionItemSchema
from ledger.records.vocab import (
    ACCOUNT_CLASSES,
    ACTIONS,
    APPEAL_OUTCOMES,
    CATEGORIES,
    COUNTRY_CODES,
    ENUMS,
    EXEMPTION_TYPES,
    GLOBAL,
    ORDINARY_FOLLOWER_BUCKETS,
    PATTERNS,
    PUBLIC_FOLLOWER_BUCKETS,
    RECORD_TYPES,
    REVIEW_PATHS,
    SEVERITIES,
)

bp = Blueprint(
    "openapi",
    __name__,
    url_prefix="/api/v1",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

_EXTENSION = "ledger_openapi"

# A SHA-256 hash or Ed25519 public key (32 bytes) in standard padded base64:
# 43 digits and "=", the last digit carrying 2 zero bits.
B64_32 = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
B64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# api.params.Hash: 64 lower-case hex digits or padded base64, exactly.
HASH_PARAM = r"^(?:[0-9a-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$"
# ledger.records.entries.format_time: RFC 3339 UTC with milliseconds.
LOG_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
# api.feed.TimeParam (ledger.records.times.day_or_time_ms): a date, or a record's date-time.
FEED_TIME = f"(?:{PATTERNS['date']})|(?:{PATTERNS['date_time']})"
# ledger.tlog.tile.parse_tile_path, without the leading "tile/": level -1 (entries)
# to 63, index groups without a leading x000, partial width 1 to 255.
TILE_PATH = (
    r"^(?:entries|[0-9]|[1-5][0-9]|6[0-3])/(?:x(?:00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})/(?:x[0-9]{3}/)*)?[0-9]{3}"
    r"(?:\.p/(?:[1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$"
)

RECORD_SCHEMAS: dict[str, type[Schema]] = {
    "decision": DecisionRecord,
    "appeal": AppealRecord,
    "amendment": AmendmentRecord,
    "coverage": CoverageRecord,
}

# Choice keeps a frozenset; print each vocabulary in its documented order.
_VOCABULARIES = [
    *ENUMS.values(),
    (*COUNTRY_CODES, GLOBAL),
    tuple(dict.fromkeys(PUBLIC_FOLLOWER_BUCKETS + ORDINARY_FOLLOWER_BUCKETS)),
]


def _ordered(choices: frozenset[str]) -> list[str]:
    for vocabulary in _VOCABULARIES:
        if frozenset(vocabulary) == choices:
            return list(vocabulary)
    return sorted(choices)


def _own_fields(self: OpenAPIConverter, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The constraints of the project's field classes, which apispec cannot see:
    they check in ``_deserialize`` rather than through marshmallow validators."""
    if isinstance(field, StrictInt):
        out: dict[str, Any] = {}
        if "minimum" not in ret:
            out["minimum"] = 0
        if "maximum" not in ret:
            out["maximum"] = (1 << 63) - 1
        return out
    if isinstance(field, Hash):
        return {"pattern": HASH_PARAM, "description": "A SHA-256 hash: 64 lower-case hex digits or padded base64."}
    if isinstance(field, Text):
        out = {"minLength": field.min_len, "maxLength": field.max_len}
        if field.rx is not None:
            out["pattern"] = field.rx.pattern
        return out
    if isinstance(field, Choice):
        return {"enum": _ordered(field.choices)}
    if isinstance(field, SchemaVersion):
        return {"const": 1}
    if isinstance(field, DateTime):
        return {"pattern": PATTERNS["date_time"]}
    if isinstance(field, PostedAt):
        return {
            "anyOf": [
                {"format": "date-time", "pattern": PATTERNS["date_time"]},
                {"format": "date", "pattern": PATTERNS["date"]},
            ],
            "description": "A UTC date-time for public classes, a date YYYY-MM-DD for ordinary users.",
        }
    if isinstance(field, TimeParam):
        return {"pattern": FEED_TIME}
    if isinstance(field, UniqueList):
        out = {"minItems": 1, "uniqueItems": True}
        if isinstance(field, TerritorialScope):
            out["anyOf"] = [{"const": [GLOBAL]}, {"items": {"enum": list(COUNTRY_CODES)}}]
            out["description"] = '["GLOBAL"] alone, or ISO 3166-1 alpha-2 country codes.'
        return out
    return {}


def _plugin(ma: MarshmallowPlugin) -> None:
    assert ma.converter is not None
    # apispec's mapping is a class attribute shared by every converter in the
    # process: give this one its own copy before extending it.
    ma.converter.field_mapping = dict(ma.converter.field_mapping)
    for cls, type_, fmt in [
        (StrictInt, "integer", None),
        (Hash, "string", None),
        (Text, "string", None),
        (Choice, "string", None),
        (StrictBool, "boolean", None),
        (SchemaVersion, "integer", None),
        (DateTime, "string", "date-time"),
        (PostedAt, "string", None),
        (StrictBoolParam, "boolean", None),
        (TimeParam, "string", None),
    ]:
        ma.map_to_openapi_type(cls, type_, fmt)  # type: ignore[no-untyped-call]
    ma.converter.add_attribute_function(_own_fields)  # type: ignore[no-untyped-call]


# Response schemas. They document answers, which may gain fields, so unknown
# fields are not forbidden (EXCLUDE leaves additionalProperties out).


class _Doc(Schema):
    class Meta:
        unknown = EXCLUDE


def _str(description: str, *, pattern: str | None = None, fmt: str | None = None, **kw: Any) -> fields.String:
    meta: dict[str, Any] = {"description": description}
    if pattern:
        meta["pattern"] = pattern
    if fmt:
        meta["format"] = fmt
    return fields.String(required=kw.pop("required", True), metadata=meta, **kw)


def _int(description: str, **kw: Any) -> fields.Integer:
    return fields.Integer(required=kw.pop("required", True), metadata={"description": description, "minimum": 0}, **kw)


def _hash(description: str) -> fields.String:
    return _str(description, pattern=B64_32)


def _time(description: str, **kw: Any) -> fields.String:
    return _str(description, pattern=LOG_TIME, fmt="date-time", **kw)


def _path(description: str) -> fields.List[Any]:
    return fields.List(
        fields.String(metadata={"pattern": B64_32}), required=True, metadata={"description": description}
    )


def _choice(values: tuple[str, ...], description: str, **kw: Any) -> fields.String:
    return fields.String(
        required=kw.pop("required", True), validate=validate.OneOf(values), metadata={"description": description}, **kw
    )


class Checkpoint(_Doc):
    tree_size = _int("The number of entries the checkpoint commits to.")
    root_hash = _hash("The RFC 9162 root hash of the tree of that size, padded base64.")
    signed_note = _str(
        "The checkpoint as a signed note (c2sp.org/tlog-checkpoint), as /checkpoint serves it. "
        "Verify its signature with the log's verifier key before trusting tree_size and root_hash."
    )


class LogInfo(_Doc):
    origin = _str("The log's name: the first line of every checkpoint.")
    verifier_key = _str("The log's verifier key, <origin>+<key ID>+<base64 key> (c2sp.org/signed-note).")
    tile_height = fields.Integer(required=True, metadata={"enum": [8], "description": "Tiles hold 2^8 hashes."})
    checkpoint = fields.Nested(Checkpoint, required=True)


class InclusionProof(_Doc):
    leaf_index = _int("The entry's index in the log.")
    leaf_hash = _hash("The RFC 9162 leaf hash of the entry.")
    tree_size = _int("The size of the tree the proof is against: checkpoint.tree_size.")
    inclusion_path = _path("The RFC 9162 inclusion proof, leaf to root.")
    checkpoint = fields.Nested(Checkpoint, required=True)


class Entry(InclusionProof):
    entry = _str("The entry's bytes, padded base64.", pattern=B64)


class ConsistencyProof(_Doc):
    first = _int("The older tree size.")
    second = _int("The newer tree size.")
    consistency_path = _path("The RFC 9162 consistency proof from first to second.")
    first_checkpoint = fields.Nested(Checkpoint, required=True, metadata={"description": "The checkpoint of first."})
    checkpoint = fields.Nested(Checkpoint, required=True, metadata={"description": "The checkpoint of second."})


class SubmittedRecord(_Doc):
    platform = _str("The record's platform.", pattern=PATTERNS["platform"])
    record_id = _str("The record's record_id.", pattern=PATTERNS["record_id"])
    status = _choice(("created", "existing"), "created: appended now; existing: logged before with the same content.")
    leaf_index = _int("The record's entry index.")
    leaf_hash = _hash("The entry's RFC 9162 leaf hash.")
    logged_at = _time("When the log appended the entry.")
    permalink = _str("Where the record can be read back.")
    tree_size = _int("The size of the tree the proof is against.")
    inclusion_path = _path("The entry's inclusion proof against the checkpoint of the answer.")


class SubmissionResult(_Doc):
    checkpoint = fields.Nested(Checkpoint, required=True)
    records = fields.List(
        fields.Nested(SubmittedRecord), required=True, metadata={"description": "One receipt per item, in order."}
    )


class RecordSummary(_Doc):
    leaf_index = _int("The record's entry index.")
    record_id = _str("The record's record_id.", pattern=PATTERNS["record_id"])
    type = _choice(RECORD_TYPES, "The record type.")
    logged_at = _time("When the log appended it.")
    permalink = _str("Where it can be read.")


class RecordHistory(_Doc):
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


class KeyState(_Doc):
    key_id = _str("The key ID: 16 lower-case hex digits.", pattern=r"^[0-9a-f]{16}$")
    platform = _str("The platform the key signs for.", pattern=PATTERNS["platform"])
    public_key = _hash("The Ed25519 public key, padded base64.")
    valid_from = _time("When the key became valid.")
    revoked_from = _time("When a revocation took effect, or null.", allow_none=True)
    revocation_reason = _str("Why it was revoked, or null.", allow_none=True)


class RecordPage(_Doc):
    leaf_index = _int("The record's entry index.")
    logged_at = _time("When the log appended it.")
    platform = _str("The record's platform.", pattern=PATTERNS["platform"])
    record_id = _str("The record's record_id.", pattern=PATTERNS["record_id"])
    type = _choice(RECORD_TYPES, "The record type.")
    record = fields.Raw(required=True)  # replaced by _RECORD below
    signature = fields.Nested(SignatureSchema, required=True)
    key = fields.Nested(KeyState, required=True, metadata={"description": "The signing key's state now."})
    history = fields.Nested(RecordHistory, required=True)
    entry = _str("The log entry: the RFC 8785 form of {logged_at, record, signature}, padded base64.", pattern=B64)
    leaf_hash = _hash("The entry's RFC 9162 leaf hash.")
    tree_size = _int("The size of the tree the proof is against.")
    inclusion_path = _path("The entry's inclusion proof against the checkpoint.")
    checkpoint = fields.Nested(Checkpoint, required=True)


class PlatformKey(_Doc):
    key_id = _str("The key ID: 16 lower-case hex digits.", pattern=r"^[0-9a-f]{16}$")
    alg = _choice(("ed25519",), "The signature algorithm.")
    public_key = _hash("The Ed25519 public key, padded base64.")
    valid_from = _time("When the key became valid.")
    added_leaf_index = _int("The registry entry that added the key.")
    revoked_from = _time("When a revocation took effect, or null.", allow_none=True)
    revocation_reason = _str("Why it was revoked, or null.", allow_none=True)
    revoked_leaf_index = _int("The registry entry that revoked it, or null.", allow_none=True)


class Platform(_Doc):
    platform = _str("The platform's slug.", pattern=PATTERNS["platform"])
    display_name = _str("The platform's name.")
    registered_at = _time("When the platform was registered.")
    leaf_index = _int("The registry entry that registered it.")
    keys = fields.List(fields.Nested(PlatformKey), required=True, metadata={"description": "Oldest first."})


class PlatformList(_Doc):
    platforms = fields.List(fields.Nested(Platform), required=True, metadata={"description": "By slug."})


class FeedRule(_Doc):
    id = _str("The platform's rule ID.")
    version = _str("The rule's version.")


class FeedExemption(_Doc):
    applied = fields.Boolean(required=True)
    type = _choice(EXEMPTION_TYPES, "The exemption type, or null.", allow_none=True)


def _null_choice(values: tuple[str, ...], description: str) -> fields.String:
    return _choice(values, description + " Null when the record type has none.", allow_none=True)


class FeedRecord(_Doc):
    leaf_index = _int("The record's entry index.")
    platform = _str("The record's platform.", pattern=PATTERNS["platform"])
    record_id = _str("The record's record_id.", pattern=PATTERNS["record_id"])
    type = _choice(RECORD_TYPES, "The record type.")
    refs = _str("The record_id an appeal or amendment refers to, or null.", allow_none=True)
    logged_at = _time("When the log appended it.")
    decided_at = _time("When it was decided, or null.", allow_none=True)
    account_class = _null_choice(ACCOUNT_CLASSES, "The account class.")
    subject_key = _str("The account's pseudonym, or null.", allow_none=True)
    display_name = _str("A public subject's name, or null.", allow_none=True)
    rule = fields.Nested(FeedRule, required=True, allow_none=True)
    category = _null_choice(CATEGORIES, "The DSA statement category.")
    severity = _null_choice(SEVERITIES, "The severity.")
    violation_found = fields.Boolean(required=True, allow_none=True)
    action = _null_choice(ACTIONS, "The action.")
    exemption = fields.Nested(FeedExemption, required=True, allow_none=True)
    review_path = _null_choice(REVIEW_PATHS, "The review path.")
    appeal_outcome = _null_choice(APPEAL_OUTCOMES, "An appeal's outcome.")
    superseded = fields.Boolean(required=True, metadata={"description": "A later amendment supersedes it."})
    permalink = _str("Where the full record and its proof can be read.")


class FeedPage(_Doc):
    tree_size = _int("The tree size the page reflects; the cursor keeps it across pages.")
    records = fields.List(fields.Nested(FeedRecord), required=True, metadata={"description": "Newest first."})
    next_cursor = _str("Pass as cursor for the next page; null on the last.", allow_none=True)


class SubjectPage(FeedPage):
    subject_key = _str("The subject asked for.", pattern=PATTERNS["subject_key"])


class SubmissionBatch(Schema):
    class Meta:
        unknown = RAISE

    records = fields.List(fields.Nested(SubmissionItemSchema), required=True, validate=validate.Length(1, MAX_ITEMS))


class ExistingRecord(_Doc):
    leaf_index = _int("The entry of the record already logged.")
    permalink = _str("Where it can be read.")


class ProblemError(_Doc):
    index = _int("The item of the request (submissions only).", required=False)
    path = _str("Slash-separated path of the offending value in the item or query; empty for the whole item.")
    message = _str("What is wrong.")
    existing = fields.Nested(ExistingRecord, metadata={"description": "409 only: the record already logged."})


class Problem(_Doc):
    type = _str("The problem type.", fmt="uri")
    title = _str("A short summary of the problem type.")
    status = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    detail = _str("What went wrong with this request.")
    errors = fields.List(fields.Nested(ProblemError), metadata={"description": "The individual problems, if any."})


# Paths.


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str, retry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/problem+json": {"schema": Problem}}}
    if retry:
        out["headers"] = {"Retry-After": "Retry-After"}
    return out


_503 = "Unavailable"


def _export_file() -> dict[str, Any]:
    return {
        "description": "The file, as an attachment.",
        "content": {"application/gzip": {"schema": {}}},
        "headers": {
            "Ledger-Checkpoint-Size": {
                "description": "The tree size of the checkpoint the file names.",
                "schema": {"type": "integer", "minimum": 0},
            },
            "Content-Disposition": {"description": "attachment; filename=...", "schema": {"type": "string"}},
        },
    }


def _query(ma: MarshmallowPlugin, schema: Schema, descriptions: dict[str, str]) -> list[dict[str, Any]]:
    """Query parameters from ``schema``. Its ``load_default=None`` fields mean
    "absent", not JSON null, so the null type apispec infers is dropped."""
    assert ma.converter is not None
    params: list[dict[str, Any]] = ma.converter.schema2parameters(schema, location="query")
    for p in params:
        s = p["schema"]
        if isinstance(s.get("type"), list):
            s["type"] = next(t for t in s["type"] if t != "null")
        if s.get("default", 0) is None:
            del s["default"]
        if p["name"] in descriptions:
            p["description"] = descriptions[p["name"]]
    return params


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


INDEX = _path_param("index", {"type": "integer", "minimum": 0}, "The entry's index in the log.")
Paths = dict[str, dict[str, dict[str, Any]]]


def _op(
    tag: str,
    operation_id: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    reads_log: bool = True,
) -> dict[str, Any]:
    """One operation; every operation that reads the log may answer 503."""
    op: dict[str, Any] = {"tags": [tag], "operationId": operation_id, "summary": summary, "description": description}
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op["responses"] = {**responses, "503": _503} if reads_log else responses
    return op


def _c2sp_paths() -> Paths:
    tile = _path_param(
        "path",
        {"type": "string", "pattern": TILE_PATH},
        "The tile path after tile/, e.g. 0/x001/234.p/5 or entries/000; its slashes are sent as they are.",
    )
    note = {"description": "The signed note.", "content": {"text/plain": {"schema": {"type": "string"}}}}
    tag = "C2SP read path"
    return {
        "/checkpoint": {
            "get": _op(
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
            "get": _op(
                tag,
                "getCosignedCheckpoint",
                "The newest checkpoint a witness cosigned",
                "As /checkpoint, for the newest tree size with at least one cosignature: a client that requires "
                "witnesses starts there and proves consistency to the latest checkpoint.",
                {"200": note, "404": _problem("No witness has cosigned a checkpoint yet.")},
            )
        },
        "/tile/{path}": {
            "get": _op(
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
                    "400": _problem("A malformed or non-canonical tile path."),
                    "404": _problem("A tile beyond the tree."),
                },
                [tile],
            )
        },
    }


def _proof_paths(ma: MarshmallowPlugin) -> Paths:
    inclusion = _query(
        ma,
        InclusionQuery(),
        {
            "leaf_index": "The entry's index. Give exactly one of leaf_index and leaf_hash.",
            "leaf_hash": "The entry's RFC 9162 leaf hash: 64 lower-case hex digits or padded base64.",
            "tree_size": "A tree size the log signed a checkpoint for; the latest if absent.",
        },
    )
    consistency = _query(
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
            "get": _op(
                tag,
                "getLog",
                "The log's origin, verifier key and latest checkpoint",
                "Compare the verifier key with one obtained out of band.",
                {"200": _json(LogInfo, "The log.")},
            )
        },
        "/api/v1/entries/{index}": {
            "get": _op(
                tag,
                "getEntry",
                "One entry with its inclusion proof",
                "The proof is against the latest checkpoint, which the answer carries.",
                {"200": _json(Entry, "The entry and its proof."), "404": _problem("No entry at that index.")},
                [INDEX],
            )
        },
        "/api/v1/proofs/inclusion": {
            "get": _op(
                tag,
                "getInclusionProof",
                "An inclusion proof, by leaf index or leaf hash",
                "Each parameter may be given once; unknown parameters are errors.",
                {
                    "200": _json(InclusionProof, "The proof and the checkpoint it is against."),
                    "400": _problem(f"{bad_query}, or not exactly one of leaf_index and leaf_hash."),
                    "404": _problem("No such entry in that tree, or no checkpoint of that tree size."),
                },
                inclusion,
            )
        },
        "/api/v1/proofs/consistency": {
            "get": _op(
                tag,
                "getConsistencyProof",
                "A consistency proof between two checkpointed tree sizes",
                "Proves the tree of size second extends the tree of size first. Both checkpoints are in the answer.",
                {
                    "200": _json(ConsistencyProof, "The proof and both checkpoints."),
                    "400": _problem(f"{bad_query}, or first above second."),
                    "404": _problem("No checkpoint of that tree size."),
                },
                consistency,
            )
        },
    }


def _submit() -> dict[str, Any]:
    return _op(
        "Submissions",
        "submitRecords",
        "Submit signed records",
        f'One item, or {{"records": [items]}} of 1 to {MAX_ITEMS}. All or nothing: every item is checked (schema, '
        "platform, key, Ed25519 signature over mdl/record/v1 and the RFC 8785 form of the record as received) "
        "before any is appended. Resubmitting a logged record is safe: it comes back as existing.",
        {
            "201": _json(SubmissionResult, "At least one record was appended."),
            "200": _json(SubmissionResult, "Every record was already logged with the same content."),
            "400": _problem(
                "Malformed JSON, a body of the wrong shape, or records that break the schema; errors lists each "
                "problem with its item index."
            ),
            "409": _problem(
                "A record_id already logged with different content; the error names the existing entry. "
                "Corrections are amendments."
            ),
            "413": _problem("The body exceeds the server's size limit."),
            "415": _problem("The body is not application/json."),
            "422": _problem(
                "A bad signature; an unknown, foreign or revoked key; an unknown platform; or a reference to a "
                "record not in the log."
            ),
            "429": _problem("The platform is over its rate limit.", retry=True),
        },
        body={"oneOf": [SubmissionItemSchema, SubmissionBatch]},
    )


def _record_paths(feed: list[dict[str, Any]]) -> Paths:
    slug = _path_param("slug", {"type": "string", "pattern": PATTERNS["platform"]}, "The platform.")
    record_id = _path_param("record_id", {"type": "string", "pattern": PATTERNS["record_id"]}, "The record_id.")
    tag = "Records"
    return {
        "/api/v1/records": {
            "get": _op(
                "Feed",
                "listRecords",
                "The public feed of records, newest first",
                "Every filter narrows the feed; paging with cursor neither skips nor repeats a record while the "
                "log grows.",
                {
                    "200": _json(FeedPage, "One page."),
                    "400": _problem("Malformed, repeated or unknown parameters, or a foreign cursor."),
                },
                feed,
            ),
            "post": _submit(),
        },
        "/api/v1/records/{index}": {
            "get": _op(
                tag,
                "getRecordByIndex",
                "A record, by the index of its entry",
                "As the permalink.",
                {
                    "200": _json(RecordPage, "The record."),
                    "404": _problem("No record at that index (registry entries are not records)."),
                },
                [INDEX],
            )
        },
        "/api/v1/platforms/{slug}/records/{record_id}": {
            "get": _op(
                tag,
                "getRecord",
                "A record's permalink",
                "The record with its log entry, the entry's inclusion proof against the latest checkpoint, the "
                "signing key's state, and the appeals and amendments that refer to it.",
                {"200": _json(RecordPage, "The record."), "404": _problem("No such record in the log.")},
                [slug, record_id],
            )
        },
        "/api/v1/platforms": {
            "get": _op(
                tag,
                "listPlatforms",
                "Platforms and the history of their keys",
                "Every key ever registered, with the registry entries that added and revoked it. Platforms "
                "should watch the entries for their slug.",
                {"200": _json(PlatformList, "The registry.")},
            )
        },
        "/api/v1/subjects/{subject_key}": {
            "get": _op(
                "Feed",
                "listSubjectRecords",
                "The feed of one subject's records",
                "The feed, filtered to one account pseudonym; takes the feed's filters.",
                {
                    "200": _json(SubjectPage, "One page."),
                    "400": _problem("A malformed subject key or parameters."),
                },
                [
                    _path_param(
                        "subject_key",
                        {"type": "string", "pattern": PATTERNS["subject_key"]},
                        "The account's pseudonym.",
                    ),
                    *feed,
                ],
            )
        },
    }


def _export_paths(ma: MarshmallowPlugin) -> Paths:
    params = _query(
        ma,
        ExportQuery(),
        {
            "start": "The first entry index.",
            "end": f"One past the last entry, at most start + {MAX_RANGE} and within the tree; a named end makes "
            f"the answer immutable. Absent: the smaller of the tree size and start + {MAX_RANGE}, not cached.",
            "format": "ndjson: a header line, then one line per entry (the faithful form); csv: the records, "
            "flattened into the columns of ledger/records/export.py, text that a spreadsheet would run as a formula "
            "prefixed with '.; dsa-csv: the records in the columns of the DSA Transparency Database's daily "
            "dumps, then this ledger's (ledger/records/dsa.py, docs/records.md), without a preamble.",
        },
    )
    bundle = [
        _path_param("n", {"type": "integer", "minimum": 0}, "The bundle index."),
        _path_param("fmt", {"type": "string", "enum": list(FORMATS)}, "The format."),
    ]
    tag = "Bulk export"
    return {
        "/api/v1/export": {
            "get": _op(
                tag,
                "exportRange",
                "A range of entries as gzip-compressed NDJSON or CSV",
                "Each file names the smallest signed checkpoint covering end, so the bytes for a range never "
                "change. Streams; memory stays flat.",
                {
                    "200": _export_file(),
                    "400": _problem(
                        "Malformed, repeated or unknown parameters, start not below end, or too long a range."
                    ),
                    "404": _problem("end beyond the tree."),
                },
                params,
            )
        },
        "/api/v1/export/bundles/{n}.{fmt}.gz": {
            "get": _op(
                tag,
                "exportBundle",
                "The 256 entries of entry bundle n, gzip-compressed",
                "The entries of tile/entries/<n>, once full; immutable.",
                {"200": _export_file(), "404": _problem("A bundle not full yet, or an unknown format.")},
                bundle,
            )
        },
    }


def _doc_paths() -> Paths:
    html = {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}
    return {
        "/api/v1/openapi.json": {
            "get": _op(
                "Documentation",
                "getOpenAPI",
                "This OpenAPI document",
                "Generated from the marshmallow schemas that validate requests.",
                {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                reads_log=False,
            )
        },
        "/api/v1/docs": {
            "get": _op(
                "Documentation",
                "getDocs",
                "This document as a page",
                "Server-rendered from the OpenAPI document; works without JavaScript.",
                {"200": html},
                reads_log=False,
            )
        },
    }


def _health_paths() -> Paths:
    return {
        "/healthz": {
            "get": _op(
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
                    "503": _problem("A derived row differs from its log entry", retry=True),
                },
                reads_log=False,
            )
        },
    }


def _stats_paths(ma: MarshmallowPlugin) -> Paths:
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
                "description": "The evenness document (method version 1, or 2 with method_version=2): method "
                "and parameters, checkpoint, filters, totals, cells, comparisons with their strata tables, platform "
                "summaries, the monthly series and the flagged list; version 2 adds coverage (per cell and per "
                "comparison: declared against logged decisions, the bounds that hold whatever the missing "
                "decisions were, and whether they could reverse the comparison). Its RFC 8785 bytes appear in the "
                "answer verbatim.",
            },
            "document_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "publication": {"oneOf": [{"type": "null"}, publication]},
        },
    }
    ok = _json(answer, "The document (RFC 8785 JSON).")
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
            "get": _op(
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
                    "400": _problem("Malformed, repeated or unknown parameters."),
                    "404": _problem("No checkpoint of that tree size."),
                },
                _query(ma, EvennessQuery(), {}),
            )
        }
    }


def _coverage_paths(ma: MarshmallowPlugin) -> Paths:
    return {
        "/api/v1/coverage": {
            "get": _op(
                "Statistics",
                "getCoverage",
                "Coverage: declared decisions against logged ones",
                "For each coverage statement in force (a platform's signed count of its decisions under one rule "
                "in one month, per account class, action and exemption applied), the log's count of the same "
                "decisions as of a checkpoint: complete, incomplete (fewer logged) or contradicted (more logged "
                "than declared). A platform can under-declare; a statement makes its count a signed claim. "
                "docs/records.md, Coverage fields.",
                {
                    "200": _json(COVERAGE_ANSWER, "The comparisons, with the checkpoint they are computed at."),
                    "400": _problem("Malformed, repeated or unknown parameters."),
                    "404": _problem("No checkpoint of that tree size."),
                },
                _query(ma, CoverageQuery(), {}),
            )
        }
    }


def _paths(ma: MarshmallowPlugin) -> Paths:
    feed = _query(ma, FeedQuery(), {"limit": "Records per page.", "cursor": "The next_cursor of a page."})
    return {
        **_c2sp_paths(),
        **_proof_paths(ma),
        **_record_paths(feed),
        **_export_paths(ma),
        **_stats_paths(ma),
        **_coverage_paths(ma),
        **_doc_paths(),
        **_health_paths(),
    }


DESCRIPTION = """\
The JSON API and the C2SP read paths of the moderation-decision transparency ledger: an
append-only Merkle log (RFC 9162) of platforms' signed moderation decisions, appeals and
amendments, published as signed checkpoints and tiles (c2sp.org/tlog-checkpoint,
c2sp.org/tlog-tiles).

Every proof names the signed checkpoint it was computed against, so no answer needs to be
trusted: verify the checkpoint with the log's verifier key, obtained out of band, then the
proof against it. README.md, section "Verifying the log", shows how, with ledger/tlog/verify.py
or Go's sumdb packages. Hashes and entries are standard padded base64. Errors are RFC 9457
application/problem+json."""

_RECORD_NOTE = (
    "Generated from api/record_schema.py. Some rules span fields (time order, what ordinary users may "
    'not carry, what an exemption or an appeal outcome requires): docs/records.md, "Checks beyond '
    'types", and docs/schema/record-v1.schema.json state them.'
)


def _fix_records(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Narrow what apispec cannot see and return the schema of "a record".

    ``validate_record`` picks the schema by ``type`` and the envelope requires
    ``refs`` of appeals and amendments and forbids it in decisions; with
    these stated, the four record schemas exclude each other (by ``type``).
    """
    refs = {kind: _ref(cls.__name__) for kind, cls in RECORD_SCHEMAS.items()}
    for kind, cls in RECORD_SCHEMAS.items():
        s = schemas[cls.__name__]
        s["properties"]["type"] = {"type": "string", "const": kind}
        if kind == "decision":
            del s["properties"]["refs"]
        elif kind != "coverage":  # a coverage statement's refs (what it supersedes) is optional
            s["required"] = sorted({*s["required"], "refs"})
        s["description"] = _RECORD_NOTE
    return {
        "oneOf": list(refs.values()),
        "discriminator": {"propertyName": "type", "mapping": {k: v["$ref"] for k, v in refs.items()}},
    }


def build_spec() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every JSON and C2SP route, as a dict. Pure."""
    ma = MarshmallowPlugin()
    spec = APISpec(
        title="Moderation-decision transparency ledger",
        version="1",
        openapi_version="3.1.0",
        plugins=[ma],
        info={"description": DESCRIPTION},
        servers=[{"url": "/"}],
    )
    _plugin(ma)
    for tag, text in [
        ("C2SP read path", "Checkpoints and tiles, for standard transparency-log tools."),
        ("Log and proofs", "The log's state, entries and proofs as JSON."),
        ("Submissions", "Platforms submit signed records."),
        ("Records", "Records and the platform registry, read back with proofs."),
        ("Feed", "The public feed of records."),
        ("Bulk export", "Ranges of entries as compressed files."),
        ("Statistics", "Evenness statistics, reproducible from the log."),
        ("Documentation", "This document."),
        ("Health", "For load balancers."),
    ]:
        spec.tag({"name": tag, "description": text})
    for cls in RECORD_SCHEMAS.values():
        spec.components.schema(cls.__name__, schema=cls)
    spec.components.header(
        "Retry-After",
        {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}},
    )
    spec.components.response(_503, _problem("The database is unavailable, or the log moved; retry.", retry=True))
    for path, operations in _paths(ma).items():
        spec.path(path=path, operations=operations)
    out = spec.to_dict()
    schemas = out["components"]["schemas"]
    record = _fix_records(schemas)
    schemas["SubmissionItem"]["properties"]["record"] = record
    schemas["RecordPage"]["properties"]["record"] = {**record, "description": "The record as the platform signed it."}
    return out


def get_spec() -> dict[str, Any]:
    """The app's OpenAPI document, built on first use. Two threads may both
    build it; the results are equal, and the last one stays."""
    ext = current_app.extensions
    if _EXTENSION not in ext:
        ext[_EXTENSION] = build_spec()
    return ext[_EXTENSION]  # type: ignore[no-any-return]


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(get_spec())


@bp.get("/docs")
def docs() -> str:
    ext = current_app.extensions
    if _EXTENSION + "_docs" not in ext:
        ext[_EXTENSION + "_docs"] = docs_context(get_spec())
    return render_template("api/docs.html", **ext[_EXTENSION + "_docs"])
