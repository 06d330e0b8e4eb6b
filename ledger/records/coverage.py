"""Coverage statements: what a platform declares it decided, parsed and built.

A coverage statement (``"type": "coverage"``, docs/records.md, "Coverage
fields") says how many decisions a platform took under one rule in one
calendar month (UTC), per account class, action and whether an exemption
was applied. The record is checked against the JSON Schema when it is
submitted; this module reads a schema-valid statement into a
:class:`Statement`, writes the canonical form of its counts (the derived
table ``coverage_statements`` stores that text, and the audit compares it),
and builds a statement from a month's records (:func:`build_statement`,
for the platform client).

A decision falls in a statement's cell by the decision *as last amended*:
its ``decided_at`` month (UTC), ``rule.id``, ``account.class``, ``action``,
and ``exemption.applied`` (a decision without an exemption object, no
violation found, counts as ``not_exempted``).

Pure: no I/O, no database, no Flask or marshmallow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.errors import InvalidInput
from ledger.records.vocab import ACCOUNT_CLASSES, ACTIONS, COVERAGE_COUNT_MAX, COVERAGE_CRITERIA, PATTERNS

#: (account class, action, exempted) -> decisions
Counts = dict[tuple[str, str, bool], int]
#: The halves of a class-and-action count, as the record names them.
HALVES = {"exempted": True, "not_exempted": False}


@dataclass(frozen=True)
class Statement:
    """One logged coverage statement. ``supersedes`` is the record id of the
    earlier statement it replaces, if any; ``leaf_index`` where it was logged."""

    platform: str
    record_id: str
    leaf_index: int
    period: str
    rule_id: str
    criterion: str
    counts: Mapping[tuple[str, str, bool], int]
    supersedes: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(PATTERNS["month"], self.period):
            raise InvalidInput(f"coverage statement {self.record_id!r}: period must be YYYY-MM")
        if self.criterion not in COVERAGE_CRITERIA:
            raise InvalidInput(f"coverage statement {self.record_id!r}: unknown criterion {self.criterion!r}")
        for (cls, action, _), n in self.counts.items():
            if cls not in ACCOUNT_CLASSES or action not in ACTIONS:
                raise InvalidInput(f"coverage statement {self.record_id!r}: unknown cell {cls}/{action}")
            if type(n) is not int or not 0 <= n <= COVERAGE_COUNT_MAX:
                raise InvalidInput(f"coverage statement {self.record_id!r}: count of {cls}/{action} out of range")

    def covers(self, account_class: str) -> bool:
        """Whether the statement declares ``account_class``'s decisions.

        ``all_decisions`` counts every class, so a class it leaves out
        declares none; the other criteria count only the classes they list.
        """
        return self.criterion == "all_decisions" or any(c == account_class for c, _, _ in self.counts)

    def declared(self, account_class: str) -> Counts:
        """The class's declared counts by (class, action, exempted), zeros left out."""
        return {k: n for k, n in self.counts.items() if k[0] == account_class and n}


def parse_statement(record: Mapping[str, Any], leaf_index: int) -> Statement:
    """Read a schema-valid coverage record logged at ``leaf_index``."""
    if record.get("type") != "coverage":
        raise InvalidInput("not a coverage statement")
    refs = record.get("refs")
    return Statement(
        platform=record["platform"],
        record_id=record["record_id"],
        leaf_index=leaf_index,
        period=record["period"],
        rule_id=record["rule"]["id"],
        criterion=record["inclusion"]["criterion"],
        counts=counts_of(record["counts"]),
        supersedes=refs["record_id"] if isinstance(refs, Mapping) else None,
    )


def counts_of(nested: Mapping[str, Mapping[str, Mapping[str, int]]]) -> Counts:
    """``{"legislator": {"label": {"exempted": 3}}}`` as ``{("legislator", "label", True): 3}``."""
    return {
        (cls, action, HALVES[half]): n
        for cls, actions in nested.items()
        for action, split in actions.items()
        for half, n in split.items()
    }


