"""The fast path and the contract agree: a differential test of ``validate_record``.

The reference is the published schema, docs/schema/record-v1.schema.json,
under python-jsonschema (another implementation than the compiled jsonschema-rs
that ``validate_record`` runs), plus the checks the schema's description and
docs/records.md leave to the ledger, written here afresh from their
statement. Hypothesis mutates valid records (docs/examples, the demo's) the
ways a platform gets them wrong, and each must be accepted or refused by both,
with the same set of error paths. The reference reports its errors as
``validate_record`` documents:

- a record holding a refused character (a control character but tab and line
  feed, or a lone surrogate) gets those errors alone;
- a record whose ``type`` is none of the three gets one error, at ``type``;
- an unknown field is reported at its own path; a failed ``anyOf`` at its
  value, but ``territorial_scope``'s list of countries reports its items;
- a rule (``if``/``then``/``else``) whose ``if`` reads a field that has an
  error of its own, or sits in an object that has one, is not reported.

LEDGER_DIFF_EXAMPLES sets the number of records per property (default 300).
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import record_validator
from api.record_checks import clean, clean_json
from api.record_schema import load_errors
from api.record_validator import validate_parsed, validate_record
from ledger.records import vocab
from ledger.records.entries import canonical, json_text, parse_json
from tests.api.test_record_schema import EXAMPLES, NOW, ORD_BODY, SCHEMA, VALIDATOR

EXAMPLES_N = int(os.environ.get("LEDGER_DIFF_EXAMPLES", "300"))
DEMO_NOW = datetime(2026, 12, 1, tzinfo=UTC)
CONTROL = "\x00\x01\x08\x0b\x0d\x1b\x1f\x7f\x85\x9b\ud800\udfff"
LIMITS = (16, 20, 36, 63, 64, 80, 100, 128, 200, 500, 2048, 5000)
TIMES = ("submitted_at", "flagged_at", "decided_at", "applied_at", "action_ends_at", "filed_at", "posted_at")


@cache
def seeds() -> list[tuple[dict[str, Any], datetime]]:
    """Valid records to mutate, each with the ``now`` it is valid at."""
    from demo.generate import generate

    out = [(record, NOW) for record in EXAMPLES.values()]
    amend = copy.deepcopy(EXAMPLES["amendment-late-classification"])
    amend["corrected"], amend["record_id"] = copy.deepcopy(ORD_BODY), "amd-2026-000008"
    out.append((amend, NOW))
    pending = {k: v for k, v in EXAMPLES["appeal-reversed"].items() if k not in ("decided_at", "new_action")}
    out.append(({**pending, "outcome": "pending"}, NOW))
    items = generate("diff", 100, DEMO_NOW).items
    out += [(item.record, DEMO_NOW) for item in items[::4]]
    for record, now in out:
        assert validate_record(record, now) == [], record
    return out


# --- the reference ------------------------------------------------------------


def _walk(node: Any, steps: list[Any]) -> list[Any]:
    """The subschemas at python-jsonschema's ``schema_path`` ``steps``, which omits ``$ref``."""
    found = [] if steps else [node]
    if isinstance(node, dict) and "$ref" in node:
        found += _walk(SCHEMA["$defs"][node["$ref"].removeprefix("#/$defs/")], steps)
    if not steps:
        return found
    step, rest = steps[0], steps[1:]
    here = (isinstance(node, dict) and step in node) or (isinstance(node, list) and isinstance(step, int))
    if here:
        found += _walk(node[step], rest)
    return found


def _fields_read(node: Any, prefix: tuple[Any, ...]) -> set[tuple[Any, ...]]:
    if "$ref" in node:
        return _fields_read(SCHEMA["$defs"][node["$ref"].removeprefix("#/$defs/")], prefix)
    read = {(*prefix, name) for name in node.get("required", ())}
    for name, sub in node.get("properties", {}).items():
        read |= {(*prefix, name)} | _fields_read(sub, (*prefix, name))
    return read


def _pointer(parts: tuple[Any, ...]) -> str:
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


