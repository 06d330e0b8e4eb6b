"""The public feed: ``GET /api/v1/records`` and ``GET /api/v1/subjects/<key>``.

Filters are validated against the record vocabularies; pages are newest
first and the cursor pins the tree size of the first page, so paging
through a growing log neither skips nor repeats a record. Every answer
names the tree size it reflects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from api.describe import (
    Doc,
    Paths,
    choice,
    integer,
    json_answer,
    log_time,
    op,
    path_param,
    problem,
    query_params,
    string,
)
from api.params import StrictInt, parse_query
from api.state import get_log
from ledger import query
from ledger.errors import InvalidInput
from ledger.lru import LRU
from ledger.records import times
from ledger.records.entries import format_time
from ledger.records.vocab import (
    ABUSE_KINDS,
    ACCOUNT_CLASSES,
    ACTIONS,
    APPEAL_OUTCOMES,
    AUTOMATED_DECISIONS,
    CATEGORIES,
    COUNTRY_CODES,
    DETECTION_SOURCES,
    EXEMPTION_TYPES,
    INTERIM_STATES,
    PATTERNS,
    RECORD_TYPES,
    REPORTER_CLASSES,
    REVIEW_PATHS,
    SEVERITIES,
    TARGET_CLASSES,
)
from ledger.submit import permalink

bp = Blueprint("feed", __name__, url_prefix="/api/v1")


class StrictBoolParam(fields.Field[bool]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value not in ("true", "false"):
            raise ValidationError("must be true or false")
        return bool(value == "true")


class TimeParam(fields.Field[int]):
    """An RFC 3339 UTC time or a date, as milliseconds since the epoch."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not (times.DATE.fullmatch(value) or times.DATE_TIME.fullmatch(value)):
            raise ValidationError("must be a date YYYY-MM-DD or an RFC 3339 UTC time ending in Z")
        try:
            return times.day_or_time_ms(value)
        except InvalidInput:
            raise ValidationError("not a valid date") from None


def _choice(values: tuple[str, ...]) -> fields.String:
    return fields.String(validate=validate.OneOf(values))


def _pattern(name: str) -> fields.String:
    return fields.String(validate=validate.Regexp(PATTERNS[name], error="must match the pattern {regex}"))


class FeedQuery(Schema):
    class Meta:
        unknown = RAISE

    platform = _pattern("platform")
    type = _choice(RECORD_TYPES)
    account_class = _choice(ACCOUNT_CLASSES)
    political = StrictBoolParam(
        metadata={
            "description": "true: any political class (head of state, legislator, candidate, "
            "government official, party account)"
        }
    )
    rule_id = _pattern("rule_id")
    rule_version = fields.String(
        validate=[
            validate.Length(1, 64),
            validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="must not contain control characters"),
        ]
    )
    category = _choice(CATEGORIES)
    severity = _choice(SEVERITIES)
    action = _choice(ACTIONS)
    violation_found = StrictBoolParam()
    exemption_applied = StrictBoolParam()
    exemption_type = _choice(EXEMPTION_TYPES)
    review_path = _choice(REVIEW_PATHS)
    interim_state = _choice(INTERIM_STATES)
    detection_source = _choice(DETECTION_SOURCES)
    automated_decision = _choice(AUTOMATED_DECISIONS)
    subject_key = _pattern("subject_key")
    target_class = fields.String(
        validate=validate.OneOf(TARGET_CLASSES), metadata={"description": "whom the content was aimed at"}
    )
    reporter_class = fields.String(
        validate=validate.OneOf(REPORTER_CLASSES), metadata={"description": "who reported the content"}
    )
    abuse_kind = fields.String(
        validate=validate.OneOf(ABUSE_KINDS), metadata={"description": "the rule's abuse kind (rule.abuse)"}
    )
    qid = fields.String(
        validate=[
            validate.Length(2, 20),
            validate.Regexp(PATTERNS["wikidata_qid"], error="must match the pattern {regex}"),
        ],
        metadata={
            "description": "A person or body across platforms: the Wikidata item of the account's public subject, "
            "where the platform gave one (never a protection record's target's)"
        },
    )
    territory = _choice((*COUNTRY_CODES, "GLOBAL"))
    decided_from = TimeParam()
    decided_to = TimeParam()
    logged_from = TimeParam()
    logged_to = TimeParam()
    q = fields.String(
        validate=[
            validate.Length(query.MIN_SEARCH, 200),
            validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="must not contain control characters"),
        ],
        metadata={"description": "text in public subjects' names, offices and statements"},
    )
    current = StrictBoolParam(metadata={"description": "true: leave out records a later amendment supersedes"})
    direct = StrictBoolParam(
        metadata={
            "description": "By default the filters on a decision's fields (account, class, rule, ...) also match "
            "the appeals and amendments of a matching decision; true: match each record's own fields only"
        }
    )
    sort = fields.String(
        validate=validate.OneOf(query.SORTS),
        metadata={
            "description": "logged (the default): newest logged first; decided: newest decision first "
            "(records without a decision time last)"
        },
    )
    limit = StrictInt(validate=validate.Range(1, query.MAX_PAGE))
    cursor = fields.String(validate=validate.Length(1, 100))


