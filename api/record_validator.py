"""Record schema version 1: :func:`validate_record`, the one check every submitted record passes.

``docs/schema/record-v1.schema.json`` is the source of truth: platforms code
against it, and this module compiles that very file once, at import, with
jsonschema-rs (a compiled Rust validator; ``bench/validate.py`` measures it
beside the marshmallow load it replaced); a valid record is told so by that
file less ``unevaluatedProperties``, two thirds of its cost, once its field
names are ones the schema surely evaluates (:func:`_accepts`), and every
error comes from the whole file. What JSON Schema cannot state,
:mod:`api.record_checks` checks in one small Python pass: control characters
in every string and field name, real calendar days, the five-minute future
bound, the order of times, and that 1.0 is not the integer 1.

Each error is ``{"path", "message"}``, the path slash-separated inside the
record (RFC 6901 escapes), at most one message per path. The validator's
error kinds become the messages of the tables below (:func:`_describe`),
which name the rule (``ordinary users: ...``, ``required when ...``), never
the schema's keyword. A rule (``if``/``then``/``else``) whose ``if`` reads a
field that is itself in error is not reported (:func:`_schema_errors`). Pure:
no Flask, no marshmallow, no I/O but reading the schema once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from api.record_checks import (
    COUNT_MESSAGE,
    SCHEMA_VERSION_MESSAGE,
    Times,
    clean,
    clean_json,
    pointer_join,
    refused_strings,
)
from ledger.records.entries import canonical, json_bytes
from ledger.records.vocab import COVERAGE_COUNT_MAX, ENUMS, LEGAL_CITATION_MAX, PATTERNS, RECORD_TYPES

__all__ = ["SCHEMA", "SCHEMA_PATH", "validate_parsed", "validate_record"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema" / "record-v1.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
# Formats stay annotations, as the draft 2020-12 default: the patterns fix
# every form, and the Python pass below checks the calendar day.
#: The published schema, compiled once (the benchmark times it alone too).
SCHEMA_VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA, validate_formats=False)


def _without_unevaluated(node: Any, at: tuple[object, ...] = ()) -> Any:
    """``node`` without its ``unevaluatedProperties: false``, which must be at
    the record and at ``corrected`` alone (where :func:`_accepts` stands in for it)."""
    if isinstance(node, dict):
        if "unevaluatedProperties" in node and (at not in _UNEVALUATED or node["unevaluatedProperties"] is not False):
            raise AssertionError(f"the record schema has unevaluatedProperties at {at}: _accepts must cover it")
        return {k: _without_unevaluated(v, (*at, k)) for k, v in node.items() if k != "unevaluatedProperties"}
    if isinstance(node, list):
        return [_without_unevaluated(v, (*at, i)) for i, v in enumerate(node)]
    return node


def _evaluated(node: dict[str, Any]) -> frozenset[str]:
    """The field names that ``properties`` keywords applied to an object by
    ``node`` whatever its content (through ``$ref`` and ``allOf``, never a
    branch) name: once the object is valid by every other keyword, each of
    its fields so named has been evaluated (JSON Schema 2020-12 section 11.3)."""
    names = frozenset(node.get("properties", ()))
    if "$ref" in node:
        names |= _evaluated(_resolve(node["$ref"]))
    for sub in node.get("allOf", ()):
        names |= _evaluated(sub)
    return names


_CORRECTED = ("$defs", "amendment_record", "properties", "corrected")
_UNEVALUATED = {(), _CORRECTED}
# The published schema less unevaluatedProperties, which costs its
# validator more than everything else (21 against 8 µs a bench record, as
# measured): that keyword makes it collect every annotation of every branch.
_FAST_VALIDATOR = jsonschema_rs.Draft202012Validator(_without_unevaluated(SCHEMA), validate_formats=False)


_DATE_TIME = (
    "must be an RFC 3339 UTC date-time YYYY-MM-DDTHH:MM:SS[.fraction]Z "
    "(upper-case T and Z; offsets such as +01:00 and naive times are not accepted)"
)
_POSTED = "must be an RFC 3339 UTC date-time (public classes) or a date YYYY-MM-DD (ordinary users)"
_NUMBERED = "digits and separators after at most one tag of 1 to 3 letters (dec-2026-000101, 2026-05:000000917)"
_VERSION_FORM = "numbers joined by . or - (7, v4.2, 2026-03)"
_CITATION_EXAMPLES = "such as DSA Art. 16, DE StGB § 130 or EU Regulation (EU) 2016/679 art. 17 (docs/records.md)"
_CITATION = (
    f"ordinary users: must be a short legal citation of at most {LEGAL_CITATION_MAX} characters {_CITATION_EXAMPLES}"
)
_PUBLIC_POSTED = "public classes: an RFC 3339 UTC date-time, not a date"
_UNKNOWN = "unknown field (record schema version 1)"

# What an ordinary user's patterned field must be (docs/records.md, "Ordinary
# users"), by the pattern's name under ``$defs``.
_ORDINARY_PATTERNS = {
    "pseudonym": "ordinary users: must be 64 lower-case hex digits, the platform's HMAC-SHA-256 of the account",
    "short_version": f"ordinary users: must be {_VERSION_FORM}",
    "https_path_url": "ordinary users: must have no query string or fragment",
    "legal_citation": _CITATION,
    "date": "ordinary users: a date YYYY-MM-DD only, not a date-time",
}
# Patterns that also bound the length: a string outside it is told its length.
_PATTERN_LENGTHS = {
    "platform": (1, 63),
    "record_id": (1, 128),
    "rule_id": (1, 128),
    "subject_key": (16, 128),
    "uuid": (1, 36),
}
_PATTERN_NAMES = {pattern: name for name, pattern in PATTERNS.items()}

# Vocabularies of at most 12 values are listed in full; longer ones are named.
_VOCABULARY_NAMES = {
    "category": "DSA statement category",
    "keyword": "DSA keyword",
    "jurisdiction": "jurisdiction",
    "language": "ISO 639-1 language",
}
_COUNTRY = (
    'must be an ISO 3166-1 alpha-2 country code, one of the 249 listed in docs/records.md ("GLOBAL" stands alone)'
)


def _enum_message(name: str, values: tuple[str, ...]) -> str:
    if name == "country":
        return _COUNTRY
    if name == "ordinary_follower_bucket":  # reached only through the ordinary users' branch
        return "ordinary users are top-coded: one of " + ", ".join(values)
    if name == "public_follower_bucket":  # reached only through the public classes' branch, by 10k+ alone
        return "10k+ is for ordinary users only; use 10k-100k, 100k-1M or >1M"
    if len(values) <= 12:
        return "must be one of: " + ", ".join(values)
    return f"must be one of the {len(values)} {_VOCABULARY_NAMES[name]} values listed in docs/records.md"


_ENUM_MESSAGES = {values: _enum_message(name, values) for name, values in ENUMS.items()}

_TYPE_MESSAGES = {
    "object": "must be a JSON object",
    "string": "must be a string",
    "boolean": "must be true or false",
    "integer": SCHEMA_VERSION_MESSAGE,  # at counts/..., _message says a count's
    "array": "must be a list",
}

_DEFS = "$defs"
_BODY = (_DEFS, "decision_body", "allOf")
# Messages of the conditional rules, by the keyword location of the failing
# ``required`` or ``false`` (``property`` names the field for ``required``).
_RULES: dict[tuple[object, ...], str] = {
    (_DEFS, "exemption", "then", "required"): "required when applied is true",
    (_DEFS, "exemption", "else", "properties", "type"): "forbidden when applied is false",
    (_DEFS, "exemption", "else", "properties", "policy"): "forbidden when applied is false",
    (_DEFS, "account", "then", "properties", "class_basis"): "forbidden for ordinary users and election workers",
    (_DEFS, "account", "then", "properties", "public_subject"): "forbidden for ordinary users and election workers",
    (_DEFS, "account", "else", "required"): "required for every class but ordinary_user and election_worker",
    (_DEFS, "target", "else", "properties", "public_subject"): (
        "forbidden unless the target is of a public class: nothing may name an ordinary user, an election worker "
        "or a group's members"
    ),
    (*_BODY, 0, "then", "properties", "legal_reference"): "forbidden when decision_ground is terms",
    (*_BODY, 0, "else", "required"): "required when decision_ground is illegal or both",
    (*_BODY, 1, "then", "required"): "required for temporary_suspension",
    (*_BODY, 2, "then", "properties", "action_ends_at"): (
        "forbidden for actions without an end: " + ", ".join(ENUMS["unlimited_action"])
    ),
    (*_BODY, 3, "then", "required"): "required when violation_found is true",
    (*_BODY, 3, "else", "properties", "exemption"): (
        "forbidden when violation_found is false: there is nothing to exempt"
    ),
    (*_BODY, 4, "then", "properties", "statement"): "forbidden for ordinary users, whose privacy outranks the reasons",
    (*_BODY, 4, "then", "properties", "content", "properties", "ref"): "forbidden for ordinary users",
    (*_BODY, 5, "then", "required"): "required when rule.abuse is set: say whom the content targeted",
    (_DEFS, "decision_record", "properties", "refs"): "forbidden for decisions, which refer to no earlier record",
    (_DEFS, "appeal_record", "required"): "required for appeals and amendments",
    (_DEFS, "amendment_record", "required"): "required for appeals and amendments",
    (_DEFS, "appeal_record", "allOf", 0, "then", "properties", "decided_at"): "forbidden while the outcome is pending",
    (_DEFS, "appeal_record", "allOf", 0, "then", "properties", "new_action"): "forbidden while the outcome is pending",
    (_DEFS, "appeal_record", "allOf", 0, "else", "required"): "required once the outcome is not pending",
    (_DEFS, "appeal_record", "allOf", 1, "then", "properties", "new_action"): "forbidden when the decision was upheld",
}
# ``required`` lists that hold envelope fields as well as the rule's own: the
# rule's message is for these fields only.
_RULE_FIELDS = {(_DEFS, "appeal_record", "required"): {"refs"}, (_DEFS, "amendment_record", "required"): {"refs"}}
_ANY_OF = {
    "follower_bucket": "must be one of: "
    + ", ".join(dict.fromkeys(ENUMS["public_follower_bucket"] + ENUMS["ordinary_follower_bucket"])),
    "posted_at": _POSTED,
}


def _properties(*names: str) -> frozenset[str]:
    return frozenset(k for name in names for k in SCHEMA["$defs"].get(name, SCHEMA).get("properties", {}))


# The fields each kind of object may hold, for ``unevaluatedProperties``: a
# validator collects no annotations from a failing ``then``, so when a rule
# fails it lists known fields as unevaluated too; those already have their error.
_KNOWN = {
    "decision": frozenset(SCHEMA["properties"]) | _properties("decision_body"),
    "appeal": frozenset(SCHEMA["properties"]) | _properties("appeal_record"),
    "amendment": frozenset(SCHEMA["properties"]) | _properties("amendment_record"),
    "coverage": frozenset(SCHEMA["properties"]) | _properties("coverage_record"),
    "corrected": _properties("decision_body"),
}


def _text_lengths(node: object, out: dict[str, int]) -> dict[str, int]:
    """The ``maxLength`` of every free-text property, by name, so that an empty one is told its range."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            is_text = isinstance(sub, dict) and sub.get("$ref") == "#/$defs/text" and "maxLength" in sub
            if is_text and out.setdefault(name, sub["maxLength"]) != sub["maxLength"]:
                raise AssertionError(f"two lengths for text field {name}")
        for sub in node.values():
            _text_lengths(sub, out)
    elif isinstance(node, list):
        for sub in node:
            _text_lengths(sub, out)
    return out


