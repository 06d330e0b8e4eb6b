"""The OpenAPI 3.1 document of the JSON API and the C2SP read paths, and the
routes that serve it and the page that reads it (``api/openapi_page.py``).

This module only assembles. Each answer is described beside the view that
builds it: every api module that serves routes ends with ``paths(ma)``,
returning the OpenAPI path items of exactly its own routes, written with
the helpers of ``api/describe.py`` and the marshmallow schemas that validate
its input (so what is documented is what is checked); the response schemas
(``describe.Doc`` subclasses) sit next to the views too. ``DESCRIBED`` lists
those modules; ``build_spec`` merges their paths, refusing an operation two
modules both claim.

To add a route: write the view, then its operation in the same module's
``paths`` (a new module: give it ``bp`` and ``paths``, register ``bp`` in
``api/__init__.py`` and add the module to ``DESCRIBED``).
``tests/api/test_openapi.py`` fails for a route that no module's ``paths``
documents, for a documented operation the app does not serve, and for a
route documented by a module other than the one whose blueprint serves it;
it also holds the response schemas to the real answers field by field. So
an undocumented route cannot exist.

The document is static: it is built once per app and cached in
``app.extensions``.
"""

from __future__ import annotations

import sys
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Blueprint, Response, current_app, jsonify, render_template
from marshmallow import Schema, fields

from api import export, feed, records, stats, submissions, tiles, v1
from api.describe import UNAVAILABLE, Paths, json_answer, op, problem, ref
from api.feed import StrictBoolParam, TimeParam
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
from api.record_schema import AmendmentRecord, AppealRecord, DecisionRecord
from ledger.records.vocab import (
    COUNTRY_CODES,
    ENUMS,
    GLOBAL,
    ORDINARY_FOLLOWER_BUCKETS,
    PATTERNS,
    PUBLIC_FOLLOWER_BUCKETS,
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

# api.params.Hash: 64 lower-case hex digits or padded base64, exactly.
HASH_PARAM = r"^(?:[0-9a-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$"
# api.feed.TimeParam (ledger.records.times.day_or_time_ms): a date, or a record's date-time.
FEED_TIME = f"(?:{PATTERNS['date']})|(?:{PATTERNS['date_time']})"
RECORD_SCHEMAS: dict[str, type[Schema]] = {
    "decision": DecisionRecord,
    "appeal": AppealRecord,
    "amendment": AmendmentRecord,
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


def paths(ma: MarshmallowPlugin) -> Paths:
    """This document and its page."""
    html = {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}
    return {
        "/api/v1/openapi.json": {
            "get": op(
                "Documentation",
                "getOpenAPI",
                "This OpenAPI document",
                "Generated from the marshmallow schemas that validate requests.",
                {"200": json_answer({"type": "object"}, "OpenAPI 3.1.")},
                reads_log=False,
            )
        },
        "/api/v1/docs": {
            "get": op(
                "Documentation",
                "getDocs",
                "This document as a page",
                "Server-rendered from the OpenAPI document; works without JavaScript.",
                {"200": html},
                reads_log=False,
            )
        },
    }


#: The modules whose routes the document describes, each by its ``paths(ma)``,
#: in the order the document lists them; this module describes its own.
DESCRIBED = (tiles, v1, feed, submissions, records, export, stats, sys.modules[__name__])


def _paths(ma: MarshmallowPlugin) -> Paths:
    """Every module's path items, merged: two modules may share a path (GET and
    POST of /api/v1/records), never an operation."""
    out: Paths = {}
    for module in DESCRIBED:
        for path, operations in module.paths(ma).items():
            item = out.setdefault(path, {})
            for method, operation in operations.items():
                if method in item:
                    raise AssertionError(f"{method.upper()} {path} is described twice ({module.__name__})")
                item[method] = operation
    return out


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
    these stated, the three record schemas exclude each other.
    """
    refs = {kind: ref(cls.__name__) for kind, cls in RECORD_SCHEMAS.items()}
    for kind, cls in RECORD_SCHEMAS.items():
        s = schemas[cls.__name__]
        s["properties"]["type"] = {"type": "string", "const": kind}
        if kind == "decision":
            del s["properties"]["refs"]
        else:
            s["required"] = sorted({*s["required"], "refs"})
        s["description"] = _RECORD_NOTE
    return {
        "oneOf": list(refs.values()),
        "discriminator": {"propertyName": "type", "mapping": {k: v["$ref"] for k, v in refs.items()}},
    }


def new_spec() -> tuple[APISpec, MarshmallowPlugin]:
    """An empty document and the marshmallow plugin the modules' ``paths`` take."""
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
    return spec, ma


def build_spec() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every JSON and C2SP route, as a dict. Pure."""
    spec, ma = new_spec()
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
    spec.components.response(UNAVAILABLE, problem("The database is unavailable, or the log moved; retry.", retry=True))
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
