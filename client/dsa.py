"""DSA statements of reasons into schema-v1 records, and back for an audit. Pure.

:func:`import_statement` turns one statement, in the JSON form the DSA
Transparency Database's API takes (and returns, and serves for download),
into a schema-v1 decision record; :func:`compare` reports, field by field,
whether a record and a statement agree. The correspondence of each field is
:mod:`ledger.records.dsa`'s and is documented in ``docs/records.md`` ("The DSA
Transparency Database").

A statement lacks what schema v1 records about the decision and the account
(:data:`LEDGER_FIELDS`: the account's class and its basis, the public
subject, the rule's id and version, the exemption, the severity, the
times of the flag and the decision...). The platform gives them in a
*mapping*: ``defaults`` for every statement, ``statements`` keyed by
``puid``, or a ``ledger`` object inside the statement itself, merged in that
order (objects one level deep). A mapping may not set a field the statement
itself determines.

Faithful or nothing: a statement holding a value no record field can say
(an "other" restriction, two restrictions that are different actions, an
additional category, a content identifier, a legal ground on a decision
taken on terms alone...) is refused with :class:`Unmappable`, naming the DSA
field and why. Free-text fields are not carried into the record (see the
docs for the list); the record cites the statement by ``dsa_sor_uuid``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInput
from ledger.records import dsa, vocab

#: The fields of a statement as the DSA API documents them (request body).
STATEMENT_FIELDS = frozenset(
    {
        *("decision_visibility", "decision_visibility_other", "end_date_visibility_restriction"),
        *("decision_monetary", "decision_monetary_other", "end_date_monetary_restriction"),
        *("decision_provision", "end_date_service_restriction", "decision_account"),
        *("end_date_account_restriction", "account_type", "decision_ground", "decision_ground_reference_url"),
        *("illegal_content_legal_ground", "illegal_content_explanation", "incompatible_content_ground"),
        *("incompatible_content_explanation", "incompatible_content_illegal", "content_type", "content_type_other"),
        *("category", "category_addition", "category_specification", "category_specification_other"),
        *("content_id", "territorial_scope", "content_language", "content_date", "application_date"),
        *("decision_facts", "source_type", "source_identity", "automated_detection", "automated_decision", "puid"),
    }
)
#: What the DSA adds to a stored statement (the API's answer, a download).
DSA_METADATA = frozenset({"uuid", "id", "created_at", "platform_name", "platform_uid", "permalink", "self"})
#: What a mapping may give: what the statement cannot.
LEDGER_FIELDS = frozenset(
    {
        *("platform", "record_id", "submitted_at", "rule", "legal_reference", "severity", "exemption"),
        *("review_path", "interim_state", "detection_source", "state_involvement", "account"),
        *("content_ref", "content_posted_at", "flagged_at", "decided_at", "applied_at"),
    }
)
#: Free text with no record field: read, checked for nothing, not carried.
NOT_CARRIED = (
    *("decision_visibility_other", "decision_monetary_other", "illegal_content_explanation"),
    *("incompatible_content_ground", "incompatible_content_explanation", "content_type_other"),
    *("category_specification_other", "source_identity", "account_type"),
)
_UUID = re.compile(vocab.PATTERNS["uuid"])
_DATE = re.compile(vocab.PATTERNS["date"])
_DATE_TIME = re.compile(vocab.PATTERNS["date_time"])


class Unmappable(InvalidInput):
    """A statement that no schema-v1 record can say faithfully, or a mapping that does not fit it."""


def _refuse(where: str, field: str, why: str) -> Unmappable:
    return Unmappable(f"{where}: {field}: {why}", [{"path": field, "message": why}])


# Reading statements and mappings ------------------------------------------------------


def statements_of(value: Any) -> list[dict[str, Any]]:
    """The statements of a parsed file: one statement, a list, or ``{"statements": [...]}``
    (the body of the API's multiple-statements endpoint)."""
    if isinstance(value, dict) and set(value) == {"statements"}:
        value = value["statements"]
    items = value if isinstance(value, list) else [value]
    for n, st in enumerate(items):
        if not isinstance(st, dict):
            raise InvalidInput(f"statement {n}: must be a JSON object")
    return items


@dataclass(frozen=True)
class DsaMapping:
    """A mapping file: ``{"platform", "defaults", "statements"}``, checked when built."""

    platform: str | None
    defaults: dict[str, Any]
    by_puid: dict[str, dict[str, Any]]

    @classmethod
    def from_json(cls, obj: Any) -> DsaMapping:
        if not isinstance(obj, dict) or not set(obj) <= {"platform", "defaults", "statements"}:
            raise InvalidInput("mapping: expected an object with the keys platform, defaults and statements")
        defaults = obj.get("defaults", {})
        by_puid = obj.get("statements", {})
        if not isinstance(defaults, dict) or not isinstance(by_puid, dict):
            raise InvalidInput("mapping: defaults and statements must be objects")
        _check_extras("mapping defaults", defaults)
        for puid, extra in by_puid.items():
            if not isinstance(extra, dict):
                raise InvalidInput(f"mapping statements.{puid}: must be an object")
            _check_extras(f"mapping statements.{puid}", extra)
        platform = obj.get("platform")
        if platform is not None and not isinstance(platform, str):
            raise InvalidInput("mapping: platform must be a string")
        return cls(platform, defaults, by_puid)


EMPTY_MAPPING = DsaMapping(None, {}, {})


def _check_extras(where: str, extra: Mapping[str, Any]) -> None:
    for k in extra:
        if k not in LEDGER_FIELDS:
            why = "the statement determines it" if k in dsa.DSA_DUMP_COLUMNS or k in _RECORD_FROM_DSA else "unknown"
            raise InvalidInput(f"{where}: {k}: a mapping may not set this field ({why})")


# Record fields the statement determines (for the message above).
_RECORD_FROM_DSA = frozenset(
    {
        *("dsa_sor_uuid", "decision_ground", "category", "keywords", "action", "action_ends_at", "content"),
        *("territorial_scope", "automated_detection", "automated_decision", "statement", "violation_found"),
    }
)


def _merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win; objects merge one level deep (``account``, ``rule``, ``exemption``)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in layer.items():
            out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Import ---------------------------------------------------------------------------------


def _enum(st: Mapping[str, Any], field: str, prefix: str, values: tuple[str, ...], where: str) -> str:
    """The record value of a prefixed DSA value (``STATEMENT_CATEGORY_SCAMS_AND_FRAUD`` -> ``scams_and_fraud``)."""
    v = st.get(field)
    if not isinstance(v, str) or not v.startswith(prefix) or v[len(prefix) :].lower() not in values:
        raise _refuse(where, field, f"{v!r} is not one of the DSA values schema v1 shares ({prefix}...)")
    return v[len(prefix) :].lower()


def _enum_list(st: Mapping[str, Any], field: str, prefix: str, values: tuple[str, ...], where: str) -> list[str]:
    raw = st.get(field)
    if not isinstance(raw, list) or len(set(map(str, raw))) != len(raw):
        raise _refuse(where, field, "must be a list of distinct values")
    return [_enum({field: v}, field, prefix, values, where) for v in raw]


def _day(st: Mapping[str, Any], field: str, where: str) -> str:
    v = st.get(field)
    if not isinstance(v, str) or not _DATE.fullmatch(v):
        raise _refuse(where, field, "must be a date YYYY-MM-DD")
    return v


def _time_on(extra: Mapping[str, Any], key: str, day: str, field: str, where: str) -> str:
    """``extra[key]``, a date-time that must fall on ``day`` (the DSA's date field ``field``)."""
    v = extra.get(key)
    if v is None:
        raise _refuse(where, field, f"the DSA gives only the day {day}: give {key} (a date-time on that day)")
    if not isinstance(v, str) or not _DATE_TIME.fullmatch(v) or v[:10] != day:
        raise _refuse(where, key, f"must be an RFC 3339 UTC date-time on {day}, the statement's {field}")
    return v


def _ground(st: Mapping[str, Any], extra: Mapping[str, Any], where: str) -> dict[str, Any]:
    ground = st.get("decision_ground")
    legal = st.get("illegal_content_legal_ground")
    ici = st.get("incompatible_content_illegal")
    if ici not in (None, *dsa.YES_NO):
        raise _refuse(where, "incompatible_content_illegal", f"{ici!r} is neither 'Yes' nor 'No'")
    if ground == "DECISION_GROUND_ILLEGAL_CONTENT":
        out = {"decision_ground": "illegal"}
    elif ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        out = {"decision_ground": "both" if ici == "Yes" else "terms"}
    else:
        raise _refuse(where, "decision_ground", f"{ground!r} is not one of {', '.join(dsa.DECISION_GROUNDS)}")
    if out["decision_ground"] == "terms":
        if legal is not None:
            raise _refuse(where, "illegal_content_legal_ground", "a decision on terms alone holds no legal ground")
        return out
    if legal is not None and "legal_reference" in extra:
        raise _refuse(where, "legal_reference", "the statement gives it (illegal_content_legal_ground)")
    ref = legal if legal is not None else extra.get("legal_reference")
    if not isinstance(ref, str) or not ref:
        raise _refuse(where, "illegal_content_legal_ground", "absent: give legal_reference in the mapping")
    return {**out, "legal_reference": ref}


def _action(st: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The one action (and its end) the statement's restrictions stand for."""
    found: dict[str, set[str | None]] = {}
    for field, end_field, values in dsa.RESTRICTION_FIELDS:
        raw = st.get(field)
        if raw in (None, []):
            continue
        given = raw if field == "decision_visibility" else [raw]
        if not isinstance(given, list):
            raise _refuse(where, field, "decision_visibility must be a list")
        end = st.get(end_field)
        if end is not None:
            _day(st, end_field, where)
        for v in given:
            if v not in values:
                raise _refuse(where, field, f"{v!r} is not one of the DSA's values")
            action = dsa.RESTRICTION_ACTIONS[v]
            if action is None:
                raise _refuse(where, field, f"{v} is a restriction described only in free text: no action says it")
            found.setdefault(action, set()).add(end)
    if not found:
        raise _refuse(where, "decision_visibility", "no restriction: a statement of reasons states at least one")
    if len(found) > 1:
        names = ", ".join(sorted(found))
        raise _refuse(where, "decision_visibility", f"the restrictions are several actions ({names}); a record has one")
    ((action, ends),) = found.items()
    if len(ends) > 1:
        raise _refuse(where, "end_date_account_restriction", "the restrictions of this action end on different days")
    (end,) = ends
    if end is None:
        if action == "temporary_suspension":
            raise _refuse(where, "end_date_account_restriction", "an indefinite suspension: schema v1 needs its end")
        return {"action": action}
    if action in vocab.UNLIMITED_ACTIONS:
        raise _refuse(where, "end_date_visibility_restriction", f"{action} has no end in schema v1")
    return {"action": action, "action_ends_at": f"{end}T00:00:00Z"}


def _detection(st: Mapping[str, Any], extra: Mapping[str, Any], detected: bool, where: str) -> str:
    source_type = st.get("source_type")
    allowed = dsa.DETECTION_SOURCES.get(source_type) if isinstance(source_type, str) else None
    if allowed is None or not isinstance(source_type, str):
        raise _refuse(where, "source_type", f"{source_type!r} is not one of {', '.join(dsa.SOURCE_TYPES)}")
    default = {"SOURCE_VOLUNTARY": "automated" if detected else "internal_staff"}.get(source_type, allowed[-1])
    src = extra.get("detection_source", default)
    if src not in allowed:
        raise _refuse(where, "detection_source", f"{src!r} contradicts source_type {source_type}: one of {allowed}")
    return str(src)


def _yes_no(st: Mapping[str, Any], field: str, where: str) -> bool:
    v = st.get(field)
    if v not in dsa.YES_NO:
        raise _refuse(where, field, f"{v!r} is neither 'Yes' nor 'No'")
    return bool(v == "Yes")


def _content(st: Mapping[str, Any], extra: Mapping[str, Any], ordinary: bool, where: str) -> dict[str, Any]:
    content: dict[str, Any] = {"types": _enum_list(st, "content_type", "CONTENT_TYPE_", vocab.CONTENT_TYPES, where)}
    lang = st.get("content_language")
    if lang is not None:
        if not isinstance(lang, str) or lang != lang.upper() or lang.lower() not in vocab.LANGUAGE_CODES:
            raise _refuse(where, "content_language", f"{lang!r} is not an upper-case ISO 639-1 code")
        content["language"] = lang.lower()
    if "content_ref" in extra:
        content["ref"] = extra["content_ref"]
    day = _day(st, "content_date", where)
    content["posted_at"] = day if ordinary else _time_on(extra, "content_posted_at", day, "content_date", where)
    return content


def _scope(st: Mapping[str, Any], where: str) -> list[str]:
    scope = st.get("territorial_scope")
    if not isinstance(scope, list) or not scope or len(set(map(str, scope))) != len(scope):
        raise _refuse(where, "territorial_scope", "must be a non-empty list of distinct country codes")
    for c in scope:
        if c not in vocab.COUNTRY_CODES:
            raise _refuse(where, "territorial_scope", f"{c!r} is not an ISO 3166-1 alpha-2 code")
    return list(scope)


def _required(extra: Mapping[str, Any], where: str, *keys: str) -> None:
    for k in keys:
        if k not in extra:
            raise _refuse(where, k, "the DSA statement has no such field: give it in the mapping")


def _refuse_unsayable(st: Mapping[str, Any], where: str) -> None:
    for k in st:
        if k not in STATEMENT_FIELDS and k not in DSA_METADATA and k != "ledger":
            raise _refuse(where, k, "not a field of a DSA statement of reasons")
    if st.get("category_addition"):
        raise _refuse(where, "category_addition", "a record has one category")
    if st.get("content_id"):
        raise _refuse(where, "content_id", "schema v1 has no content identifier")


def _envelope(
    st: Mapping[str, Any], extra: Mapping[str, Any], mapping: DsaMapping, ordinary: bool, where: str
) -> dict[str, Any]:
    """The envelope: the mapping's platform, the ``puid`` as ``record_id``, the DSA's ``uuid``."""
    platform = extra.get("platform", mapping.platform)
    if platform is None:
        raise _refuse(where, "platform", "give the ledger's platform name in the mapping")
    record_id = extra.get("record_id", st.get("puid"))
    if not isinstance(record_id, str):
        raise _refuse(where, "puid", "absent: give record_id in the mapping")
    id_pattern = vocab.PATTERNS["numbered_record_id" if ordinary else "record_id"]
    if not re.fullmatch(id_pattern, record_id):
        raise _refuse(where, "puid", f"{record_id!r} does not fit a record_id ({id_pattern}): map one")
    record: dict[str, Any] = {"type": "decision", "schema_version": 1, "platform": platform, "record_id": record_id}
    record["submitted_at"] = extra["submitted_at"]
    if "uuid" in st:
        if not isinstance(st["uuid"], str) or not _UUID.fullmatch(st["uuid"]):
            raise _refuse(where, "uuid", "not a lower-case UUID")
        record["dsa_sor_uuid"] = st["uuid"]
    return record


def _rule(st: Mapping[str, Any], extra: Mapping[str, Any], where: str) -> Any:
    """The mapping's rule, with the statement's ``decision_ground_reference_url`` as its ``url``."""
    rule = dict(extra["rule"]) if isinstance(extra["rule"], dict) else extra["rule"]
    url = st.get("decision_ground_reference_url")
    if url is not None and isinstance(rule, dict):
        if "url" in rule and rule["url"] != url:
            raise _refuse(where, "rule.url", "differs from the statement's decision_ground_reference_url")
        rule["url"] = url
    return rule


def _automated_decision(st: Mapping[str, Any], where: str) -> str:
    ad = st.get("automated_decision")
    if not isinstance(ad, str) or ad not in dsa.AUTOMATED_DECISION_OF:
        raise _refuse(where, "automated_decision", f"{ad!r} is not one of {', '.join(dsa.AUTOMATED_DECISIONS)}")
    return dsa.AUTOMATED_DECISION_OF[ad]


def import_statement(st: Mapping[str, Any], mapping: DsaMapping = EMPTY_MAPPING, *, now: str) -> dict[str, Any]:
    """The schema-v1 decision record of one DSA statement, completed by ``mapping``.

    ``now`` is the ``submitted_at`` used when the mapping gives none. Raises
    :class:`Unmappable` for a statement no record says faithfully, naming
    the field; the server remains the judge of the whole record.
    """
    puid = st.get("puid")
    where = f"puid {puid!r}" if isinstance(puid, str) else "no puid"
    own = st.get("ledger", {})
    if not isinstance(own, dict):
        raise _refuse(where, "ledger", "must be an object")
    _check_extras(where + " ledger", own)
    _refuse_unsayable(st, where)
    action = _action(st, where)  # before the mapping's checks: a refusal of the statement comes first
    by_puid = mapping.by_puid.get(puid, {}) if isinstance(puid, str) else {}
    extra = _merge({"submitted_at": now, "exemption": {"applied": False}, "state_involvement": "none"})
    extra = _merge(extra, mapping.defaults, by_puid, own)
    _required(extra, where, "rule", "severity", "review_path", "interim_state", "account", "flagged_at", "decided_at")
    ordinary = isinstance(extra["account"], dict) and extra["account"].get("class") in vocab.PRIVATE_CLASSES
    detected = _yes_no(st, "automated_detection", where)
    record = _envelope(st, extra, mapping, ordinary, where)
    record.update(rule=_rule(st, extra, where), **_ground(st, extra, where))
    record["category"] = _enum(st, "category", dsa.CATEGORY_PREFIX, vocab.CATEGORIES, where)
    if st.get("category_specification"):
        record["keywords"] = _enum_list(st, "category_specification", dsa.KEYWORD_PREFIX, vocab.KEYWORDS, where)
    record.update(severity=extra["severity"], violation_found=True, **action, exemption=extra["exemption"])
    record.update(review_path=extra["review_path"], interim_state=extra["interim_state"])
    record.update(detection_source=_detection(st, extra, detected, where), automated_detection=detected)
    record.update(automated_decision=_automated_decision(st, where), state_involvement=extra["state_involvement"])
    record.update(account=extra["account"], content=_content(st, extra, ordinary, where))
    record.update(flagged_at=extra["flagged_at"], decided_at=extra["decided_at"])
    applied = _day(st, "application_date", where)
    record["applied_at"] = _time_on(extra, "applied_at", applied, "application_date", where)
    record["territorial_scope"] = _scope(st, where)
    facts = st.get("decision_facts")
    if facts is not None and not ordinary:  # no free text about an ordinary user (docs/records.md)
        record["statement"] = facts
    return record


def import_statements(
    statements: Iterable[Mapping[str, Any]], mapping: DsaMapping = EMPTY_MAPPING, *, now: str
) -> list[dict[str, Any] | Unmappable]:
    """:func:`import_statement` of each, keeping refusals in place so every one can be reported."""
    out: list[dict[str, Any] | Unmappable] = []
    for st in statements:
        try:
            out.append(import_statement(st, mapping, now=now))
        except Unmappable as e:
            out.append(e)
    return out


# Agreement ---------------------------------------------------------------------------------

AGREES, DIFFERS, ABSENT = "agrees", "differs", "absent"

#: The fields both hold: (DSA field, record field), compared in the DSA's values.
SHARED_FIELDS = (
    *(("uuid", "dsa_sor_uuid"), ("puid", "record_id"), ("decision_ground", "decision_ground")),
    *(("incompatible_content_illegal", "decision_ground"), ("illegal_content_legal_ground", "legal_reference")),
    *(("decision_ground_reference_url", "rule.url"), ("category", "category")),
    *(("category_specification", "keywords"), ("content_type", "content.types")),
    *(("content_language", "content.language"), ("content_date", "content.posted_at")),
    *(("territorial_scope", "territorial_scope"), ("application_date", "applied_at")),
    *(("decision_facts", "statement"), ("source_type", "detection_source")),
    *(("automated_detection", "automated_detection"), ("automated_decision", "automated_decision")),
    *(("restrictions", "action"), ("end_date", "action_ends_at")),
)
_LISTS = {"category_specification", "content_type", "territorial_scope"}


@dataclass(frozen=True)
class Agreement:
    dsa_field: str
    record_field: str
    status: str
    record_value: Any
    statement_value: Any

    def line(self) -> str:
        head = f"{self.dsa_field} / {self.record_field}: {self.status}"
        if self.status == AGREES:
            return head
        if self.status == ABSENT:
            side = [n for n, v in (("record", self.record_value), ("statement", self.statement_value)) if v is None]
            return f"{head} from the {' and the '.join(side)}"
        return f"{head} (record: {json.dumps(self.record_value)}, statement: {json.dumps(self.statement_value)})"


def _as_list(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("["):  # a dump's cell
        try:
            v = json.loads(v)
        except ValueError:
            return v
    return sorted(v) if isinstance(v, list) else v


def _statement_actions(st: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """The actions the statement's restrictions stand for, and their end days (None if it states none)."""
    actions, ends = set(), set()
    for field, end_field, _ in dsa.RESTRICTION_FIELDS:
        raw = _as_list(st.get(field))
        for v in raw if isinstance(raw, list) else [raw] if raw else []:
            actions.add(str(dsa.RESTRICTION_ACTIONS.get(v) or v))
            if st.get(end_field):
                ends.add(str(st[end_field])[:10])
    return (sorted(actions) or None), (sorted(ends) or None)


def compare(record: Mapping[str, Any], st: Mapping[str, Any]) -> list[Agreement]:
    """Each shared field as agreeing, differing, or absent (from either side).

    ``record`` is a decision or an amendment (its corrected decision is
    compared); values are compared in the DSA's form (:func:`ledger.records.dsa.statement_fields`),
    lists as sets, dates by their day, the action by what the statement's
    restrictions stand for (:data:`ledger.records.dsa.RESTRICTION_ACTIONS`).
    """
    if record.get("type") == "appeal":
        raise InvalidInput("an appeal holds no decision to compare with a statement of reasons")
    body = record.get("corrected", record)
    mine: dict[str, Any] = dsa.statement_fields(body)
    mine.update(uuid=record.get("dsa_sor_uuid"), puid=record.get("record_id"))
    acts, ends = _statement_actions(st)
    theirs: dict[str, Any] = {k: st.get(k) for k, _ in SHARED_FIELDS}
    theirs.update(restrictions=acts, end_date=ends)
    mine.update(restrictions=[body["action"]] if "action" in body else None)
    mine["end_date"] = [body["action_ends_at"][:10]] if "action_ends_at" in body else None
    for day in ("content_date", "application_date"):
        theirs[day] = str(theirs[day])[:10] if theirs[day] is not None else None
    out = []
    for dsa_field, record_field in SHARED_FIELDS:
        a, b = mine.get(dsa_field), theirs.get(dsa_field)
        if dsa_field in _LISTS:
            a, b = _as_list(a), _as_list(b)
        status = ABSENT if a is None or b is None else AGREES if a == b else DIFFERS
        out.append(Agreement(dsa_field, record_field, status, a, b))
    return out
