"""Bulk export formats: NDJSON and CSV lines for log entries. Pure.

NDJSON: the first line is a header naming the checkpoint the file belongs
to; then one line per entry::

    {"index": 7, "leaf_hash": "<base64>", "logged_at": "...", "record": {...}, "signature": {...}}

(registry entries carry ``"registry"`` instead of ``"record"``). Anyone can
recompute each leaf hash from the line (the entry is the RFC 8785 form of
the object without ``index`` and ``leaf_hash``) and check it against the
stated checkpoint. Each line is itself RFC 8785 JSON: the stored entry's
bytes with ``index`` and ``leaf_hash``, which sort first, spliced in front.

CSV: one flat row per *record* (registry entries are left out), after a
first line ``# checkpoint: <origin> <tree size> <base64 root>``. Nested
fields become dotted column names (``account.public_subject.display_name``)
in the fixed order of :data:`CSV_COLUMNS`; lists are joined with ``;``;
absent fields are empty; booleans are ``true``/``false``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

from ledger.records import Entry

FORMAT_VERSION = 1

_DECISION = [
    "rule.id",
    "rule.version",
    "rule.url",
    "decision_ground",
    "legal_reference",
    "category",
    "keywords",
    "severity",
    "violation_found",
    "action",
    "action_ends_at",
    "exemption.applied",
    "exemption.type",
    "exemption.policy.id",
    "exemption.policy.version",
    "review_path",
    "interim_state",
    "detection_source",
    "automated_detection",
    "automated_decision",
    "state_involvement",
    "account.class",
    "account.class_basis",
    "account.subject_key",
    "account.follower_bucket",
    "account.public_subject.display_name",
    "account.public_subject.wikidata_qid",
    "account.public_subject.office",
    "account.public_subject.jurisdiction",
    "account.public_subject.handle",
    "content.types",
    "content.language",
    "content.ref",
    "content.posted_at",
    "flagged_at",
    "decided_at",
    "applied_at",
    "territorial_scope",
    "statement",
]

#: Every CSV column, in order. Amendments fill the decision columns from
#: ``corrected``; appeals fill the ``appeal.*`` columns.
CSV_COLUMNS: list[str] = [
    "index",
    "leaf_hash",
    "logged_at",
    "signature.key_id",
    "signature.value",
    "type",
    "schema_version",
    "platform",
    "record_id",
    "submitted_at",
    "refs.record_id",
    "dsa_sor_uuid",
    *_DECISION,
    "appeal.channel",
    "appeal.filed_at",
    "appeal.decided_at",
    "appeal.outcome",
    "appeal.new_action",
    "amendment.reason",
]


def header_line(origin: str, tree_size: int, root: bytes, note: bytes, start: int, end: int) -> str:
    head = {
        "format": "mdl-export",
        "format_version": FORMAT_VERSION,
        "checkpoint": {
            "origin": origin,
            "tree_size": tree_size,
            "root_hash": base64.b64encode(root).decode(),
            "signed_note": note.decode(),
        },
        "start": start,
        "end": end,
    }
    return json.dumps(head, ensure_ascii=False, separators=(",", ":")) + "\n"


def ndjson_line(index: int, leaf_hash: bytes, entry: bytes) -> bytes:
    """The line of a stored entry (RFC 8785 bytes, as the log wrote them).

    The entry is neither parsed nor re-encoded: removing ``index`` and
    ``leaf_hash`` from the line gives back exactly the bytes that were hashed.
    """
    if not entry.startswith(b'{"logged_at":'):
        raise AssertionError(f"entry {index} as stored is not a ledger entry")
    return b'{"index":%d,"leaf_hash":"%s",%s\n' % (index, base64.b64encode(leaf_hash), entry[1:])


def stored_entry(data: bytes) -> Entry:
    """Parse an entry the log itself stored, without re-proving it canonical.

    The sequencer and the registry build entries canonical before they are
    hashed (``ledger.records.entry_bytes``), and ``ledger audit`` rechecks
    them; a reader of bytes from anywhere else uses ``parse_entry``.
    """
    obj = json.loads(data)
    kind = "record" if "record" in obj else "registry"
    return Entry(obj["logged_at"], kind, obj[kind], obj["signature"])


_PATHS = {c: tuple(c.split(".")) for c in CSV_COLUMNS}


def _get(obj: Any, dotted: str) -> Any:
    for part in _PATHS[dotted]:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _cell(value: Any) -> str:
    if type(value) is str:  # most cells: the common case first
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_cell(v) for v in value)
    return str(value)


def flatten(index: int, leaf_hash: bytes, entry: Entry) -> list[str]:
    """One CSV row (values for :data:`CSV_COLUMNS`) for a record entry."""
    rec = entry.body
    body = rec.get("corrected") if rec.get("type") == "amendment" else rec
    row: dict[str, Any] = {
        "index": index,
        "leaf_hash": base64.b64encode(leaf_hash).decode(),
        "logged_at": entry.logged_at,
        "signature.key_id": entry.signature.get("key_id"),
        "signature.value": entry.signature.get("value"),
    }
    for col in CSV_COLUMNS[5:12]:
        row[col] = _get(rec, col)
    if rec.get("type") != "appeal":
        for col in _DECISION:
            row[col] = _get(body, col)
    else:
        for col in ("channel", "filed_at", "decided_at", "outcome", "new_action"):
            row[f"appeal.{col}"] = rec.get(col)
    row["amendment.reason"] = rec.get("reason") if rec.get("type") == "amendment" else None
    return [_cell(row.get(c)) for c in CSV_COLUMNS]


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def csv_preamble(origin: str, tree_size: int, root: bytes) -> str:
    return f"# checkpoint: {origin} {tree_size} {base64.b64encode(root).decode()}\n" + csv_text([CSV_COLUMNS])
