"""What an amendment changed: the fields of a decision whose values differ
between two versions of it.

An amendment restates the whole decision in ``corrected``, so what it
changed is the difference between that and the decision as it stood
before: the original decision, or the previous amendment's ``corrected``.
Fields are compared by their dotted JSON path (``account.class``); a list
is one value (``keywords``, ``territorial_scope``), and a field present
in one version only has ``None`` on the other side. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    """One field whose value differs; ``None`` means absent from that version."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Changes:
    """The fields that differ, in a stable order, and how many are the same."""

    changed: list[Change]
    unchanged: int


#: A record's own fields, outside the decision it states: an amendment's
#: ``corrected`` restates the decision alone, without these.
ENVELOPE = frozenset({"type", "schema_version", "platform", "record_id", "submitted_at", "refs", "dsa_sor_uuid"})


def decision_of(record: dict[str, Any]) -> dict[str, Any]:
    """The decision a decision or amendment record states: an amendment's
    ``corrected``, or a decision's fields without its envelope."""
    if record.get("type") == "amendment":
        corrected = record.get("corrected")
        return corrected if isinstance(corrected, dict) else {}
    return {k: v for k, v in record.items() if k not in ENVELOPE}


def leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every non-object value of ``obj`` by its dotted path; lists are values
    and an empty object is a value (so that its removal shows)."""
    if not isinstance(obj, dict) or (not obj and prefix):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out |= leaves(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _same(a: Any, b: Any) -> bool:
    # JSON's types, not Python's: true is not 1, and 1 is 1.0 (RFC 8785 writes both as 1).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> Changes:
    """The fields of ``after`` that differ from ``before`` (both decisions
    as JSON objects), ordered as ``after`` lists them and then the fields
    only ``before`` had; and how many fields both hold with equal values."""
    old, new = leaves(before), leaves(after)
    paths = list(new) + [p for p in old if p not in new]
    changed = [
        Change(p, old.get(p), new.get(p)) for p in paths if p not in old or p not in new or not _same(old[p], new[p])
    ]
    return Changes(changed, len(paths) - len(changed))