_TEXT_LENGTHS = _text_lengths(SCHEMA, {})

# At one path, the error that explains most wins: "forbidden" over anything,
# a field's overall form (anyOf) over one branch's detail, a type over a value.
_RANK = {"FalseSchema": 0, "AnyOf": 1, "Type": 2}
_RANK_OTHER, _RANK_PYTHON = 3, 4


def validate_record(record: object, now: datetime) -> list[dict[str, str]]:
    """Return the errors of ``record`` against schema version 1, sorted; ``[]`` if valid.

    Each error is ``{"path": "account/class", "message": ...}``, the path
    slash-separated inside the record (RFC 6901 escapes; ``""`` is the record
    itself), one per path (but a field name and its value may each hold a
    refused character). Never raises for a JSON value, however malformed.
    ``now`` is the aware time that record times may exceed by at most five minutes.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(record, dict):
        return [{"path": "", "message": "a record must be a JSON object"}]
    return _errors(record, now, clean(record))


def validate_parsed(record: object, now: datetime) -> tuple[list[dict[str, str]], bytes | None]:
    """:func:`validate_record` of a value ``parse_json`` returned (every field
    name a string), and the record's RFC 8785 bytes if it is valid.

    One walk of the record where there were three (the search for refused
    characters, the check that the fast canonical form applies, the form
    itself): the record's ``json_text``, as ``json_bytes`` writes it, is
    made first, searched for refused characters (``clean_json``), and, once
    the schema has accepted the record, is its canonical form (``json_text``
    says why; an accepted record holds no float, so ``json_bytes`` wrote
    exactly that text). A float elsewhere changes only its digits, which
    hold nothing ``clean_json`` looks for. Errors are exactly
    :func:`validate_record`'s: where the text cannot tell, ``clean`` walks
    the record as before.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(record, dict):
        return [{"path": "", "message": "a record must be a JSON object"}], None
    try:
        data: bytes | None = json_bytes(record)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer beyond 2**53 - 1, 255 levels deep
        data = None
    errors = _errors(record, now, (data is not None and clean_json(data)) or clean(record))
    if errors:
        return errors, None
    return errors, canonical(record) if data is None else data


