"""``GET /api/v1/coverage``: what platforms declared against what the log holds.

Each coverage statement in force (docs/records.md, "Coverage fields") is
compared with the decisions the log holds below a checkpoint, per
(platform, month, rule, account class) and per (action, exempted):
complete, incomplete or contradicted. The computation is the evenness
document's (``ledger.evenness.coverage``), so the same figures appear in
method version 2 of ``GET /api/v1/stats/evenness``; the answer names the
checkpoint it is computed at.
"""

from __future__ import annotations

from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify, request
from marshmallow import RAISE, Schema, fields, validate

from api.describe import Paths, json_answer, op, problem, query_params
from api.params import StrictInt, parse_query
from api.state import get_log
from ledger.evenness.coverage import STATUSES, CoverageFilters
from ledger.evenness_store import coverage_at
from ledger.records.vocab import ACCOUNT_CLASSES, PATTERNS

bp = Blueprint("coverage", __name__, url_prefix="/api/v1")


def _choice(values: tuple[str, ...]) -> fields.String:
    return fields.String(validate=validate.OneOf(values))


def _pattern(name: str) -> fields.String:
    return fields.String(validate=validate.Regexp(PATTERNS[name], error="must match the pattern {regex}"))


def _month(description: str) -> fields.String:
    return fields.String(
        validate=validate.Regexp(PATTERNS["month"], error="must be a month YYYY-MM"),
        metadata={"description": description},
    )


class CoverageQuery(Schema):
    """The feed's filters that apply to statements, and the month range and status."""

    class Meta:
        unknown = RAISE

    tree_size = StrictInt(metadata={"description": "a tree size the log signed a checkpoint for (default: latest)"})
    platform = _pattern("platform")
    rule_id = _pattern("rule_id")
    account_class = _choice(ACCOUNT_CLASSES)
    period_from = _month("the first month, YYYY-MM (inclusive)")
    period_to = _month("the last month, YYYY-MM (inclusive)")
    status = _choice(STATUSES)


_QUERY = CoverageQuery()


@bp.get("/coverage")
def coverage() -> Response:
    args = parse_query(_QUERY, request.args)
    filters = CoverageFilters(
        platform=args.get("platform"),
        rule_id=args.get("rule_id"),
        account_class=args.get("account_class"),
        period_from=args.get("period_from"),
        period_to=args.get("period_to"),
        status=args.get("status"),
    )
    log = get_log()
    with log.read() as s:
        cp = log.checkpoint_for(s, args.get("tree_size"))
        answer = coverage_at(s, cp, filters)
    return jsonify(answer)


_CELL = {
    "type": "object",
    "required": ["action", "exempted", "declared", "logged", "status"],
    "properties": {
        "action": {"type": "string"},
        "exempted": {"type": "boolean"},
        "declared": {"type": "integer", "minimum": 0},
        "logged": {"type": "integer", "minimum": 0},
        "status": {"enum": list(STATUSES)},
    },
}
_COMPARISON = {
    "type": "object",
    "required": [
        "platform",
        "period",
        "rule_id",
        "account_class",
        "statement",
        "status",
        "declared",
        "logged",
        "missing",
        "cells",
    ],
    "properties": {
        "platform": {"type": "string"},
        "period": {"type": "string", "pattern": PATTERNS["month"]},
        "rule_id": {"type": "string"},
        "account_class": {"enum": list(ACCOUNT_CLASSES)},
        "statement": {
            "type": "object",
            "description": "The statement in force: its record id, log position and inclusion criterion.",
        },
        "status": {"enum": list(STATUSES)},
        "declared": {"type": "integer", "minimum": 0},
        "logged": {"type": "integer", "minimum": 0},
        "missing": {"type": "integer", "minimum": 0, "description": "Declared decisions the log lacks."},
        "cells": {"type": "array", "items": _CELL},
    },
}
_REF = {
    "type": "object",
    "required": ["platform", "record_id", "leaf_index", "period"],
    "properties": {
        "platform": {"type": "string"},
        "record_id": {"type": "string"},
        "leaf_index": {"type": "integer", "minimum": 0},
        "period": {"type": "string"},
    },
}
ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["checkpoint", "comparisons", "superseded", "conflicting"],
    "properties": {
        "checkpoint": {"type": "object", "description": "The signed checkpoint the figures are computed at."},
        "comparisons": {"type": "array", "items": _COMPARISON},
        "superseded": {"type": "array", "items": _REF, "description": "Statements a later statement superseded."},
        "conflicting": {
            "type": "array",
            "items": _REF,
            "description": "Statements for a month and rule that already had one in force, without naming it: "
            "not a correction, and not compared.",
        },
    },
}


def paths(ma: MarshmallowPlugin) -> Paths:
    """The coverage comparisons."""
    return {
        "/api/v1/coverage": {
            "get": op(
                "Statistics",
                "getCoverage",
                "Coverage: declared decisions against logged ones",
                "For each coverage statement in force (a platform's signed count of its decisions under one rule "
                "in one month, per account class, action and exemption applied), the log's count of the same "
                "decisions as of a checkpoint: complete, incomplete (fewer logged) or contradicted (more logged "
                "than declared). A platform can under-declare; a statement makes its count a signed claim. "
                "docs/records.md, Coverage fields.",
                {
                    "200": json_answer(ANSWER, "The comparisons, with the checkpoint they are computed at."),
                    "400": problem("Malformed, repeated or unknown parameters."),
                    "404": problem("No checkpoint of that tree size."),
                },
                query_params(ma, CoverageQuery(), {}),
            )
        }
    }
