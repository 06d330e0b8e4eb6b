"""Downloads of the feed: the records a feed query selects, as a file.

``GET /api/v1/feed.csv``, ``/api/v1/feed.ndjson`` and ``/api/v1/feed.parquet``
take the feed's filters (api/feed.py, without ``limit`` and ``cursor``) and
answer every matching record inside the latest checkpoint, in log order, in
the project's one records format (ledger/records/export.py: the columns of
``mirror --csv``). The file starts with its own header line (CSV) or its
first record (NDJSON), so pandas, DuckDB or a spreadsheet read it as it is;
the checkpoint it belongs to is named in ``Ledger-Checkpoint-*`` response
headers. A selection of more than :data:`ledger.query.MAX_DOWNLOAD` records
is refused, with that number in the message, rather than cut short.

``GET /api/v1/dumps`` lists the full dumps per checkpoint (ledger/dumps.py),
each file with its size, SHA-256 and URL (served by the downloads page).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify, request

from api.describe import Paths, json_answer, op, path_param, problem, query_params
from api.feed import FeedQuery, feed_of
from api.params import parse_query
from api.state import get_log
from ledger import query
from ledger.dumps import Dump, list_dumps
from ledger.errors import InvalidInput
from ledger.log import Log
from ledger.records.export import csv_header, csv_row, csv_text, ndjson_line, stored_entry, write_parquet
from ledger.storage import StoredCheckpoint

bp = Blueprint("downloads", __name__, url_prefix="/api/v1")

#: Entries read per database round trip while streaming.
BATCH = 1000
#: Each format's media type.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8; header=present",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
_DOWNLOAD_QUERY = FeedQuery(exclude=("limit", "cursor", "sort"))


def checkpoint_headers(origin: str, cp: StoredCheckpoint) -> dict[str, str]:
    """The headers naming the checkpoint a file belongs to (the signed note in base64: it spans lines)."""
    return {
        "Ledger-Checkpoint-Origin": origin,
        "Ledger-Checkpoint-Size": str(cp.size),
        "Ledger-Checkpoint-Root": base64.b64encode(cp.root).decode(),
        "Ledger-Checkpoint-Note": base64.b64encode(cp.note).decode(),
    }


def _select(log: Log, feed: query.Feed) -> tuple[StoredCheckpoint, list[int]]:
    with log.read() as s:
        cp = log.latest(s)
        indexes = query.feed_indexes(s, feed, cp.size, query.MAX_DOWNLOAD + 1)
    if len(indexes) > query.MAX_DOWNLOAD:
        raise InvalidInput(
            f"more than {query.MAX_DOWNLOAD:,} records match: a download holds at most {query.MAX_DOWNLOAD:,}; "
            "narrow the filters (e.g. logged_from and logged_to), or take a full dump (/api/v1/dumps)",
            [{"path": "", "message": f"more than {query.MAX_DOWNLOAD} records match"}],
        )
    return cp, indexes


def _entries(log: Log, indexes: list[int]) -> Iterator[tuple[int, bytes, bytes]]:
    for lo in range(0, len(indexes), BATCH):
        with log.read() as s:
            yield from query.entries_at(s, indexes[lo : lo + BATCH])


def _csv_rows(log: Log, indexes: list[int]) -> Iterator[list[str]]:
    for index, leaf, data in _entries(log, indexes):
        e = stored_entry(data)
        yield csv_row(index, leaf, e.logged_at, e.body, e.signature)


def _csv(log: Log, indexes: list[int]) -> Iterator[bytes]:
    yield csv_header().encode()
    rows: list[list[str]] = []
    for row in _csv_rows(log, indexes):
        rows.append(row)
        if len(rows) == BATCH:
            yield csv_text(rows).encode()
            rows = []
    yield csv_text(rows).encode()


def _ndjson(log: Log, indexes: list[int]) -> Iterator[bytes]:
    for index, leaf, data in _entries(log, indexes):
        yield ndjson_line(index, leaf, data)


def _parquet(log: Log, indexes: list[int]) -> bytes:
    # Parquet's footer comes last and describes everything before it, so the
    # file is built whole before the first byte is sent (bounded by MAX_DOWNLOAD).
    buf = io.BytesIO()
    write_parquet(_csv_rows(log, indexes), buf)
    return buf.getvalue()


def download(fmt: str, args: dict[str, Any]) -> Response:
    """Answer a download of the records selected by feed filters ``args`` in format ``fmt``."""
    log = get_log()
    cp, indexes = _select(log, feed_of(args))
    if fmt == "parquet":
        resp = Response(_parquet(log, indexes), mimetype=MEDIA_TYPES[fmt])
    else:
        body = _csv(log, indexes) if fmt == "csv" else _ndjson(log, indexes)
        resp = Response(body, content_type=MEDIA_TYPES[fmt])
    resp.headers.update(checkpoint_headers(log.origin, cp))
    resp.headers["Ledger-Record-Count"] = str(len(indexes))
    resp.headers["Content-Disposition"] = f'attachment; filename="records-{cp.size}.{fmt}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/feed.<any(csv, ndjson, parquet):fmt>")
def feed_download(fmt: str) -> Response:
    return download(fmt, parse_query(_DOWNLOAD_QUERY, request.args))


def dump_json(dump: Dump) -> dict[str, Any]:
    """A dump as ``GET /api/v1/dumps`` lists it."""
    return {
        "tree_size": dump.tree_size,
        "root_hash": base64.b64encode(dump.checkpoint.root).decode(),
        "signed_note": dump.note.decode(),
        "files": [
            {"name": f.name, "bytes": f.size_bytes, "sha256": f.sha256, "url": f"/downloads/{dump.tree_size}/{f.name}"}
            for f in dump.files
        ],
    }


@bp.get("/dumps")
def dumps() -> Response:
    found = list_dumps(get_log(), Path(str(current_app.config["DUMPS_DIR"])))
    resp = jsonify({"dumps": [dump_json(d) for d in found]})
    resp.headers["Cache-Control"] = "no-cache"
    return resp


#: The headers naming the checkpoint a download belongs to (``checkpoint_headers``).
CHECKPOINT_HEADERS = {
    "Ledger-Checkpoint-Origin": {"description": "The log's origin (name).", "schema": {"type": "string"}},
    "Ledger-Checkpoint-Size": {
        "description": "The tree size of the checkpoint the file names.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Ledger-Checkpoint-Root": {
        "description": "The checkpoint's root hash, base64.",
        "schema": {"type": "string", "format": "byte"},
    },
    "Ledger-Checkpoint-Note": {
        "description": "The signed checkpoint (c2sp.org/tlog-checkpoint signed note), base64: verify it with the "
        "log's verifier key to pin the file to the log.",
        "schema": {"type": "string", "format": "byte"},
    },
    "Content-Disposition": {"description": "attachment; filename=...", "schema": {"type": "string"}},
}


def paths(ma: MarshmallowPlugin) -> Paths:
    """The feed downloads and the list of full dumps."""
    params = query_params(ma, _DOWNLOAD_QUERY, {})
    fmt = path_param(
        "fmt",
        {"type": "string", "enum": ["csv", "ndjson", "parquet"]},
        "csv: RFC 4180 with a header line, the columns of ledger/records/export.py (those of mirror --csv), text "
        "that a spreadsheet would run as a formula prefixed with '; ndjson: one line per record, the log entry "
        "with index and leaf_hash spliced in (the faithful form: each line re-hashes to its leaf); parquet: the "
        "CSV's columns and cells, index as int64.",
    )
    media = {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}}
    media["application/vnd.apache.parquet"] = {"schema": {"type": "string", "format": "binary"}}
    headers = {
        **CHECKPOINT_HEADERS,
        "Ledger-Record-Count": {"description": "How many records the file holds.", "schema": {"type": "integer"}},
    }
    file = {
        "type": "object",
        "required": ["name", "bytes", "sha256", "url"],
        "properties": {
            "name": {"type": "string"},
            "bytes": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "url": {"type": "string", "description": "Where the file is served (the downloads page)."},
        },
    }
    dump = {
        "type": "object",
        "required": ["tree_size", "root_hash", "signed_note", "files"],
        "properties": {
            "tree_size": {"type": "integer", "minimum": 0},
            "root_hash": {"type": "string", "format": "byte"},
            "signed_note": {"type": "string", "description": "The signed checkpoint the files belong to."},
            "files": {"type": "array", "items": file},
        },
    }
    listing = {"type": "object", "required": ["dumps"], "properties": {"dumps": {"type": "array", "items": dump}}}
    return {
        "/api/v1/dumps": {
            "get": op(
                "Records",
                "listDumps",
                "The full dumps per signed checkpoint, with SHA-256 sums",
                "Written by the operator's flask ledger dump (ledger/dumps.py), newest first: every record as CSV "
                "and Parquet (the columns of the feed downloads), every entry as NDJSON (enough to recompute the "
                "checkpoint's root), the signed checkpoint, and SHA256SUMS over them (sha256sum -c form).",
                {"200": json_answer(listing, "The dumps, newest (largest tree) first; empty before the first.")},
            )
        },
        "/api/v1/feed.{fmt}": {
            "get": op(
                "Records",
                "downloadFeed",
                "Download the records a feed query selects, as CSV, NDJSON or Parquet",
                "Takes the filters of GET /api/v1/records (not limit or cursor) and answers every matching record "
                f"inside the latest checkpoint, in log order (oldest first), at most {query.MAX_DOWNLOAD:,}: a "
                "larger selection is refused, not cut short. The file is read as it is by pandas, DuckDB or a "
                "spreadsheet; the checkpoint it belongs to is in the Ledger-Checkpoint-* headers. Not cached.",
                {
                    "200": {"description": "The file, as an attachment.", "content": media, "headers": headers},
                    "400": problem(
                        f"Malformed, repeated or unknown parameters, or more than {query.MAX_DOWNLOAD:,} records match."
                    ),
                    "404": problem("No such format: the path ends in feed.csv, feed.ndjson or feed.parquet."),
                },
                [fmt, *params],
            )
        },
    }