def _errors(record: dict[str, Any], now: datetime, is_clean: bool) -> list[dict[str, str]]:
    """The errors of a record object, given whether :func:`clean` holds for it."""
    refused = [] if is_clean else refused_strings(record)
    if refused:  # alone: the other messages could quote what is refused here
        return sorted(refused, key=lambda err: (err["path"], err["message"]))
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in RECORD_TYPES:
        return [{"path": "type", "message": "must be one of: " + ", ".join(RECORD_TYPES)}]
    best: dict[str, tuple[int, str]] = {}
    # is_valid stops at the first error and builds none: the common case pays only it.
    for path, rank, message in () if _accepts(record, kind) else _schema_errors(record, kind):
        if path not in best or rank < best[path][0]:
            best[path] = (rank, message)
    times = Times(now.astimezone(UTC), formed=not best)
    for path, message in times.check(record, kind):
        best.setdefault(path, (_RANK_PYTHON, message))
    if not best:  # ordering is meaningless until every time has its form
        for path, message in times.order(kind):
            best.setdefault(path, (_RANK_PYTHON, message))
        if not best:
            return []
    return sorted(({"path": p, "message": m} for p, (_, m) in best.items()), key=lambda e: (e["path"], e["message"]))


def _accepts(record: dict[str, Any], kind: str) -> bool:
    """True only if the published schema accepts ``record`` (of type ``kind``):
    the schema less ``unevaluatedProperties`` accepts it and each of its
    fields, and of ``corrected``'s, is one that schema is sure to have
    evaluated. The record's own are the top level's and those of its type's
    definition, which the top level's rule for that type applies. False may
    be wrong (a field only a branch names): the caller then asks the
    published schema itself, whose errors it needs anyway."""
    if not record.keys() <= _ALLOWED[kind]:
        return False
    corrected = record.get("corrected") if kind == "amendment" else None
    if isinstance(corrected, dict) and not corrected.keys() <= _ALLOWED_CORRECTED:
        return False
    return _FAST_VALIDATOR.is_valid(record)