KNOWN = {
    "decision": set(SCHEMA["properties"]) | set(SCHEMA["$defs"]["decision_body"]["properties"]),
    "appeal": set(SCHEMA["properties"]) | set(SCHEMA["$defs"]["appeal_record"]["properties"]),
    "amendment": set(SCHEMA["properties"]) | set(SCHEMA["$defs"]["amendment_record"]["properties"]),
    "coverage": set(SCHEMA["properties"]) | set(SCHEMA["$defs"]["coverage_record"]["properties"]),
}


def _error_paths(error: Any, kind: str, record: Any) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The paths one python-jsonschema error stands for, and the fields its rule's ``if`` reads."""
    at = tuple(error.absolute_path)
    steps = list(error.schema_path)
    value = error.instance
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = KNOWN[kind] if not at else set(SCHEMA["$defs"]["decision_body"]["properties"])
        if error.validator == "additionalProperties":
            known = set(error.schema["properties"])
        paths = {(*at, k) for k in value if k not in known}
    elif error.validator == "required":
        paths = {(*at, k) for k in error.validator_value if k not in value}
    elif error.validator is None:  # a false schema: python-jsonschema reports it at the object
        holder = record
        for key in at:
            holder = holder[key]
        # Without $ref in the path, decision_record's and decision_body's "properties" are both candidates.
        forbidden = {k for props in _walk(SCHEMA, steps) for k, sub in props.items() if sub is False}
        paths = {(*at, k) for k in forbidden if k in holder}
    elif error.validator == "anyOf" and at[-1:] == ("territorial_scope",):
        if isinstance(value, list) and "GLOBAL" in value:
            paths = {at}
        else:
            paths = {
                p
                for sub in error.context
                if sub.relative_schema_path[0] == 1
                for p in _error_paths(sub, kind, record)[0]
            }
    else:
        paths = {at}
    branch = max((i for i, s in enumerate(steps) if s in ("then", "else")), default=None)
    if branch is None:
        return paths, set()
    depth = steps[branch:].count("properties") - (error.validator is None)
    base = at[: len(at) - depth]
    holders = [n for n in _walk(SCHEMA, steps[:branch]) if isinstance(n, dict) and "if" in n]
    reads = {
        (*base, *f) for n in holders if _walk(n[steps[branch]], steps[branch + 1 :]) for f in _fields_read(n["if"], ())
    }
    return paths, reads


def _parse(value: Any, name: str) -> date | None:
    """A time of the schema's forms, by the standard library: None if not one."""
    if not isinstance(value, str):
        return None
    if name == "posted_at" and len(value) == 10 and vocab_match("date", value):
        return date.fromisoformat(value)
    if vocab_match("date_time", value):
        return datetime.fromisoformat(value)  # 3.11: Z, and fractions past 6 digits are cut
    return None


def vocab_match(pattern: str, value: str) -> bool:
    import re

    return re.fullmatch(vocab.PATTERNS[pattern], value) is not None


def _times(record: dict[str, Any], kind: str) -> dict[tuple[Any, ...], Any]:
    """Every time field of the record's kind, by path, with its value."""
    found: dict[tuple[Any, ...], Any] = {("submitted_at",): record.get("submitted_at")}
    if kind == "coverage":
        return found
    if kind == "appeal":
        return found | {(n,): record.get(n) for n in ("filed_at", "decided_at")}
    body, base = (record, ()) if kind == "decision" else (record.get("corrected"), ("corrected",))
    if isinstance(body, dict):
        found |= {(*base, n): body.get(n) for n in ("flagged_at", "decided_at", "applied_at", "action_ends_at")}
        if isinstance(body.get("content"), dict):
            found[(*base, "content", "posted_at")] = body["content"].get("posted_at")
    return found


