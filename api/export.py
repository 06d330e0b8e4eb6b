"""Bulk downloads: gzip-compressed NDJSON or CSV of a range of log entries.

``GET /api/v1/export?start=&end=&format=ndjson|csv|dsa-csv`` streams entries
[start, end), at most ``MAX_RANGE`` per request. Every file names the
checkpoint it belongs to: the *smallest* signed checkpoint covering
``end``, so the bytes of a file for a given range never change, and a
request that names its ``end`` is served as immutable. Downloads therefore
cache and resume by range; corrections arrive as new entries, never as
rewritten files. ``/api/v1/export/bundles/<N>.<format>.gz`` is the same for
the 256 entries of bundle N. ``dsa-csv`` is the records in the column
layout of the DSA Transparency Database's dumps (:mod:`ledger.records.dsa`), with
no preamble (the checkpoint is a column), so DSA tooling reads it as it is.

Memory stays flat: entries are read, formatted and compressed a batch at a
time while the response streams.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, request
from marshmallow import RAISE, Schema, fields, validate

from api.describe import Paths, op, path_param, problem, query_params
from api.params import StrictInt, parse_query
from api.state import get_log
from ledger import query, storage
from ledger.errors import InvalidInput, NotFound
from ledger.log import Log
from ledger.records.dsa import DSA_CSV_COLUMNS, checkpoint_cell, dsa_row
from ledger.records.export import csv_preamble, csv_row, csv_text, header_line, ndjson_line, stored_entry
from ledger.storage import StoredCheckpoint
from ledger.tlog.tile import TILE_WIDTH

bp = Blueprint("export", __name__, url_prefix="/api/v1/export")

MAX_RANGE = 100_000
BATCH = 256  # one entry bundle per read
IMMUTABLE = "public, max-age=31536000, immutable"
FORMATS = ("ndjson", "csv", "dsa-csv")


class ExportQuery(Schema):
    class Meta:
        unknown = RAISE

    start = StrictInt(required=True)
    end = StrictInt()
    format = fields.String(load_default="ndjson", validate=validate.OneOf(FORMATS))


def _covering_checkpoint(log: Log, end: int) -> StoredCheckpoint:
    with log.read() as s:
        cp = query.covering_checkpoint(s, end)
    if cp is None:
        raise NotFound(f"the log has fewer than {end} entries")
    return cp


def _stream(log: Log, start: int, end: int, fmt: str, cp: StoredCheckpoint) -> Iterator[bytes]:
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container, mtime 0: byte-for-byte reproducible
    if fmt == "ndjson":
        yield gz.compress(header_line(log.origin, cp.size, cp.root, cp.note, start, end).encode())
    elif fmt == "csv":
        yield gz.compress(csv_preamble(log.origin, cp.size, cp.root).encode())
    else:
        yield gz.compress(csv_text([DSA_CSV_COLUMNS]).encode())
    cp_cell = checkpoint_cell(log.origin, cp.size, cp.root)
    for lo in range(start, end, BATCH):
        hi = min(end, lo + BATCH)
        with log.read() as s:
            data = storage.read_entries(s, lo, hi)
            leaves = storage.read_level_hashes(s, 0, lo, hi)
        if fmt == "ndjson":
            text = b"".join(ndjson_line(lo + i, leaves[i], d) for i, d in enumerate(data))
        else:
            rows = []
            for i, d in enumerate(data):
                entry = stored_entry(d)
                if entry.kind != "record":
                    continue
                if fmt == "csv":
                    rows.append(csv_row(lo + i, leaves[i], entry.logged_at, entry.body, entry.signature))
                else:
                    rows.append(dsa_row(lo + i, leaves[i], entry.logged_at, entry.body, cp_cell))
            text = csv_text(rows).encode()
        chunk = gz.compress(text)
        if chunk:
            yield chunk
    yield gz.flush()


def _respond(start: int, end: int, fmt: str, cacheable: bool) -> Response:
    log = get_log()
    cp = _covering_checkpoint(log, end)
    resp = Response(_stream(log, start, end, fmt, cp), mimetype="application/gzip")
    resp.headers["Content-Disposition"] = f'attachment; filename="entries-{start}-{end}.{fmt}.gz"'
    resp.headers["Cache-Control"] = IMMUTABLE if cacheable else "no-store"
    resp.headers["Ledger-Checkpoint-Size"] = str(cp.size)
    return resp


@bp.get("")
def export_range() -> Response:
    q = parse_query(ExportQuery(), request.args)
    log = get_log()
    size = log.latest_size()
    start = q["start"]
    end = q.get("end", min(size, start + MAX_RANGE))
    if not start < end:
        raise InvalidInput(
            "start must be below end", [{"path": "start", "message": "must be below end (and below the tree size)"}]
        )
    if end - start > MAX_RANGE:
        raise InvalidInput(
            f"at most {MAX_RANGE} entries per request",
            [{"path": "end", "message": f"end - start must be at most {MAX_RANGE}"}],
        )
    if end > size:
        raise NotFound(f"end ({end}) is beyond the tree size ({size})")
    return _respond(start, end, q["format"], "end" in q)


@bp.get("/bundles/<int(max=36028797018963967):n>.<fmt>.gz")
def export_bundle(n: int, fmt: str) -> Response:
    if fmt not in FORMATS:
        raise NotFound(f"formats are {', '.join(FORMATS)}")
    start, end = n * TILE_WIDTH, (n + 1) * TILE_WIDTH
    if end > get_log().latest_size():
        raise NotFound(f"bundle {n} is not full yet; use /api/v1/export?start={start} for its entries so far")
    return _respond(start, end, fmt, True)


# The OpenAPI description of these routes (api/describe.py), assembled by api/openapi.py.


def _file() -> dict[str, Any]:
    return {
        "description": "The file, as an attachment.",
        "content": {"application/gzip": {"schema": {}}},
        "headers": {
            "Ledger-Checkpoint-Size": {
                "description": "The tree size of the checkpoint the file names.",
                "schema": {"type": "integer", "minimum": 0},
            },
            "Content-Disposition": {"description": "attachment; filename=...", "schema": {"type": "string"}},
        },
    }


def paths(ma: MarshmallowPlugin) -> Paths:
    """The bulk downloads."""
    params = query_params(
        ma,
        ExportQuery(),
        {
            "start": "The first entry index.",
            "end": f"One past the last entry, at most start + {MAX_RANGE} and within the tree; a named end makes "
            f"the answer immutable. Absent: the smaller of the tree size and start + {MAX_RANGE}, not cached.",
            "format": "ndjson: a header line, then one line per entry (the faithful form); csv: the records, "
            "flattened into the columns of ledger/records/export.py, text that a spreadsheet would run as a formula "
            "prefixed with '.; dsa-csv: the records in the columns of the DSA Transparency Database's daily "
            "dumps, then this ledger's (ledger/records/dsa.py, docs/records.md), without a preamble.",
        },
    )
    bundle = [
        path_param("n", {"type": "integer", "minimum": 0}, "The bundle index."),
        path_param("fmt", {"type": "string", "enum": list(FORMATS)}, "The format."),
    ]
    tag = "Bulk export"
    return {
        "/api/v1/export": {
            "get": op(
                tag,
                "exportRange",
                "A range of entries as gzip-compressed NDJSON or CSV",
                "Each file names the smallest signed checkpoint covering end, so the bytes for a range never "
                "change. Streams; memory stays flat.",
                {
                    "200": _file(),
                    "400": problem(
                        "Malformed, repeated or unknown parameters, start not below end, or too long a range."
                    ),
                    "404": problem("end beyond the tree."),
                },
                params,
            )
        },
        "/api/v1/export/bundles/{n}.{fmt}.gz": {
            "get": op(
                tag,
                "exportBundle",
                "The 256 entries of entry bundle n, gzip-compressed",
                "The entries of tile/entries/<n>, once full; immutable.",
                {"200": _file(), "404": problem("A bundle not full yet, or an unknown format.")},
                bundle,
            )
        },
    }
