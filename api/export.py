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

Two layouts of the same lines. ``layout=stream`` (the default, and the only
one before December 2026: its bytes, served as immutable, do not change) is
one gzip member over the whole file, so every byte depends on the header
and nothing can be reused. ``layout=bundles`` is a gzip member for the
header, then one per entry bundle (whole, or the part in range): concatenated
members are one gzip file (RFC 1952 section 2.2) that ``gzip -d``, ``zcat``
and Python's ``gzip`` read as one, and a full bundle's member is the same in
every file, so it is built once and read back from the bundle cache
(ledger/bundle_cache.py). For ndjson and csv; dsa-csv names the checkpoint
in every row. The bundle files, ``/api/v1/export/bundles/<N>``, keep the
stream layout and are kept whole in the cache. A kept file is served only
while the database holds exactly the stored bytes it was built from (the
cache reads and digests them on every request), so a download shows what
the pages show, an entry rewritten behind the log's back included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, request
from marshmallow import RAISE, Schema, fields, validate

from api.describe import Paths, op, path_param, problem, query_params
from api.downloads import CHECKPOINT_HEADERS, checkpoint_headers
from api.params import StrictInt, parse_query
from api.state import get_bundle_cache, get_log
from ledger import bundle_cache
from ledger.bundle_cache import FORMATS, MEMBER_FORMATS
from ledger.errors import InvalidInput, NotFound
from ledger.log import Log
from ledger.storage import StoredCheckpoint
from ledger.tlog.tile import TILE_WIDTH

bp = Blueprint("export", __name__, url_prefix="/api/v1/export")

MAX_RANGE = 100_000
IMMUTABLE = "public, max-age=31536000, immutable"
LAYOUTS = ("stream", "bundles")


class ExportQuery(Schema):
    class Meta:
        unknown = RAISE

    start = StrictInt(required=True)
    end = StrictInt()
    format = fields.String(load_default="ndjson", validate=validate.OneOf(FORMATS))
    layout = fields.String(load_default="stream", validate=validate.OneOf(LAYOUTS))


def _members(
    log: Log, cache: bundle_cache.BundleCache, start: int, end: int, fmt: str, cp: StoredCheckpoint
) -> Iterator[bytes]:
    """The file of [start, end) as gzip members: the header, then one per
    bundle (whole or the part in range). Full bundles' members come from the
    bundle cache while the database holds what they were built from, so a
    range of them costs a digest of the stored bundles and a file read each."""
    yield bundle_cache.gzip_member(bundle_cache.head(log, fmt, start, end, cp))
    n0, n1 = -(-start // TILE_WIDTH), end // TILE_WIDTH  # the full bundles inside the range
    full = n0 < n1  # else every bundle touched is a part
    lo = start
    while lo < end:
        if full and lo == n0 * TILE_WIDTH:
            yield from cache.members(log, fmt, n0, n1)
            lo = n1 * TILE_WIDTH
            continue
        hi = min(end, (lo // TILE_WIDTH + 1) * TILE_WIDTH)
        leaves, data = bundle_cache.read_batch(log, lo, hi)
        yield bundle_cache.gzip_member(bundle_cache.lines(fmt, lo, leaves, data))
        lo = hi


def _respond(start: int, end: int, fmt: str, cacheable: bool, layout: str = "stream") -> Response:
    log = get_log()
    cp = bundle_cache.covering_checkpoint(log, end)
    if layout == "bundles":
        body: Iterator[bytes] | bytes = _members(log, get_bundle_cache(), start, end, fmt, cp)
    elif end - start == TILE_WIDTH and start % TILE_WIDTH == 0 and cacheable:
        body = get_bundle_cache().bundle_file(log, fmt, start // TILE_WIDTH, cp)
    else:
        body = bundle_cache.stream(log, start, end, fmt, cp)
    resp = Response(body, mimetype="application/gzip")
    resp.headers["Content-Disposition"] = f'attachment; filename="entries-{start}-{end}.{fmt}.gz"'
    resp.headers["Cache-Control"] = IMMUTABLE if cacheable else "no-store"
    resp.headers.update(checkpoint_headers(log.origin, cp))
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
    if q["layout"] == "bundles" and q["format"] not in MEMBER_FORMATS:
        raise InvalidInput(
            "layout=bundles is for ndjson and csv",
            [{"path": "layout", "message": "dsa-csv names the checkpoint in every row: use layout=stream"}],
        )
    return _respond(start, end, q["format"], "end" in q, q["layout"])


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
        "headers": CHECKPOINT_HEADERS,
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
            "layout": "stream: one gzip member (the bytes every earlier file had); bundles: one gzip member for "
            "the header and one per entry bundle, the same lines, read from a cache for full bundles (about "
            "ten times faster); ndjson and csv only. Both decompress as one file.",
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