def _schema_errors(record: dict[str, Any], kind: str) -> list[tuple[str, int, str]]:
    """The ``(path, rank, message)`` of each error the compiled JSON Schema
    finds, but those of an ``if``/``then``/``else`` rule whose ``if`` reads a
    field that is itself in error: a rule keyed on a wrong or missing value
    says nothing true (``exemption/applied: "yes"`` is not "false")."""
    found = [(error, _controls(error), list(_describe(error, kind))) for error in SCHEMA_VALIDATOR.iter_errors(record)]
    if len(found) == 1:
        return found[0][2]
    # Until nothing changes, as a dropped error shields no rule; never down to
    # no error at all, so the schema's verdict stands.
    kept = found
    for _ in found:
        wrong = {path for _, _, described in kept for path, _, _ in described}
        now_kept = [f for f in found if not any(_in_error(field, wrong) for field in f[1])]
        if now_kept == kept or not now_kept:
            break
        kept = now_kept
    return [err for _, _, described in kept for err in described]


def _in_error(field: str, wrong: set[str]) -> bool:
    """Whether ``field`` or an object that holds it (but the record) has an error."""
    while field:
        if field in wrong:
            return True
        field = field.rpartition("/")[0]
    return False


def _controls(error: Any) -> tuple[str, ...]:
    """The fields (paths in the record) read by the ``if`` of the innermost
    ``then`` or ``else`` that reported ``error``; ``()`` for an unconditional error."""
    steps = list(error.evaluation_path)
    branch = max((i for i, step in enumerate(steps) if step in ("then", "else")), default=None)
    if branch is None:
        return ()
    depth = steps[branch:].count("properties")  # each descends one object level
    parts = list(error.instance_path)
    base = _path(parts[: len(parts) - depth])
    return tuple(_join_path(base, field) for field in _if_fields(tuple(steps[:branch])))