def _beyond_schema(record: dict[str, Any], kind: str, now: datetime, settled: bool) -> set[tuple[Any, ...]]:
    """The paths of the ledger's own checks: 1.0 is no integer, real days, five minutes, order."""
    wrong = {("schema_version",)} if isinstance(record.get("schema_version"), float) else set()
    counts = record.get("counts") if kind == "coverage" else None
    for cls, actions in counts.items() if isinstance(counts, dict) else ():  # 3.0 is no count either
        for action, split in actions.items() if isinstance(actions, dict) else ():
            wrong |= {
                ("counts", cls, action, half)
                for half, n in (split.items() if isinstance(split, dict) else ())
                if isinstance(n, float)
            }
    limit = now + timedelta(minutes=5)
    parsed = {}
    for path, value in _times(record, kind).items():
        try:
            when = _parse(value, path[-1])
        except ValueError:
            wrong.add(path)  # no such day
            continue
        if when is None:
            continue
        parsed[path] = when
        bound = limit if isinstance(when, datetime) else limit.date()
        if path[-1] != "action_ends_at" and when > bound:
            wrong.add(path)
    if wrong or not settled:
        return wrong
    if kind == "coverage":
        return set()
    if kind == "appeal":
        return (
            {("decided_at",)}
            if ("decided_at",) in parsed and parsed[("decided_at",)] < parsed[("filed_at",)]
            else set()
        )
    b = () if kind == "decision" else ("corrected",)
    posted, flagged, decided = (
        parsed[(*b, "content", "posted_at")],
        parsed[(*b, "flagged_at")],
        parsed[(*b, "decided_at")],
    )
    if posted > (flagged if isinstance(posted, datetime) else flagged.date()):
        wrong.add((*b, "flagged_at"))
    if decided < flagged:
        wrong.add((*b, "decided_at"))
    if (*b, "applied_at") in parsed and parsed[(*b, "applied_at")] < decided:
        wrong.add((*b, "applied_at"))
    if (*b, "action_ends_at") in parsed and parsed[(*b, "action_ends_at")] <= decided:
        wrong.add((*b, "action_ends_at"))
    return wrong


