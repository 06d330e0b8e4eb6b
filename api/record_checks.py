"""The checks of a record that JSON Schema cannot state, for :mod:`api.record_validator`.

- **Characters.** Every string, field names included, is searched for the
  control characters of ``CONTROL_CHARACTERS`` and for lone surrogates,
  before anything else, so that no field, present or future, hands SQLite
  and PostgreSQL a string only one of them can store. The schema's ``text``
  pattern covers free-text values only; a field name is no value a pattern
  sees, and a lone surrogate has no portable pattern (ECMA-262 sees UTF-16
  code units, Python code points).
- **Times.** A date-time or date names a real calendar day (the schema's
  ``format`` is an annotation unless a validator opts in); no time but
  ``action_ends_at`` lies more than five minutes after ``now``, which no
  schema knows; and times are ordered (posted <= flagged <= decided <=
  applied, filed <= decided, action_ends_at after decided_at), which JSON
  Schema cannot compare.
- **Integers.** JSON Schema counts ``1.0`` as the integer 1; the ledger does
  not, because RFC 8785 would sign it as ``1``.

Pure: no I/O, no Flask, no marshmallow. Times are parsed by
:mod:`ledger.records.times`, the one RFC 3339 parser; ``parse_date`` and
``parse_date_time`` here only map its refusal to None for these checks and
for :mod:`api.record_enums`.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from ledger.errors import InvalidInput
from ledger.records import times
from ledger.records.vocab import CONTROL_CHARACTERS, PATTERNS

__all__ = [
    "FORBIDDEN_CHARACTER",
    "FUTURE_SLACK",
    "SCHEMA_VERSION_MESSAGE",
    "Times",
    "clean",
    "parse_date",
    "parse_date_time",
    "pointer_join",
    "refused_strings",
]

SCHEMA_VERSION_MESSAGE = "must be the integer 1: this is schema version 1"
COUNT_MESSAGE = "must be a whole number written without a fraction (3, not 3.0)"

#: How far past ``now`` a record's times may lie (clock skew between platform and log).
FUTURE_SLACK = timedelta(minutes=5)
#: One character no string of a record may hold: a control character of
#: ``CONTROL_CHARACTERS``, or a lone surrogate (JSON's ``"\ud800"`` parses to
#: one; it is no Unicode character and neither database can store it).
FORBIDDEN_CHARACTER = re.compile(f"[{CONTROL_CHARACTERS}\ud800-\udfff]")
# The deepest a valid record nests is 4 (corrected/exemption/policy/version);
# past this, a value is refused by its path alone, before the compiled
# validator, which stops at its own recursion limit with an exception.
_MAX_DEPTH = 32
_RX = {name: re.compile(pattern) for name, pattern in PATTERNS.items()}


def clean(record: dict[str, Any]) -> bool:
    """Whether :func:`refused_strings` finds nothing in ``record``: one pass
    that builds no path and searches all strings at once, as almost every
    record is clean (a third of the time of the full walk, measured)."""
    texts: list[str] = []
    stack: list[tuple[Any, int]] = [(record, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return False
        if isinstance(node, dict):
            texts.extend(node)
            node = node.values()
        for sub in node:
            if isinstance(sub, str):
                texts.append(sub)
            elif isinstance(sub, dict | list):
                stack.append((sub, depth + 1))
    try:
        joined = "".join(texts)
    except TypeError:  # a field name that is no string
        return False
    return FORBIDDEN_CHARACTER.search(joined) is None


def _suspects() -> list[tuple[bytes, re.Pattern[bytes]]]:
    """What a forbidden character becomes in the UTF-8 of
    ``ledger.records.entries.json_text``, grouped by its first byte: the JSON
    escape of each refused control character below U+0020 (``\\b``, ``\\f``,
    ``\\r``, ``\\u00XX``), and the UTF-8 of every other refused character but
    the lone surrogates, which do not encode at all (that text escapes
    nothing above U+001F)."""
    escapes = {json.dumps(chr(c))[1:3].encode() for c in range(0x20) if FORBIDDEN_CHARACTER.fullmatch(chr(c))}
    others = {
        chr(c).encode()
        for c in range(0x20, 0x110000)
        if not 0xD800 <= c <= 0xDFFF and FORBIDDEN_CHARACTER.fullmatch(chr(c))
    }
    leads: dict[bytes, list[bytes]] = {}
    for seq in sorted(escapes | others):
        leads.setdefault(seq[:1], []).append(seq)
    return [(lead, re.compile(b"|".join(map(re.escape, seqs)))) for lead, seqs in leads.items()]


# A regular expression over all of them scans a record's text at 6 us, a
# character class with the surrogates at 8 us; looking for each first byte
# with ``in`` (memchr) and searching only where one occurs takes 0.6 us.
_SUSPECTS = _suspects()


def clean_json(data: bytes) -> bool:
    """What :func:`clean` says of a value parsed from JSON, told from the
    UTF-8 of its ``json_text`` instead of another walk of the value: True
    only if no string holds a forbidden character and the text holds at
    most ``_MAX_DEPTH`` brackets (so nothing nests deeper). False may be
    wrong (an escaped backslash before ``b``; brackets inside strings): the
    caller then asks :func:`clean`, which is exact. A lone surrogate never
    gets here: its text does not encode."""
    if data.count(b"{") + data.count(b"[") > _MAX_DEPTH:
        return False
    return all(lead not in data or rx.search(data) is None for lead, rx in _SUSPECTS)


def refused_strings(record: dict[str, Any]) -> list[dict[str, str]]:
    """The errors of every string, key or value, at any depth, that holds a
    character of ``FORBIDDEN_CHARACTER``, of every key that is no string,
    and of values nested deeper than any record. One check for every field,
    present and future, so that SQLite and PostgreSQL are handed the same
    strings. Iterative, as JSON may nest as deep as the parser allows."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[str, int, object]] = [("", 0, record)]
    while stack:
        path, depth, value = stack.pop()
        if isinstance(value, dict | list) and depth > _MAX_DEPTH:
            errors.append({"path": path, "message": f"nested deeper than {_MAX_DEPTH} levels: no record field is"})
        elif isinstance(value, dict):
            for key, sub in value.items():
                where = pointer_join(path, key)
                if not isinstance(key, str):
                    errors.append({"path": where, "message": "the field name must be a string"})
                elif why := _forbidden_in(key):
                    errors.append({"path": where, "message": f"the field name {why}"})
                stack.append((where, depth + 1, sub))
        elif isinstance(value, list):
            stack.extend((pointer_join(path, i), depth + 1, sub) for i, sub in enumerate(value))
        elif isinstance(value, str) and (why := _forbidden_in(value)):
            errors.append({"path": path, "message": why})
    return errors