@functools.cache
def _if_fields(steps: tuple[object, ...]) -> tuple[str, ...]:
    """The fields the ``if`` beside the subschema at evaluation path ``steps`` reads."""
    node: Any = SCHEMA
    for step in steps:
        node = _resolve(node["$ref"]) if step == "$ref" else node[step]
    return tuple(_read_fields(node["if"], ""))


def _read_fields(node: Any, prefix: str) -> Iterator[str]:
    if "$ref" in node:
        yield from _read_fields(_resolve(node["$ref"]), prefix)
    for name in node.get("required", ()):
        yield pointer_join(prefix, name)
    for name, sub in node.get("properties", {}).items():
        yield from _read_fields(sub, pointer_join(prefix, name))


def _resolve(ref: str) -> Any:
    if not ref.startswith("#/$defs/"):
        raise AssertionError(f"the record schema refers outside itself: {ref}")
    return SCHEMA["$defs"][ref.removeprefix("#/$defs/")]


def _allowed(kind: str) -> frozenset[str]:
    """The fields of a record of type ``kind`` that the published schema is
    sure to evaluate once it is otherwise valid: the top level's, and those
    of the ``then`` of the top level's rule ``if type is kind``, which holds."""
    rule = {"properties": {"type": {"const": kind}}, "required": ["type"]}
    names = frozenset(SCHEMA["properties"])
    for sub in SCHEMA["allOf"]:
        if sub.get("if") == rule:
            names |= _evaluated(sub["then"])
    return names


_ALLOWED = {kind: _allowed(kind) for kind in RECORD_TYPES}
_ALLOWED_CORRECTED = _evaluated(SCHEMA["$defs"]["amendment_record"]["properties"]["corrected"])


def _join_path(base: str, path: str) -> str:
    return f"{base}/{path}" if base else path


