"""Small helpers to describe a route in OpenAPI 3.1, beside its view.

Each api module that serves routes ends with ``paths(ma)``: the OpenAPI path
items of exactly its routes, built with these helpers and with the
marshmallow schemas that validate its input (so what is documented is what
is checked). The answers the views build as dicts are described by
response schemas (subclasses of ``Doc``) written next to the view that
builds them: they document and never validate, and
``tests/api/test_openapi.py`` holds them to the real answers field by field.
``api/openapi.py`` only assembles the modules' ``paths``.
"""

from __future__ import annotations

import base64
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import EXCLUDE, Schema, fields, validate

from ledger.storage import StoredCheckpoint

#: Path -> method -> operation, as ``APISpec.path`` takes them.
Paths = dict[str, dict[str, dict[str, Any]]]

# A SHA-256 hash or Ed25519 public key (32 bytes) in standard padded base64:
# 43 digits and "=", the last digit carrying 2 zero bits.
B64_32 = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
B64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# ledger.records.entries.format_time: RFC 3339 UTC with milliseconds.
LOG_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"

#: The name of the shared 503 response (``components/responses``): every
#: operation that reads the log may answer it.
UNAVAILABLE = "Unavailable"


# Response schemas. They document answers, which may gain fields, so unknown
# fields are not forbidden (EXCLUDE leaves additionalProperties out).


class Doc(Schema):
    """The base of every response schema."""

    class Meta:
        unknown = EXCLUDE


def string(description: str, *, pattern: str | None = None, fmt: str | None = None, **kw: Any) -> fields.String:
    meta: dict[str, Any] = {"description": description}
    if pattern:
        meta["pattern"] = pattern
    if fmt:
        meta["format"] = fmt
    return fields.String(required=kw.pop("required", True), metadata=meta, **kw)


def integer(description: str, **kw: Any) -> fields.Integer:
    """A non-negative integer."""
    return fields.Integer(required=kw.pop("required", True), metadata={"description": description, "minimum": 0}, **kw)


def hash_b64(description: str) -> fields.String:
    return string(description, pattern=B64_32)


def log_time(description: str, **kw: Any) -> fields.String:
    """A time the log wrote (``format_time``): UTC, three fraction digits."""
    return string(description, pattern=LOG_TIME, fmt="date-time", **kw)


def proof_path(description: str) -> fields.List[Any]:
    return fields.List(
        fields.String(metadata={"pattern": B64_32}), required=True, metadata={"description": description}
    )


def choice(values: tuple[str, ...], description: str, **kw: Any) -> fields.String:
    return fields.String(
        required=kw.pop("required", True), validate=validate.OneOf(values), metadata={"description": description}, **kw
    )


class Checkpoint(Doc):
    """Built by ``checkpoint_answer``, below: one builder for every route that returns it."""

    tree_size = integer("The number of entries the checkpoint commits to.")
    root_hash = hash_b64("The RFC 9162 root hash of the tree of that size, padded base64.")
    signed_note = string(
        "The checkpoint as a signed note (c2sp.org/tlog-checkpoint), as /checkpoint serves it. "
        "Verify its signature with the log's verifier key before trusting tree_size and root_hash."
    )


def checkpoint_answer(cp: StoredCheckpoint) -> dict[str, Any]:
    """The ``Checkpoint`` answer of ``cp``."""
    return {"tree_size": cp.size, "root_hash": base64.b64encode(cp.root).decode(), "signed_note": cp.note.decode()}


class ExistingRecord(Doc):
    leaf_index = integer("The entry of the record already logged.")
    permalink = string("Where it can be read.")


class ProblemError(Doc):
    index = integer("The item of the request (submissions only).", required=False)
    path = string("Slash-separated path of the offending value in the item or query; empty for the whole item.")
    message = string("What is wrong.")
    existing = fields.Nested(ExistingRecord, metadata={"description": "409 only: the record already logged."})


class Problem(Doc):
    type = string("The problem type.", fmt="uri")
    title = string("A short summary of the problem type.")
    status = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    detail = string("What went wrong with this request.")
    errors = fields.List(fields.Nested(ProblemError), metadata={"description": "The individual problems, if any."})


# Operations.


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def problem(description: str, retry: bool = False) -> dict[str, Any]:
    """An RFC 9457 problem+json answer (api/errors.py makes every one)."""
    out: dict[str, Any] = {"description": description, "content": {"application/problem+json": {"schema": Problem}}}
    if retry:
        out["headers"] = {"Retry-After": "Retry-After"}
    return out


def query_params(ma: MarshmallowPlugin, schema: Schema, descriptions: dict[str, str]) -> list[dict[str, Any]]:
    """Query parameters from ``schema``, the one that validates them. Its
    ``load_default=None`` fields mean "absent", not JSON null, so the null
    type apispec infers is dropped."""
    if ma.converter is None:
        raise AssertionError("the marshmallow plugin is not initialised")
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


def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


#: The ``<int:index>`` of an entry.
INDEX = path_param("index", {"type": "integer", "minimum": 0}, "The entry's index in the log.")


def op(
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
    out: dict[str, Any] = {"tags": [tag], "operationId": operation_id, "summary": summary, "description": description}
    if parameters:
        out["parameters"] = parameters
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    out["responses"] = {**responses, "503": UNAVAILABLE} if reads_log else responses
    return out