def _forbidden_in(text: str) -> str | None:
    found = FORBIDDEN_CHARACTER.search(text)
    if found is None:
        return None
    code = ord(found.group())
    where = f"U+{code:04X} at character {found.start() + 1}"
    if 0xD800 <= code <= 0xDFFF:
        return f"must not contain a lone surrogate ({where}): it is not a Unicode character"
    return f"must not contain the control character {where}; tab and line feed are the only ones allowed"


def parse_date(value: str) -> date | None:
    """The day of a string that matches ``PATTERNS["date"]`` or ``["date_time"]``; None if no such day exists."""
    try:
        return times.parse_date(value[:10])
    except InvalidInput:
        return None


def parse_date_time(value: str) -> datetime | None:
    """The UTC time of a string that matches ``PATTERNS["date_time"]``; None if its day does not exist."""
    try:
        return times.parse_date_time(value)
    except InvalidInput:
        return None


def _time_fields(body: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], str, str, bool], ...]:
    """The times of a decision body at ``body``: (object keys, field, path, may lie in the future)."""
    at = "/".join(body) + "/" if body else ""
    fields = tuple((body, name, at + name, name == "action_ends_at") for name in _BODY_TIMES)
    return (*fields, ((*body, "content"), "posted_at", at + "content/posted_at", False))


_BODY_TIMES = ("flagged_at", "decided_at", "applied_at", "action_ends_at")
_ENVELOPE_TIME = ((), "submitted_at", "submitted_at", False)
_TIME_FIELDS = {
    "decision": (_ENVELOPE_TIME, *_time_fields(())),
    "appeal": (_ENVELOPE_TIME, ((), "filed_at", "filed_at", False), ((), "decided_at", "decided_at", False)),
    "amendment": (_ENVELOPE_TIME, *_time_fields(("corrected",))),
    "coverage": (_ENVELOPE_TIME,),
}


