"""A record in plain words: its fields as labelled rows, grouped in sections.

:func:`sections` walks a record with a table of every field documented in
``docs/records.md`` (the same order, a label and the kind of value each
holds); fields the table does not know are still shown, under "Other
fields", with their JSON path, so a page never hides part of a signed
record. Values stay plain data here: the templates escape them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.errors import InvalidInput
from ledger.records import times
from ledger.records.changes import Change, changed_fields
from ledger.records.vocab import PATTERNS
from web.labels import label, yes_no


@dataclass(frozen=True)
class Row:
    """One field. ``kind``: text, code, enum, list, time, url, wikidata, person, subject, record, long."""

    label: str
    kind: str
    value: Any
    path: str
    code: str | None = None


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)


#: (path, label, kind, vocabulary) of each field, by section title.
Fields = list[tuple[str, str, str, str | None]]
Spec = dict[str, Fields]

ENVELOPE: Fields = [
    ("type", "Record type", "enum", "record_type"),
    ("schema_version", "Schema version", "text", None),
    ("platform", "Platform", "code", None),
    ("record_id", "Record ID", "code", None),
    ("submitted_at", "Submitted by the platform", "time", None),
    ("refs.record_id", "Refers to record", "record", None),
    ("dsa_sor_uuid", "EU DSA statement of reasons", "code", None),
]
DECISION: Spec = {
    "What was decided": [
        ("rule.id", "Rule", "code", None),
        ("rule.version", "Rule version", "code", None),
        ("rule.url", "Rule text", "url", None),
        ("rule.abuse", "The rule is against", "enum", "abuse_kind"),
        ("decision_ground", "Grounds", "enum", "decision_ground"),
        ("legal_reference", "Law relied on", "text", None),
        ("category", "Category (EU DSA)", "enum", "category"),
        ("keywords", "Keywords (EU DSA)", "list", "keyword"),
        ("severity", "Severity (the platform's assessment)", "enum", "severity"),
        ("violation_found", "Violation found", "bool", None),
        ("action", "Action", "enum", "action"),
        ("action_ends_at", "Action ends", "time", None),
        ("exemption.applied", "Exemption applied", "bool", None),
        ("exemption.type", "Exemption", "enum", "exemption_type"),
        ("exemption.policy.id", "Exemption policy", "code", None),
        ("exemption.policy.version", "Exemption policy version", "code", None),
    ],
    "How it was decided": [
        ("review_path", "Review path", "enum", "review_path"),
        ("interim_state", "Content during review", "enum", "interim_state"),
        ("detection_source", "Brought to the platform's attention by", "enum", "detection_source"),
        ("automated_detection", "Detected by automated means", "bool", None),
        ("automated_decision", "Automated decision", "enum", "automated_decision"),
        ("state_involvement", "Public authority involved", "enum", "state_involvement"),
    ],
    "The account": [
        ("account.public_subject.display_name", "Name", "text", None),
        ("account.public_subject.office", "Office or role", "text", None),
        ("account.public_subject.jurisdiction", "Where the office is held", "enum", "jurisdiction"),
        ("account.public_subject.handle", "Handle", "text", None),
        # "person": the item's page on Wikidata and the person's page here
        # (ledger.records.index_rows.person_qid indexes the account's item alone).
        ("account.public_subject.wikidata_qid", "Wikidata item", "person", None),
        ("account.class", "Account class", "enum", "account_class"),
        ("account.class_basis", "How the platform knows the class", "enum", "class_basis"),
        ("account.follower_bucket", "Followers", "enum", "follower_bucket"),
        ("account.subject_key", "Subject key (pseudonym)", "subject", None),
    ],
    "Whom it targeted": [
        ("target.class", "Aimed at", "enum", "target_class"),
        ("target.public_subject.display_name", "Name", "text", None),
        ("target.public_subject.office", "Office or role", "text", None),
        ("target.public_subject.jurisdiction", "Where the office is held", "enum", "jurisdiction"),
        ("target.public_subject.handle", "Handle", "text", None),
        ("target.public_subject.wikidata_qid", "Wikidata item", "wikidata", None),
        ("reporter_class", "Reported by", "enum", "reporter_class"),
    ],
    "The content": [
        ("content.types", "Kind of content", "list", "content_type"),
        ("content.language", "Language", "enum", "language"),
        ("content.ref", "Where it was posted", "url", None),
        ("content.posted_at", "Posted", "time", None),
    ],
    "When and where": [
        ("flagged_at", "Flagged or detected", "time", None),
        ("decided_at", "Decided", "time", None),
        ("applied_at", "Action took effect", "time", None),
        ("territorial_scope", "Applies in", "list", "territory"),
    ],
    "The platform's statement": [
        ("statement", "Statement", "long", None),
    ],
}
APPEAL: Spec = {
    "The appeal": [
        ("channel", "Heard by", "enum", "appeal_channel"),
        ("filed_at", "Filed", "time", None),
        ("outcome", "Outcome", "enum", "appeal_outcome"),
        ("decided_at", "Decided", "time", None),
        ("new_action", "New action", "enum", "action"),
    ],
}
AMENDMENT: Spec = {"The amendment": [("reason", "Reason", "enum", "amendment_reason")]}


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every non-object value in ``obj`` by its dotted path (lists are values)."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out |= _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _row(path: str, title: str, kind: str, vocab: str | None, value: Any) -> Row:
    if kind == "enum" and vocab:
        return Row(title, "enum", label(vocab, value), path, str(value))
    if kind == "list" and vocab and isinstance(value, list):
        return Row(title, "list", [(label(vocab, v), str(v)) for v in value], path)
    if kind == "bool":
        return Row(title, "text", yes_no(value), path)
    if kind == "url" and not (isinstance(value, str) and value.startswith("https://")):
        kind = "text"
    if kind in ("wikidata", "person") and not (
        isinstance(value, str) and re.fullmatch(PATTERNS["wikidata_qid"], value)
    ):
        kind = "text"
    return Row(title, kind, value, path)


def _fill(out: list[Section], spec: Spec, obj: dict[str, Any], prefix: str = "", suffix: str = "") -> None:
    for title, fields in spec.items():
        section = Section(title + suffix)
        for path, name, kind, vocab in fields:
            value = _get(obj, path)
            if value is not None:
                section.rows.append(_row(prefix + path, name, kind, vocab, value))
        if section.rows:
            out.append(section)


def sections(record: dict[str, Any]) -> list[Section]:
    """The record's fields as sections of labelled rows; none is left out."""
    out: list[Section] = []
    kind = record.get("type")
    if kind == "appeal":
        _fill(out, APPEAL, record)
    elif kind == "amendment":
        _fill(out, AMENDMENT, record)
        corrected = record.get("corrected")
        if isinstance(corrected, dict):
            _fill(out, DECISION, corrected, "corrected.", " (as corrected)")
    else:
        _fill(out, DECISION, record)
    _fill(out, {"The record": ENVELOPE}, record)
    shown = {r.path for s in out for r in s.rows}
    rest = {p: v for p, v in _leaves(record).items() if p not in shown}
    if rest:
        rows = [Row(p, "code", json.dumps(v, ensure_ascii=False), p) for p, v in sorted(rest.items())]
        out.append(Section("Other fields", rows))
    return out


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 UTC time or a ``YYYY-MM-DD`` day as an aware datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            day = times.parse_date(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return times.parse_date_time(value)
    except InvalidInput:
        return None


def _fraction(value: Any) -> str:
    """The fraction of a second exactly as a record wrote it (``.120``), or ``""``."""
    m = re.search(r"(\.[0-9]+)Z$", value) if isinstance(value, str) else None
    return m.group(1) if m else ""


def exact(value: Any) -> str:
    """``3 March 2026, 16:20:00 UTC``; a bare day as ``2 March 2026``.
    Fractions of a second are kept as written: a signed time is shown whole."""
    dt = parse_time(value)
    if dt is None:
        return str(value)
    day = f"{dt.day} {dt.strftime('%B %Y')}"
    if isinstance(value, str) and len(value) == 10:
        return day
    return f"{day}, {dt.strftime('%H:%M:%S')}{_fraction(value)} UTC"


def day(value: Any) -> str:
    """The day alone, ``2 November 2026`` (UTC), for a line such as "reversed on appeal"."""
    dt = parse_time(value)
    return str(value) if dt is None else f"{dt.day} {dt.strftime('%B %Y')}"


def iso(value: Any) -> str:
    """For ``<time datetime>``: HTML takes at most 3 fraction digits."""
    dt = parse_time(value)
    if dt is None:
        return str(value)
    if isinstance(value, str) and len(value) == 10:
        return value
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(value)[:4] + "Z"


_UNITS = ((365 * 86400, "year"), (30 * 86400, "month"), (7 * 86400, "week"), (86400, "day"), (3600, "hour"))


def relative(value: Any, now: datetime | None = None) -> str:
    """``3 days ago``, ``in 2 hours``, ``just now``."""
    dt = parse_time(value)
    if dt is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - dt).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"
    n, unit = int(seconds // 60), "minute"
    for size, name in _UNITS:
        if seconds >= size:
            n, unit = int(seconds // size), name
            break
    text = f"{n} {unit}{'' if n == 1 else 's'}"
    return f"in {text}" if ahead else f"{text} ago"


#: Each decision field's (label, kind, vocabulary), by path, for :func:`changes`.
_DECISION_FIELDS = {path: (name, kind, vocab) for fields in DECISION.values() for path, name, kind, vocab in fields}


@dataclass(frozen=True)
class ChangedRow:
    """A field an amendment changed: its label and both values (None: not given)."""

    label: str
    before: Row | None
    after: Row | None


def _value_row(path: str, value: Any) -> Row | None:
    if value is None:
        return None
    if path in _DECISION_FIELDS:
        name, kind, vocab = _DECISION_FIELDS[path]
        return _row(path, name, kind, vocab, value)
    return Row(path, "code", json.dumps(value, ensure_ascii=False), path)


def _values(path: str, change: Change) -> tuple[Row | None, Row | None]:
    return _value_row(path, change.before), _value_row(path, change.after)


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[ChangedRow], int]:
    """What an amendment changed, as labelled rows, and how many fields it
    left unchanged; ``before`` and ``after`` are decisions (``decision_of``)."""
    result = changed_fields(before, after)
    rows = [
        ChangedRow(_DECISION_FIELDS[c.path][0] if c.path in _DECISION_FIELDS else c.path, *_values(c.path, c))
        for c in result.changed
    ]
    return rows, result.unchanged