# One instance each, made once: building a schema costs more than loading
# with it, and loading keeps no state on the instance, so threads can share it.
_FEED_QUERY = FeedQuery()
_SUBJECT_QUERY = FeedQuery(partial=True)


def _parse_cursor(cursor: str, sort: str) -> tuple[int, int, int | None]:
    parsed = query.decode_sorted_cursor(cursor)
    if parsed is None or (parsed[2] is None) != (sort == "logged"):
        raise InvalidInput(
            "invalid cursor: pass back the next_cursor of a previous page",
            [{"path": "cursor", "message": "not a cursor this server issued"}],
        )
    return parsed


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "leaf_index": row["leaf_index"],
        "platform": row["platform"],
        "record_id": row["record_id"],
        "type": row["type"],
        "refs": row["ref_record_id"],
        "logged_at": format_time(row["logged_at_ms"]),
        "decided_at": None if row["decided_at_ms"] is None else format_time(row["decided_at_ms"]),
        "account_class": row["account_class"],
        "subject_key": row["subject_key"],
        "display_name": row["display_name"],
        "qid": row["qid"],
        "rule": None if row["rule_id"] is None else {"id": row["rule_id"], "version": row["rule_version"]},
        "category": row["category"],
        "severity": row["severity"],
        "violation_found": row["violation_found"],
        "action": row["action"],
        "exemption": None
        if row["exemption_applied"] is None
        else {"applied": row["exemption_applied"], "type": row["exemption_type"]},
        "review_path": row["review_path"],
        "appeal_outcome": row["appeal_outcome"],
        "superseded": bool(row["superseded"]),
        "permalink": permalink(row["platform"], row["record_id"]),
    }


def feed_of(args: dict[str, Any], extra: dict[str, str] | None = None) -> query.Feed:
    """The :class:`ledger.query.Feed` of a query parsed by :class:`FeedQuery` (the feed and its downloads)."""
    equal = {k: args[k] for k in query.EQUALITY if k in args}
    equal.update(extra or {})
    return query.Feed(
        equal=equal,
        flags={k: args[k] for k in query.BOOLEAN if k in args},
        territory=args.get("territory"),
        decided_from_ms=args.get("decided_from"),
        decided_to_ms=args.get("decided_to"),
        logged_from_ms=args.get("logged_from"),
        logged_to_ms=args.get("logged_to"),
        q=args.get("q"),
        current_only=args.get("current", False),
        direct=args.get("direct", False),
        sort=args.get("sort", "logged"),
        limit=args.get("limit", 50),
    )


