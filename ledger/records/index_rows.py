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


#: The columns of a ``record_index`` row taken from its entry rather than
#: its record: the record's hash and its signing key (migration
#: 0015_fold_records; ``ledger.derived.record_rows`` adds them).
ENTRY_COLUMNS = ("record_hash", "key_id")

#: A row of None in every column: the start of each kind's row.
_BLANK: dict[str, Any] = dict.fromkeys(INDEX_COLUMNS)
#: Stands for a missing optional object; read, never written.
_NONE: dict[str, Any] = {}


def index_row(leaf_index: int, logged_at_ms: int, record: dict[str, Any]) -> dict[str, Any]:
    """Return the index row of a schema-valid record (every column present, in
    :data:`INDEX_COLUMNS` order).

    Every record's row is built here on the submission path and again by the
    audit, so it is one dict display a kind, each optional object looked up
    once (tests/ledger/records/test_index_rows.py keeps it equal, column for
    column, to the plain definition it replaced, on generated records).
    """
    platform = record["platform"]
    kind = record["type"]
    record_id = record["record_id"]
    ref_record_id = (record.get("refs") or _NONE).get("record_id")
    body = record.get("corrected") if kind == "amendment" else record
    if kind == "appeal" or kind == "coverage" or not isinstance(body, dict):
        row = _BLANK.copy()
        row["leaf_index"] = leaf_index
        row["platform"] = platform
        row["type"] = kind
        row["record_id"] = record_id
        row["ref_record_id"] = ref_record_id
        row["logged_at_ms"] = logged_at_ms
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        if kind == "appeal":
            row["appeal_outcome"] = record.get("outcome")
        elif kind == "coverage":  # a statement about a month: no account, no decision time
            row["rule_id"] = (record.get("rule") or _NONE).get("id")
        return row
    # A decision's or amendment's decided_at_ms is its body's.
    account = body.get("account", _NONE)
    subject = account.get("public_subject") or _NONE
    exemption = body.get("exemption") or _NONE
    rule = body.get("rule", _NONE)
    # Only the classes: a public target's name stays in the entry, where the
    # record page shows it, and out of the index the feed filters.
    target = body.get("target") or _NONE
    # In the order the plain definition read them, so that a record the
    # schema refuses fails here as it did (which problem is named first).
    decided_at = body.get("decided_at")
    decided_at_ms = day_or_time_ms(decided_at) if isinstance(decided_at, str) else None
    flagged_at = body.get("flagged_at")
    flagged_at_ms = day_or_time_ms(flagged_at) if isinstance(flagged_at, str) else None
    account_class = account.get("class")
    display_name = subject.get("display_name")
    rule_id = rule.get("id")
    exemption_applied = exemption.get("applied") if exemption else None
    target_class = target.get("class")
    territories = "," + ",".join(body.get("territorial_scope", ())) + ","
    # person_qid(body), inline: ``account`` is a dict here, so its subject is ``subject``.
    qid = subject.get("wikidata_qid")
    words = [str(x) for x in (display_name, subject.get("office"), subject.get("handle"), body.get("statement")) if x]
    return {
        "leaf_index": leaf_index,
        "logged_at_ms": logged_at_ms,
        "decided_at_ms": decided_at_ms,
        "flagged_at_ms": flagged_at_ms,
        "type": kind,
        "account_class": account_class,
        "category": body.get("category"),
        "severity": body.get("severity"),
        "action": body.get("action"),
        "exemption_type": exemption.get("type"),
        "review_path": body.get("review_path"),
        "interim_state": body.get("interim_state"),
        "detection_source": body.get("detection_source"),
        "automated_decision": body.get("automated_decision"),
        "appeal_outcome": None,
        "target_class": target_class,
        "reporter_class": body.get("reporter_class"),
        "abuse_kind": rule.get("abuse"),
        "political": account_class in POLITICAL_CLASSES,
        "violation_found": body.get("violation_found"),
        "exemption_applied": exemption_applied,
        "platform": platform,
        "record_id": record_id,
        "ref_record_id": ref_record_id,
        "subject_key": account.get("subject_key"),
        "display_name": display_name,
        "rule_id": rule_id,
        "rule_version": rule.get("version"),
        "territories": territories,
        # The account's person, never the target's: see :func:`person_qid`.
        "qid": qid if isinstance(qid, str) else None,
        "search_text": " ".join(words).lower() or None,
    }