def _bad(text: str) -> bool:
    """docs/records.md: C0 controls but tab and line feed, DEL, C1 controls, lone surrogates."""
    return any((c < " " and c not in "\t\n") or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff" for c in text)


def _refused(node: Any, at: tuple[Any, ...]) -> set[tuple[Any, ...]]:
    if isinstance(node, dict):
        keys = {(*at, k) for k in node if _bad(k)}
        return keys.union(*(_refused(v, (*at, k)) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(_refused(v, (*at, i)) for i, v in enumerate(node)))
    return {at} if isinstance(node, str) and _bad(node) else set()


def reference_paths(record: dict[str, Any], now: datetime) -> set[str]:
    """The error paths the published schema and the documented checks give ``record``."""
    refused = _refused(record, ())
    if refused:
        return {_pointer(p) for p in refused}
    kind = record.get("type")
    if kind not in vocab.RECORD_TYPES:
        return {"type"}
    found = [_error_paths(e, kind, record) for e in VALIDATOR.iter_errors(record)]
    wrong = set().union(*(paths for paths, _ in found))

    def in_error(field: tuple[Any, ...]) -> bool:
        return any(field[:n] in wrong for n in range(1, len(field) + 1))

    kept = set().union(*(paths for paths, reads in found if not any(in_error(f) for f in reads)))
    kept |= _beyond_schema(record, kind, now, settled=not found)
    return {_pointer(p) for p in kept}


# --- mutations ------------------------------------------------------------------

JUNK = st.none() | st.booleans() | st.integers(-3, 3) | st.just(1.0) | st.text(max_size=6) | st.just([]) | st.just({})
ALL_VALUES = sorted({v for values in vocab.ENUMS.values() for v in values})


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((node, key))
        _slots(value, out)
    return out


def _neighbour(draw: st.DrawFn, value: str) -> str:
    """A value of the same vocabulary one step away, or of another vocabulary."""
    for values in vocab.ENUMS.values():
        if value in values:
            i = values.index(value)
            return draw(
                st.sampled_from([values[(i + 1) % len(values)], values[i - 1], draw(st.sampled_from(ALL_VALUES))])
            )
    return draw(st.sampled_from(ALL_VALUES))


def _shifted(draw: st.DrawFn, value: str) -> str:
    """Another time near ``value``: earlier, later, in the future, a date, a bad day."""
    try:
        when = datetime.fromisoformat(value if "T" in value else value + "T00:00:00+00:00")
    except ValueError:  # already a bad day
        return value
    when += timedelta(seconds=draw(st.sampled_from([-86400 * 40, -3600, -1, 0, 1, 3600, 86400 * 400])))
    form = draw(st.sampled_from(["time", "time", "date", "bad day", "offset"]))
    if form == "date":
        return when.date().isoformat()
    if form == "bad day":
        return f"{when.year}-02-30T10:00:00Z"
    if form == "offset":
        return when.strftime("%Y-%m-%dT%H:%M:%S+01:00")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    record, now = draw(st.sampled_from(seeds()))
    record = copy.deepcopy(record)
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(_slots(record, [])))
        value = container[key]
        op = draw(st.sampled_from(["drop", "add", "type", "enum", "long", "control", "time", "flip"]))
        if op == "drop":
            del container[key]
        elif op == "add" and isinstance(container, dict):
            name = draw(
                st.sampled_from(sorted(KNOWN["decision"] | KNOWN["appeal"] | KNOWN["amendment"])) | st.text(max_size=6)
            )
            container[name] = draw(JUNK | st.sampled_from(ALL_VALUES))
        elif op == "type":
            container[key] = draw(JUNK)
        elif op == "enum" and isinstance(value, str):
            container[key] = _neighbour(draw, value)
        elif op == "long" and isinstance(value, str):
            container[key] = (value or "x") * (draw(st.sampled_from(LIMITS)) // max(len(value), 1) + 1)
        elif op == "control":
            char = draw(st.sampled_from(CONTROL))
            if isinstance(container, dict) and draw(st.booleans()):
                container[f"{key}{char}"] = container.pop(key)
            elif isinstance(value, str):
                container[key] = value[:2] + char + value[2:]
        elif (
            op == "time"
            and key in TIMES
            and isinstance(value, str)
            and vocab_match("date_time", value) | vocab_match("date", value)
        ):
            container[key] = _shifted(draw, value)
        elif op == "flip":
            record.update(copy.deepcopy(draw(st.sampled_from(_FLIPS))))
    return record, now + timedelta(seconds=draw(st.sampled_from([0, -86400 * 365, 3600])))


_FLIPS: list[dict[str, Any]] = [
    {"violation_found": False},
    {"violation_found": True},
    {"exemption": {"applied": False}},
    {"exemption": {"applied": True, "type": "other"}},
    {"decision_ground": "terms"},
    {"decision_ground": "illegal"},
    {"action": "temporary_suspension"},
    {"action": "remove_content"},
    {"outcome": "pending"},
    {"outcome": "upheld"},
    {"statement": "A reason."},
    {"account": {"class": "ordinary_user", "subject_key": "a" * 64, "follower_bucket": "10k+"}},
    {
        "account": {
            "class": "journalist",
            "class_basis": "platform_label",
            "subject_key": "k" * 20,
            "follower_bucket": "<1k",
            "public_subject": {"display_name": "A"},
        }
    },
    {"territorial_scope": ["GLOBAL", "DE"]},
    {"territorial_scope": ["EU", "DE", "DE"]},
    {"target": {"class": "election_worker"}},
    {"target": {"class": "candidate", "public_subject": {"display_name": "A"}}},
    {"target": {"class": "group", "public_subject": {"display_name": "A"}}},
    {"reporter_class": "target_self"},
    {"rule": {"id": "threats", "version": "1", "abuse": "threat"}},
    {"account": {"class": "election_worker", "subject_key": "b" * 64, "follower_bucket": "<1k"}},
]


# --- the properties -----------------------------------------------------------


def test_seeds_cover_every_kind() -> None:
    kinds = {(r["type"], r.get("account", r.get("corrected", {}).get("account", {})).get("class")) for r, _ in seeds()}
    assert set(vocab.RECORD_TYPES) <= {k for k, _ in kinds}
    assert ("decision", "ordinary_user") in kinds
    assert ("amendment", "ordinary_user") in kinds


@settings(max_examples=EXAMPLES_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fast_path_agrees_with_published_schema(case: tuple[dict[str, Any], datetime]) -> None:
    record, now = case
    errors = validate_record(record, now)
    assert {e["path"] for e in errors} == reference_paths(record, now)
    if not _refused(record, ()):  # a field name and its value may both hold a refused character
        assert len({e["path"] for e in errors}) == len(errors), "one message per path"
    if any(_bad(c) and not "\ud800" <= c <= "\udfff" for c in _strings(record)):
        # The schema refuses every control character too: in a key as an
        # unknown field, in a value by its pattern or vocabulary.
        assert not VALIDATOR.is_valid(record)


@settings(max_examples=EXAMPLES_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_one_pass_agrees_with_validate_record(case: tuple[dict[str, Any], datetime]) -> None:
    """validate_parsed (the submissions' path) gives validate_record's errors,
    and a valid record's RFC 8785 bytes."""
    record, now = case
    errors, body = validate_parsed(record, now)
    assert errors == validate_record(record, now)
    assert body == (None if errors else canonical(record))


@settings(max_examples=EXAMPLES_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_acceptance_without_unevaluated_properties_is_the_published_schemas(
    case: tuple[dict[str, Any], datetime],
) -> None:
    """The common case skips the costly ``unevaluatedProperties`` (_accepts):
    whatever it accepts, the published schema compiled whole accepts too, and
    it accepts every valid seed, so the fast path is the one taken."""
    record, _ = case
    kind = record.get("type")
    # As validate_record asks: only of records with no refused character.
    if kind in vocab.RECORD_TYPES and clean(record) and record_validator._accepts(record, kind):
        assert record_validator.SCHEMA_VALIDATOR.is_valid(record)


def test_valid_records_take_the_fast_acceptance() -> None:
    for record, _ in seeds():
        if record_validator.SCHEMA_VALIDATOR.is_valid(record):
            assert record_validator._accepts(record, record["type"]), record["record_id"]
    # A field in the wrong object is left to the published schema, which names it.
    for record, path in (
        ({**EXAMPLES["decision-legislator-removal"], "reason": "x"}, "reason"),
        ({**EXAMPLES["appeal-reversed"], "account": {}}, "account"),
        (
            {**EXAMPLES["amendment-late-classification"], "corrected": {**ORD_BODY, "reason": "x"}},
            "corrected/reason",
        ),
    ):
        assert not record_validator._accepts(record, record["type"])
        assert {"path": path, "message": "unknown field (record schema version 1)"} in validate_record(record, NOW)


def _nested(depth: int) -> Any:
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    return nested


_VALID_EDITS = [
    {},
    {"statement": "a back\\slash before b, f, r and u: \\b \\f \\r \\u0000"},  # suspect, yet clean
    {"statement": "[[[[{{{{" * 5},  # brackets in a string: more than 32, yet nothing nested
    {"statement": "tab\tand line feed\n are allowed"},
]
_INVALID_EDITS = [
    *({"statement": f"a{c}b"} for c in CONTROL),
    {"statement\x0b": "x"},
    {"x": _nested(31)},
    {"x": _nested(40)},
    {"x": {"y": 1.5}},
    {"x": 2**60},
    {"x\u00e9": "a field name that is not ASCII"},
]


@pytest.mark.parametrize("edit", _VALID_EDITS + _INVALID_EDITS)
def test_one_pass_on_what_the_text_cannot_tell(edit: dict[str, Any]) -> None:
    """The cases where the JSON text's search is wrong or mute (escaped
    backslashes, brackets in strings, deep nesting, values RFC 8785 writes
    otherwise), through JSON as a request brings them."""
    record = parse_json(json.dumps({**EXAMPLES[HEAD], **edit}).encode())
    errors, body = validate_parsed(record, NOW)
    assert errors == validate_record(record, NOW)
    assert body == (None if errors else canonical(record))
    assert (errors == []) == (edit in _VALID_EDITS)


def test_the_text_search_misses_no_refused_character() -> None:
    """clean_json looks for the first bytes of what each refused character
    becomes in the JSON text; every one of them must be found, in a value and
    in a field name, and the allowed neighbours must pass."""
    refused = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and _bad(chr(c))]
    assert len(refused) == 30 + 1 + 32  # C0 but tab and line feed, DEL, C1
    for c in refused:
        for value in ({"s": f"a{c}b"}, {f"a{c}": "b"}):
            assert not clean_json(json_text(value).encode()), repr(c)
    for c in ("\t", "\n", " ", "~", "\xa0", "\xa7", "\xe9", "\u2028", "\U0001f600", '"'):
        assert clean_json(json_text({"s": f"a{c}b", f"k{c}": 1}).encode()), repr(c)


def _schema_nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [n for sub in node for n in _schema_nodes(sub)]
    if not isinstance(node, dict):
        return []
    return [node, *(n for key, sub in node.items() if key not in ("const", "enum") for n in _schema_nodes(sub))]


def test_every_valid_record_is_plain() -> None:
    """ledger.records.entries.json_text is a record's RFC 8785 form only if
    the record is plain: no fraction, no integer beyond 2**53 - 1, no field
    name but ASCII. The schema must admit nothing else (validate_parsed
    relies on it): every number an integer with a bound, every object closed
    to names but its own, all of them ASCII."""
    for node in _schema_nodes(SCHEMA):
        types = node.get("type", [])
        assert "number" not in (types if isinstance(types, list) else [types])
        if "integer" in (types if isinstance(types, list) else [types]) and "const" not in node:
            assert -(2**53) < node["minimum"] <= node["maximum"] < 2**53
        assert "patternProperties" not in node
        assert "propertyNames" not in node
        assert node.get("additionalProperties", False) is False
        assert all(name.isascii() for name in node.get("properties", {}))
    # Objects close by additionalProperties or by unevaluatedProperties.
    assert all(
        "additionalProperties" in n or "unevaluatedProperties" in n or "$ref" in n or "allOf" in n
        for n in _schema_nodes(SCHEMA)
        if n.get("type") == "object"
    )


def _strings(node: Any) -> set[str]:
    """Every character of every string in ``node``, keys included."""
    if isinstance(node, dict):
        return set("".join(node)).union(*(_strings(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_strings(v) for v in node))
    return set(node) if isinstance(node, str) else set()


@settings(max_examples=EXAMPLES_N // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_openapi_schemas_agree_with_published_schema(case: tuple[dict[str, Any], datetime]) -> None:
    """The marshmallow schemas the OpenAPI document is generated from accept and refuse what the fast path does."""
    record, now = case
    assert bool(load_errors(record, now)) == bool(validate_record(record, now))


@pytest.mark.parametrize("i", range(len(EXAMPLES) + 2))
def test_seeds_valid_under_reference(i: int) -> None:
    record, now = seeds()[i]
    assert reference_paths(record, now) == set()


# --- messages ---------------------------------------------------------------------

HEAD, ORD, COURT, LEGIS, THREAT = (
    "decision-head-of-state-newsworthiness",
    "decision-ordinary-user",
    "decision-illegal-court-order",
    "decision-legislator-removal",
    "decision-threat-election-worker",
)
MESSAGES_DATE_TIME = (
    "must be an RFC 3339 UTC date-time YYYY-MM-DDTHH:MM:SS[.fraction]Z "
    "(upper-case T and Z; offsets such as +01:00 and naive times are not accepted)"
)
MESSAGES = [
    (HEAD, {"severity": "severe"}, "severity", "must be one of: low, medium, high, critical"),
    (
        HEAD,
        {"category": "x"},
        "category",
        "must be one of the 16 DSA statement category values listed in docs/records.md",
    ),
    (HEAD, {"violation_found": 1}, "violation_found", "must be true or false"),
    (HEAD, {"automated_detection": None}, "automated_detection", "must not be null"),
    (HEAD, {"schema_version": 1.0}, "schema_version", "must be the integer 1: this is schema version 1"),
    (HEAD, {"rule": "x"}, "rule", "must be a JSON object"),
    (HEAD, {"colour": "blue"}, "colour", "unknown field (record schema version 1)"),
    (HEAD, {"record_id": "d" * 129}, "record_id", "must be 1 to 128 characters long"),
    (HEAD, {"record_id": "dec 1"}, "record_id", "must match ^[A-Za-z0-9._:-]{1,128}$"),
    (HEAD, {"statement": "x" * 5001}, "statement", "must be 1 to 5000 characters long"),
    (HEAD, {"keywords": []}, "keywords", "must not be empty"),
    (HEAD, {"territorial_scope": ["DE", "DE"]}, "territorial_scope", "must not repeat an item"),
    (HEAD, {"territorial_scope": ["GLOBAL", "DE"]}, "territorial_scope", "GLOBAL must stand alone"),
    (
        HEAD,
        {"content": {**EXAMPLES[HEAD]["content"], "posted_at": "2026-03-02"}},
        "content/posted_at",
        "public classes: an RFC 3339 UTC date-time, not a date",
    ),
    (HEAD, {"submitted_at": "2026-03-03T17:25:07+01:00"}, "submitted_at", MESSAGES_DATE_TIME),
    (HEAD, {"flagged_at": "2026-02-30T10:00:00Z"}, "flagged_at", "is not a real calendar date"),
    (HEAD, {"flagged_at": 5}, "flagged_at", MESSAGES_DATE_TIME),
    (HEAD, {"legal_reference": "StGB 86a"}, "legal_reference", "forbidden when decision_ground is terms"),
    (
        LEGIS,
        {"action_ends_at": "2026-05-01T00:00:00Z"},
        "action_ends_at",
        "forbidden for actions without an end: none, remove_content, permanent_ban",
    ),
    (ORD, {"statement": "why"}, "statement", "forbidden for ordinary users, whose privacy outranks the reasons"),
    (
        ORD,
        {"record_id": "jane.doe"},
        "record_id",
        "ordinary users: must be digits and separators after at most one tag of 1 to 3 letters "
        "(dec-2026-000101, 2026-05:000000917)",
    ),
    (
        THREAT,
        {"target": {"class": "election_worker", "public_subject": {"display_name": "Jane Doe"}}},
        "target/public_subject",
        "forbidden unless the target is of a public class: nothing may name an ordinary user, an election worker "
        "or a group's members",
    ),
    (
        THREAT,
        {"rule": {"id": "violent-speech/threats", "version": "4", "abuse": "threat"}, "target": None},
        "target",
        "must not be null",
    ),
    (
        THREAT,
        {"reporter_class": "victim"},
        "reporter_class",
        "must be one of: target_self, public_account, ordinary_user, trusted_flagger, government_body",
    ),
    (COURT, {"legal_reference": None}, "legal_reference", "must not be null"),
    (COURT, {"review_path": None}, "review_path", "must not be null"),
    (COURT, {"dsa_sor_uuid": "a" * 37}, "dsa_sor_uuid", "must be 1 to 36 characters long"),
]


@pytest.mark.parametrize(("name", "edits", "path", "message"), MESSAGES)
def test_messages(name: str, edits: dict[str, Any], path: str, message: str) -> None:
    assert validate_record({**EXAMPLES[name], **edits}, NOW) == [{"path": path, "message": message}]


def test_rule_on_a_field_in_error_is_not_reported() -> None:
    """exemption.applied "yes" is neither true nor false: its type is the one error, not "forbidden" type and policy."""
    record = copy.deepcopy(EXAMPLES[HEAD])
    record["exemption"]["applied"] = "yes"
    assert validate_record(record, NOW) == [{"path": "exemption/applied", "message": "must be true or false"}]
    assert {e.validator for e in VALIDATOR.iter_errors(record)} > {"type"}  # the schema alone says more
    record = {k: v for k, v in EXAMPLES[COURT].items() if k not in ("decision_ground", "legal_reference")}
    assert validate_record(record, NOW) == [{"path": "decision_ground", "message": "required"}]


def test_not_json_from_a_python_caller() -> None:
    nested: Any = []
    for _ in range(100):
        nested = [nested]
    [error] = validate_record({**EXAMPLES[HEAD], "x": nested}, NOW)
    assert error["message"] == "nested deeper than 32 levels: no record field is"
    assert validate_record({**EXAMPLES[HEAD], 7: 1}, NOW) == [
        {"path": "7", "message": "the field name must be a string"}
    ]


def test_abuse_rule_without_target_message() -> None:
    record = {k: v for k, v in EXAMPLES[THREAT].items() if k != "target"}
    assert validate_record(record, NOW) == [
        {"path": "target", "message": "required when rule.abuse is set: say whom the content targeted"}
    ]
