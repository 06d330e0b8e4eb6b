"""Bulk export formats: NDJSON and CSV lines for log entries. Pure.

NDJSON: the first line is a header naming the checkpoint the file belongs
to; then one line per entry::

    {"index": 7, "leaf_hash": "<base64>", "logged_at": "...", "record": {...}, "signature": {...}}

(registry entries carry ``"registry"`` instead of ``"record"``). Anyone can
recompute each leaf hash from the line (the entry is the RFC 8785 form of
the object without ``index`` and ``leaf_hash``) and check it against the
stated checkpoint. Each line is itself RFC 8785 JSON: the stored entry's
bytes with ``index`` and ``leaf_hash``, which sort first, spliced in front.

CSV, one definition for every CSV of records the project writes (this
export and the client's ``mirror --csv`` and ``--parquet``): RFC 4180 with
CRLF line ends, one flat row per *record* (registry entries are left out),
the columns of :data:`CSV_COLUMNS` in that order (:func:`csv_row` computes
them from an entry). Nested fields are named by their dotted path
(``account.public_subject.office``); an amendment's corrected decision sits
under ``corrected.``; an appeal's fields (``channel``, ``filed_at``,
``outcome``, ``new_action``, and ``decided_at``) share the columns of the
same names; lists of strings are joined with ``;``; booleans are
``true``/``false``; absent fields are empty; any field the list does not
name goes, as RFC 8785 JSON, into the last column, ``extra``. The first
line is the header, so that pandas, DuckDB or a spreadsheet read the file
as it is; the checkpoint a file belongs to travels beside it (HTTP
``Ledger-Checkpoint-*`` headers, a ``.checkpoint`` file, the dump's
listing), never inside it. Parquet (:func:`write_parquet`, with pyarrow)
holds the same columns and cells, ``index`` as int64 and the rest strings.

Cells are safe to open in a spreadsheet, decided by the JSON type of the
value: *text* (a JSON string, or a list of strings joined) that begins with
``=``, ``+``, ``-``, ``@``, tab, carriage return or ``'`` is prefixed with
``'`` (:func:`safe_cell`, after OWASP's "CSV Injection"), so
``-1`` from a platform reads ``'-1`` and the base64 ``+AB…`` reads
``'+AB…``. *Numbers* (``index``, ``schema_version``) are written as they
are: a spreadsheet reads ``-1`` there as the number it is. Objects and other
lists are RFC 8785 JSON and begin with ``{`` or ``[``. To get a text value
back, remove one leading ``'`` if there is one. The dashboard's chart CSVs
follow the same rule. NDJSON stays the faithful form: it carries the
signed bytes, which the CSV only flattens.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ledger.records.entries import Entry, canonical

FORMAT_VERSION = 1

# The decision fields of docs/records.md, in its order.
DECISION_COLUMNS = (
    *("rule.id", "rule.version", "rule.url", "rule.abuse", "decision_ground", "legal_reference", "category"),
    "keywords",
    *("severity", "violation_found", "action", "action_ends_at", "exemption.applied", "exemption.type"),
    *("exemption.policy.id", "exemption.policy.version", "review_path", "interim_state", "detection_source"),
    *("automated_detection", "automated_decision", "state_involvement", "account.class", "account.class_basis"),
    *("account.subject_key", "account.follower_bucket", "account.public_subject.display_name"),
    *("account.public_subject.wikidata_qid", "account.public_subject.office"),
    *("account.public_subject.jurisdiction", "account.public_subject.handle", "target.class"),
    *("target.public_subject.display_name", "target.public_subject.wikidata_qid", "target.public_subject.office"),
    *("target.public_subject.jurisdiction", "target.public_subject.handle", "reporter_class", "content.types"),
    *("content.language", "content.ref", "content.posted_at", "flagged_at", "decided_at", "applied_at"),
    *("territorial_scope", "statement"),
)
#: Every CSV column, in order: the log's fields, the envelope, decision,
#: appeal and amendment fields of docs/records.md, the signature, then
#: ``extra``. Files are read by header name; a field the schema gains gets
#: its column (tests/client/test_auditor.py holds the columns to the schema),
#: and ``extra`` holds what a newer schema adds that this reader does not know.
CSV_COLUMNS = (
    *("index", "leaf_hash", "logged_at", "type", "schema_version", "platform", "record_id", "submitted_at"),
    *("refs.record_id", "dsa_sor_uuid", *DECISION_COLUMNS, "channel", "filed_at", "outcome", "new_action"),
    *("reason", *(f"corrected.{c}" for c in DECISION_COLUMNS)),
    *("period", "inclusion.criterion", "inclusion.description", "counts"),
    *("signature.key_id", "signature.alg", "signature.value", "extra"),
)


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
    hashed (``ledger.records.entries.entry_bytes``), and ``ledger audit`` rechecks
    them; a reader of bytes from anywhere else uses ``parse_entry``.
    """
    obj = json.loads(data)
    kind = "record" if "record" in obj else "registry"
    return Entry(obj["logged_at"], kind, obj[kind], obj["signature"])