#: The fields of an index row that its summary (:func:`_summary`) shows:
#: the key its JSON text is kept under (:func:`_summary_json`).
SHOWN = (
    "leaf_index",
    "platform",
    "record_id",
    "type",
    "ref_record_id",
    "logged_at_ms",
    "decided_at_ms",
    "account_class",
    "subject_key",
    "display_name",
    "qid",
    "rule_id",
    "rule_version",
    "category",
    "severity",
    "violation_found",
    "action",
    "exemption_applied",
    "exemption_type",
    "review_path",
    "appeal_outcome",
    "superseded",
)
_SHOWN = itemgetter(*SHOWN)
#: The columns of ``record_index`` a page reads (``ledger.query.feed``):
#: those its summaries show; the cursor's leaf index and sort key come with
#: every page.
COLUMNS = tuple(name for name in SHOWN if name != "superseded")


def init_app(size: int) -> LRU[str]:
    """The summaries a worker keeps as JSON text (``FEED_ROW_CACHE``; 0 keeps none)."""
    return LRU(size)


def _summary_json(row: dict[str, Any], kept: LRU[str]) -> str:
    """:func:`_summary` of ``row`` as the JSON text the answer holds, kept
    per row: building and encoding each row's summary was about a quarter
    of a page's CPU (issue 14). The key is every field the summary shows,
    ``superseded`` (which the page's tree decides) included, so a kept text
    is a pure function of it: never another record's, never stale."""
    key = _SHOWN(row)
    text = kept.get(key)
    if text is None:
        text = current_app.json.dumps(_summary(row), separators=(",", ":"))
        kept.put(key, text)
    return text


@dataclass(frozen=True)
class FeedAnswer:
    """A page of the feed: its tree size, its records' summaries as JSON texts, the next page's cursor."""

    tree_size: int
    records: list[str]
    next_cursor: str | None


def run_feed(args: dict[str, Any], extra: dict[str, str] | None = None) -> FeedAnswer:
    """Answer a feed query already parsed by :class:`FeedQuery`."""
    feed = feed_of(args, extra)
    log = get_log()
    with log.read() as s:
        size = log.latest(s).size
        before = key = None
        if "cursor" in args:
            size_c, before, key = _parse_cursor(args["cursor"], feed.sort)
            if size_c > size:
                raise InvalidInput(
                    "invalid cursor: it is from a larger tree than this log",
                    [{"path": "cursor", "message": "not a cursor this server issued"}],
                )
            size = size_c
        rows = query.feed(s, feed, size, before, key, COLUMNS)
    last = rows[-1] if len(rows) == feed.limit else None
    kept: LRU[str] = current_app.extensions["feed_summaries"]
    return FeedAnswer(
        size,
        [_summary_json(r, kept) for r in rows],
        None
        if last is None
        else query.encode_cursor(size, last["leaf_index"], last["sort_key"] if feed.sort == "decided" else None),
    )


def _respond(answer: FeedAnswer, **more: str) -> Response:
    """``jsonify`` of the page (``tree_size``, ``records``, ``next_cursor``,
    then ``more``), byte for byte, its records spliced in as kept. An app
    that indents its JSON (debug) or sorts its keys gets them re-read and
    given to ``jsonify``."""
    provider = current_app.json
    compact = provider.compact if provider.compact is not None else not current_app.debug  # type: ignore[attr-defined]
    if not compact or provider.sort_keys:  # type: ignore[attr-defined]
        records = [json.loads(text) for text in answer.records]
        resp = jsonify(tree_size=answer.tree_size, records=records, next_cursor=answer.next_cursor, **more)
    else:
        fields = [f'"tree_size":{answer.tree_size:d}', f'"records":[{",".join(answer.records)}]']
        fields += [
            f"{provider.dumps(k)}:{provider.dumps(v)}" for k, v in {"next_cursor": answer.next_cursor, **more}.items()
        ]
        text = "{" + ",".join(fields) + "}\n"
        resp = current_app.response_class(text, mimetype=provider.mimetype)  # type: ignore[attr-defined]
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/records")
def records_feed() -> Response:
    return _respond(run_feed(parse_query(_FEED_QUERY, request.args)))