class Times:
    """The checks on times that JSON Schema cannot state: a real day, not in
    the future, and in order. ``check`` parses and bounds each time that has
    its schema form; ``order`` compares them, once the record is otherwise valid."""

    def __init__(self, now: datetime, *, formed: bool) -> None:
        """``formed``: the schema found no error, so every time present has its form."""
        self.limit = now + FUTURE_SLACK
        self.formed = formed
        self.parsed: dict[str, date] = {}

    def check(self, record: dict[str, Any], kind: str) -> list[tuple[str, str]]:
        errors = []
        if type(record.get("schema_version")) is float:
            errors.append(("schema_version", SCHEMA_VERSION_MESSAGE))
        if kind == "coverage":
            errors += [(path, COUNT_MESSAGE) for path in float_counts(record)]
        for keys, name, path, future_ok in _TIME_FIELDS[kind]:
            node: Any = record
            for key in keys:
                node = node.get(key) if isinstance(node, dict) else None
            value = node.get(name) if isinstance(node, dict) else None
            if isinstance(value, str) and (why := self._one(value, path, name == "posted_at", future_ok)):
                errors.append((path, why))
        return errors

    def _one(self, value: str, path: str, date_ok: bool, future_ok: bool) -> str | None:
        when: date | None
        if self.formed:  # the schema's patterns: a date is 10 characters, a date-time 20 or more
            when = parse_date(value) if len(value) == 10 else parse_date_time(value)
        elif _RX["date_time"].fullmatch(value):
            when = parse_date_time(value)
        elif date_ok and _RX["date"].fullmatch(value):
            when = parse_date(value)
        else:
            return None  # the schema has told this value its form
        if when is None:
            return "is not a real calendar date"
        self.parsed[path] = when
        if not future_ok and when > (self.limit if isinstance(when, datetime) else self.limit.date()):
            return "must not be more than 5 minutes in the future"
        return None

    def order(self, kind: str) -> list[tuple[str, str]]:
        """posted <= flagged <= decided <= applied; action_ends_at > decided; filed <= decided."""
        t = self.parsed
        if kind == "coverage":
            return []
        if kind == "appeal":
            decided = t.get("decided_at")
            return [("decided_at", "must not be before filed_at")] if decided and decided < t["filed_at"] else []
        p = "" if kind == "decision" else "corrected/"
        posted, flagged, decided = t[p + "content/posted_at"], t[p + "flagged_at"], t[p + "decided_at"]
        errors = []
        # An ordinary user's posting day compares with the UTC day of flagged_at.
        if posted > (flagged if isinstance(posted, datetime) else _day(flagged)):
            errors.append((p + "flagged_at", "must not be before content/posted_at"))
        if decided < flagged:
            errors.append((p + "decided_at", "must not be before flagged_at"))
        applied, ends = t.get(p + "applied_at"), t.get(p + "action_ends_at")
        if applied is not None and applied < decided:
            errors.append((p + "applied_at", "must not be before decided_at"))
        if ends is not None and ends <= decided:
            errors.append((p + "action_ends_at", "must be after decided_at"))
        return errors


def _day(when: date) -> date:
    return when.date() if isinstance(when, datetime) else when


def float_counts(record: dict[str, Any]) -> list[str]:
    """The paths of a coverage statement's counts written as floats: JSON Schema
    counts 3.0 as an integer, the ledger does not (as for schema_version)."""
    counts = record.get("counts")
    out = []
    for cls, actions in counts.items() if isinstance(counts, dict) else ():
        for action, split in actions.items() if isinstance(actions, dict) else ():
            for half, n in split.items() if isinstance(split, dict) else ():
                if type(n) is float:
                    out.append(pointer_join(pointer_join(pointer_join("counts", cls), action), half))
    return out


def pointer_join(path: str, key: object) -> str:
    """Append one key to a path, escaped as RFC 6901 says."""
    if isinstance(key, str):
        name = key.replace("~", "~0").replace("/", "~1")
    elif isinstance(key, int) and key.bit_length() < 64:  # a list index
        name = str(key)
    else:  # not JSON: only a Python caller can build such a key
        name = "?"
    return f"{path}/{name}" if path else name