#: A cell beginning with one of these opens as a formula in a spreadsheet
#: (OWASP, "CSV Injection"); ``'`` is added so that the prefix is undone exactly.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def safe_cell(text: str) -> str:
    """The text of a CSV cell, made to open as text: prefixed with ``'`` if
    it begins with ``= + - @``, tab, carriage return or ``'`` (OWASP's
    CSV-injection advice). Removing one leading ``'`` gives back ``text``."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _cell(value: Any) -> str:
    if type(value) is str:  # most cells: the common case first
        return safe_cell(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)  # a JSON integer is a number to a spreadsheet too, "-1" included
    if isinstance(value, list) and all(type(v) is str for v in value):
        return safe_cell(";".join(value))
    return canonical(value).decode()  # an object or other list begins with { or [; a float is a number


#: Columns whose cell is one JSON object rather than a column per field: a
#: coverage statement's ``counts`` (class, then action, then exemption) would
#: need a column for every combination.
JSON_COLUMNS = frozenset({"counts"})


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    for k, v in obj.items():
        if isinstance(v, dict) and v and prefix + k not in JSON_COLUMNS:
            _flatten(v, f"{prefix}{k}.", out)
        else:
            out[prefix + k] = v
    return out


def csv_row(
    index: int, leaf_hash: bytes, logged_at: str, record: dict[str, Any], signature: dict[str, Any]
) -> list[str]:
    """One record entry as CSV cells, in the order of :data:`CSV_COLUMNS`."""
    fields = _flatten(record, "", {"leaf_hash": base64.b64encode(leaf_hash).decode(), "logged_at": logged_at})
    fields = _flatten(signature, "signature.", fields)
    cells = [str(index)] + [_cell(fields.pop(c, None)) for c in CSV_COLUMNS[1:-1]]
    return [*cells, canonical(fields).decode() if fields else ""]


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """RFC 4180 lines (CRLF) of cells already made safe; every CSV writer of the project uses this."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def csv_header() -> str:
    """The header line of every records CSV: :data:`CSV_COLUMNS`."""
    return csv_text([CSV_COLUMNS])


def require_pyarrow() -> Any:
    """pyarrow, imported on first use: only Parquet needs it (``pip install pyarrow``)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError("Parquet needs pyarrow, which is not installed (pip install pyarrow)") from None
    return pyarrow


def write_parquet(rows: Iterable[Sequence[str]], where: Any, batch: int = 10_000) -> int:
    """Write CSV rows (:func:`csv_row`) to Parquet at ``where`` (a path or a
    binary file), in row groups of ``batch``; return the number of rows."""
    pa = require_pyarrow()
    schema = pa.schema([(c, pa.int64() if c == "index" else pa.string()) for c in CSV_COLUMNS])
    n = 0
    with pa.parquet.ParquetWriter(where, schema) as w:
        chunk: list[Sequence[str]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == batch:
                n += _write_row_group(pa, w, schema, chunk)
        n += _write_row_group(pa, w, schema, chunk)
        if not n:
            w.write_table(schema.empty_table())
    return n


def _write_row_group(pa: Any, w: Any, schema: Any, chunk: list[Sequence[str]]) -> int:
    if not chunk:
        return 0
    cols = list(zip(*chunk, strict=True))
    arrays = [pa.array([int(v) for v in cols[0]], pa.int64())] + [pa.array(c, pa.string()) for c in cols[1:]]
    w.write_table(pa.Table.from_arrays(arrays, schema=schema))
    n = len(chunk)
    chunk.clear()
    return n