def nested_counts(counts: Mapping[tuple[str, str, bool], int]) -> dict[str, dict[str, dict[str, int]]]:
    """The inverse of :func:`counts_of`, in the vocabularies' order."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for cls in ACCOUNT_CLASSES:
        for action in ACTIONS:
            for half, exempted in HALVES.items():
                if (cls, action, exempted) in counts:
                    out.setdefault(cls, {}).setdefault(action, {})[half] = counts[(cls, action, exempted)]
    return out


def counts_text(counts: Mapping[tuple[str, str, bool], int]) -> str:
    """The counts as compact JSON with sorted keys: the derived table's column."""
    return json.dumps(nested_counts(counts), sort_keys=True, separators=(",", ":"))


def month_of(ms: int) -> str:
    """The calendar month (UTC) of a time in milliseconds since the epoch, ``YYYY-MM``."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m")


def decision_cell(body: Mapping[str, Any]) -> tuple[str, str, str, str, bool]:
    """(month, rule id, class, action, exempted) of a decision body (a decision, or an amendment's ``corrected``)."""
    exemption = body.get("exemption") or {}
    decided = datetime.fromisoformat(body["decided_at"].replace("Z", "+00:00"))
    return (
        decided.astimezone(UTC).strftime("%Y-%m"),
        body["rule"]["id"],
        body["account"]["class"],
        body["action"],
        exemption.get("applied") is True,
    )


def build_statement(
    records: Iterable[Mapping[str, Any]],
    *,
    platform: str,
    record_id: str,
    period: str,
    rule_id: str,
    submitted_at: str,
    description: str,
    criterion: str = "listed_classes",
    totals: Mapping[tuple[str, str, bool], int] | None = None,
    supersedes: str | None = None,
) -> dict[str, Any]:
    """Build an unsigned coverage statement for (``platform``, ``period``, ``rule_id``).

    ``records`` are the platform's own records (decisions and amendments;
    an amendment replaces the decision it names, as the ledger reads them).
    The counts are the platform's ``totals`` when given (what it really
    decided, from its own systems); otherwise those of ``records``, which
    only states what the platform logged. Raises :class:`InvalidInput` if
    the totals are below what the records themselves show: such a statement
    would be contradicted by the log the moment both are in it.
    """
    current: dict[str, Mapping[str, Any]] = {}
    for r in records:
        if r.get("platform") != platform:
            continue
        if r.get("type") == "decision":
            current.setdefault(r["record_id"], r)
        elif r.get("type") == "amendment" and r["refs"]["record_id"] in current:
            current[r["refs"]["record_id"]] = r["corrected"]
    logged: Counts = {}
    for body in current.values():
        month, rule, cls, action, exempted = decision_cell(body)
        if month == period and rule == rule_id:
            logged[(cls, action, exempted)] = logged.get((cls, action, exempted), 0) + 1
    counts = dict(totals) if totals is not None else logged
    short = {k: n for k, n in logged.items() if counts.get(k, 0) < n}
    if short:
        (cls, action, exempted), n = sorted(short.items())[0]
        half = "exempted" if exempted else "not_exempted"
        raise InvalidInput(
            f"the totals declare {counts.get((cls, action, exempted), 0)} {cls}/{action}/{half} decisions "
            f"but the records hold {n}: the statement would be contradicted"
        )
    if not any(counts.values()) and criterion != "all_decisions":
        raise InvalidInput("no decisions to declare: a statement with listed classes must list at least one")
    statement: dict[str, Any] = {
        "type": "coverage",
        "schema_version": 1,
        "platform": platform,
        "record_id": record_id,
        "submitted_at": submitted_at,
        "period": period,
        "rule": {"id": rule_id},
        "inclusion": {"criterion": criterion, "description": description},
        "counts": nested_counts(counts) or {"ordinary_user": {"none": {"not_exempted": 0}}},
    }
    if supersedes is not None:
        statement["refs"] = {"record_id": supersedes}
    return statement