def _describe(error: Any, kind: str) -> Iterator[tuple[str, int, str]]:
    """The ``(path, rank, message)`` of one jsonschema-rs error: the table of messages."""
    what = type(error.kind).__name__
    where = _path(error.instance_path)
    at = tuple(error.schema_path)
    rank = _RANK.get(what, _RANK_OTHER)
    if what in ("AdditionalProperties", "UnevaluatedProperties"):
        known = _KNOWN["corrected" if where == "corrected" else kind] if what == "UnevaluatedProperties" else ()
        for name in error.kind.unexpected:
            if name not in known:
                yield pointer_join(where, name), rank, _UNKNOWN
    elif what == "Required":
        name = error.kind.property
        rule = _RULES.get(at) if name in _RULE_FIELDS.get(at, {name}) else None
        yield pointer_join(where, name), rank, rule or "required"
    elif what == "AnyOf":
        if at == (_DEFS, "territorial_scope", "anyOf"):
            yield from _territorial_scope(error, where, kind)
        else:
            yield (
                where,
                rank,
                _ANY_OF.get(where.rsplit("/", 1)[-1], "matches none of the forms record schema version 1 allows"),
            )
    else:
        yield where, rank, _message(error, what, at, where, kind)


def _message(error: Any, what: str, at: tuple[object, ...], where: str, kind: str) -> str:
    value = error.instance
    if at in _RULES:
        return _RULES[at]
    if what == "FalseSchema":
        return "forbidden"
    if value is None and what in ("Type", "Enum", "Constant"):
        return "must not be null"  # JSON Schema has no "required, not null": say which it is
    if what == "Type":
        if at == (_DEFS, "date_time", "type"):  # a time's type error names the form it must take
            return _DATE_TIME
        if at == (_DEFS, "coverage_count", "type"):
            return COUNT_MESSAGE
        return _TYPE_MESSAGES[error.kind.types[0]]
    if what == "Constant":
        return SCHEMA_VERSION_MESSAGE
    if what == "Enum":
        return _ENUM_MESSAGES[tuple(error.kind.options)]
    if what == "Pattern":
        return _pattern_message(error.kind.pattern, value, where, kind)
    if what == "MaxLength":
        if at[:2] == (_DEFS, "legal_citation"):
            return _CITATION
        return f"must be 1 to {error.kind.limit} characters long"
    if what == "MinLength":
        longest = _TEXT_LENGTHS.get(where.rsplit("/", 1)[-1])
        return f"must be 1 to {longest} characters long" if longest else "must not be empty"
    if what in ("MinItems", "MinProperties"):
        return "must not be empty"
    if what in ("Minimum", "Maximum"):
        return f"must be a whole number from 0 to {COVERAGE_COUNT_MAX}"
    if what == "UniqueItems":
        return "must not repeat an item"
    # No keyword of the schema reports any other kind; a jsonschema-rs
    # limit (BacktrackLimitExceeded) must still refuse, not fail the request.
    return f"does not satisfy record schema version 1 ({what})"


def _pattern_message(pattern: str, value: str, where: str, kind: str) -> str:
    name = _PATTERN_NAMES[pattern]
    if name == "numbered_record_id":
        whose = "appeals, which may concern ordinary users" if kind == "appeal" else "ordinary users"
        return f"{whose}: must be {_NUMBERED}"
    if name in _ORDINARY_PATTERNS:
        return _ORDINARY_PATTERNS[name]
    if name == "date_time":
        # At content/posted_at only the public classes' branch reports the
        # pattern alone; a value of neither form fails the anyOf first.
        return _PUBLIC_POSTED if where.endswith("content/posted_at") else _DATE_TIME
    shortest, longest = _PATTERN_LENGTHS.get(name, (0, len(value)))
    if not shortest <= len(value) <= longest:
        return f"must be {shortest} to {longest} characters long"
    return f"must match {pattern}"


def _territorial_scope(error: Any, where: str, kind: str) -> Iterator[tuple[str, int, str]]:
    """``["GLOBAL"]``, or a list of countries: a list that holds GLOBAL among
    others is told so; any other value gets the country-list branch's errors."""
    value = error.instance
    if isinstance(value, list) and "GLOBAL" in value:
        yield where, _RANK["AnyOf"], "GLOBAL must stand alone"
        return
    _, countries = error.kind.context
    for sub in countries:
        yield from _describe(sub, kind)


def _path(parts: object) -> str:
    path = ""
    for part in parts:  # type: ignore[attr-defined]
        path = pointer_join(path, part)
    return path