@bp.get("/subjects/<subject_key>")
def subject(subject_key: str) -> Response:
    if not re.fullmatch(PATTERNS["subject_key"], subject_key):
        raise InvalidInput(
            "invalid subject key", [{"path": "subject_key", "message": f"must match {PATTERNS['subject_key']}"}]
        )
    args = parse_query(_SUBJECT_QUERY, request.args)
    return _respond(run_feed(args, {"subject_key": subject_key}), subject_key=subject_key)


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


class FeedRule(Doc):
    id = string("The platform's rule ID.")
    version = string("The rule's version.")


class FeedExemption(Doc):
    applied = fields.Boolean(required=True)
    type = choice(EXEMPTION_TYPES, "The exemption type, or null.", allow_none=True)


def _null_choice(values: tuple[str, ...], description: str) -> fields.String:
    return choice(values, description + " Null when the record type has none.", allow_none=True)


class FeedRecord(Doc):
    leaf_index = integer("The record's entry index.")
    platform = string("The record's platform.", pattern=PATTERNS["platform"])
    record_id = string("The record's record_id.", pattern=PATTERNS["record_id"])
    type = choice(RECORD_TYPES, "The record type.")
    refs = string("The record_id an appeal or amendment refers to, or null.", allow_none=True)
    logged_at = log_time("When the log appended it.")
    decided_at = log_time("When it was decided, or null.", allow_none=True)
    account_class = _null_choice(ACCOUNT_CLASSES, "The account class.")
    subject_key = string("The account's pseudonym, or null.", allow_none=True)
    display_name = string("A public subject's name, or null.", allow_none=True)
    qid = string(
        "The Wikidata item of the account's public subject, or null.",
        allow_none=True,
        pattern=PATTERNS["wikidata_qid"],
    )
    rule = fields.Nested(FeedRule, required=True, allow_none=True)
    category = _null_choice(CATEGORIES, "The DSA statement category.")
    severity = _null_choice(SEVERITIES, "The severity.")
    violation_found = fields.Boolean(required=True, allow_none=True)
    action = _null_choice(ACTIONS, "The action.")
    exemption = fields.Nested(FeedExemption, required=True, allow_none=True)
    review_path = _null_choice(REVIEW_PATHS, "The review path.")
    appeal_outcome = _null_choice(APPEAL_OUTCOMES, "An appeal's outcome.")
    superseded = fields.Boolean(required=True, metadata={"description": "A later amendment supersedes it."})
    permalink = string("Where the full record and its proof can be read.")


class FeedPage(Doc):
    tree_size = integer("The tree size the page reflects; the cursor keeps it across pages.")
    records = fields.List(fields.Nested(FeedRecord), required=True, metadata={"description": "Newest first."})
    next_cursor = string("Pass as cursor for the next page; null on the last.", allow_none=True)


class SubjectPage(FeedPage):
    subject_key = string("The subject asked for.", pattern=PATTERNS["subject_key"])


def paths(ma: MarshmallowPlugin) -> Paths:
    """The feed (the GET of /api/v1/records; its POST is submissions') and a subject's feed."""
    feed = query_params(ma, FeedQuery(), {"limit": "Records per page.", "cursor": "The next_cursor of a page."})
    return {
        "/api/v1/records": {
            "get": op(
                "Feed",
                "listRecords",
                "The public feed of records, newest first",
                "Every filter narrows the feed; paging with cursor neither skips nor repeats a record while the "
                "log grows.",
                {
                    "200": json_answer(FeedPage, "One page."),
                    "400": problem("Malformed, repeated or unknown parameters, or a foreign cursor."),
                },
                feed,
            ),
        },
        "/api/v1/subjects/{subject_key}": {
            "get": op(
                "Feed",
                "listSubjectRecords",
                "The feed of one subject's records",
                "The feed, filtered to one account pseudonym; takes the feed's filters.",
                {
                    "200": json_answer(SubjectPage, "One page."),
                    "400": problem("A malformed subject key or parameters."),
                },
                [
                    path_param(
                        "subject_key",
                        {"type": "string", "pattern": PATTERNS["subject_key"]},
                        "The account's pseudonym.",
                    ),
                    *feed,
                ],
            )
        },
    }
