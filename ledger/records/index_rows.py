"""The feed's index row of a record: pure, so that the client recomputes the
statistics from a mirror with the very function the server indexes with,
without loading a database driver.

The sequencer writes these rows (ledger/derived.py), the statistics read
their columns (ledger/evenness/facts.py), and the audit derives them again.
"""

from __future__ import annotations

from typing import Any

from ledger.records.times import day_or_time_ms
from ledger.records.vocab import POLITICAL_CLASSES


def time_ms(value: Any) -> int | None:
    """Milliseconds since the epoch of a schema-valid time or date.

    Exact integer arithmetic on the timedelta (fraction digits beyond the
    millisecond are dropped), so no float rounding needs arguing about: the
    evenness statistics subtract these to get times to decision.
    """
    return day_or_time_ms(value) if isinstance(value, str) else None


#: The columns of ``record_index`` (ledger/db.py), in its order (since
#: migration 0012_codes, the order that pads least); a test keeps the two equal.
INDEX_COLUMNS = (
    "leaf_index",
    "logged_at_ms",
    "decided_at_ms",
    "flagged_at_ms",
    "type",
    "account_class",
    "category",
    "severity",
    "action",
    "exemption_type",
    "review_path",
    "interim_state",
    "detection_source",
    "automated_decision",
    "appeal_outcome",
    "target_class",
    "reporter_class",
    "abuse_kind",
    "political",
    "violation_found",
    "exemption_applied",
    "platform",
    "record_id",
    "ref_record_id",
    "subject_key",
    "display_name",
    "rule_id",
    "rule_version",
    "territories",
    "qid",
    "search_text",
)


def person_qid(body: dict[str, Any]) -> str | None:
    """The Wikidata item of the person or body whose account a decision
    (or an amendment's ``corrected``) acted on, if the platform gave one.

    The account's, not a protection record's ``target``: the feed's person
    view counts what platforms did to a person's own accounts, and a
    removal of their post must not add up with the removal of a threat
    aimed at them. The index keeps no more of a target than its class
    (docs/records.md, "Protection fields"); a target's item stays in the
    entry, where the record page shows it.
    """
    subject = (body.get("account") or {}).get("public_subject") or {}
    qid = subject.get("wikidata_qid")
    return qid if isinstance(qid, str) else None


def index_row(leaf_index: int, logged_at_ms: int, record: dict[str, Any]) -> dict[str, Any]:
    """Return the index row of a schema-valid record (every column present)."""
    row: dict[str, Any] = dict.fromkeys(INDEX_COLUMNS)
    row |= {
        "leaf_index": leaf_index,
        "platform": record["platform"],
        "type": record["type"],
        "record_id": record["record_id"],
        "ref_record_id": (record.get("refs") or {}).get("record_id"),
        "logged_at_ms": logged_at_ms,
    }
    body = record.get("corrected") if record["type"] == "amendment" else record
    if record["type"] == "appeal":
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        row["appeal_outcome"] = record.get("outcome")
        return row
    if record["type"] == "coverage":  # a statement about a month: no account, no decision time
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        row["rule_id"] = (record.get("rule") or {}).get("id")
        return row
    if not isinstance(body, dict):
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        return row
    # A decision's or amendment's decided_at_ms is its body's, set below
    # (parsing it once: index rows are written for every record).
    account = body.get("account", {})
    subject = account.get("public_subject") or {}
    exemption = body.get("exemption") or {}
    rule = body.get("rule", {})
    # Only the classes: a public target's name stays in the entry, where the
    # record page shows it, and out of the index the feed filters.
    target = body.get("target") or {}
    row.update(
        decided_at_ms=time_ms(body.get("decided_at")),
        flagged_at_ms=time_ms(body.get("flagged_at")),
        account_class=account.get("class"),
        political=account.get("class") in POLITICAL_CLASSES,
        subject_key=account.get("subject_key"),
        display_name=subject.get("display_name"),
        rule_id=rule.get("id"),
        rule_version=rule.get("version"),
        category=body.get("category"),
        severity=body.get("severity"),
        action=body.get("action"),
        violation_found=body.get("violation_found"),
        exemption_applied=exemption.get("applied") if exemption else None,
        exemption_type=exemption.get("type"),
        review_path=body.get("review_path"),
        interim_state=body.get("interim_state"),
        detection_source=body.get("detection_source"),
        automated_decision=body.get("automated_decision"),
        target_class=target.get("class"),
        reporter_class=body.get("reporter_class"),
        abuse_kind=rule.get("abuse"),
        # The account's person, never the target's: see :func:`person_qid`.
        qid=person_qid(body),
        territories="," + ",".join(body.get("territorial_scope", [])) + ",",
        search_text=" ".join(
            str(x)
            for x in (subject.get("display_name"), subject.get("office"), subject.get("handle"), body.get("statement"))
            if x
        ).lower()
        or None,
    )
    return row
