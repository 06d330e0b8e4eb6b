"""``GET /api/v1/stats/evenness``: the evenness document of a checkpoint.

The answer is RFC 8785 JSON of ``{"document", "document_sha256",
"publication"}``: the document's bytes appear in it exactly as
``ledger.evenness.compute_document`` made them (so the digest can be
checked on the bytes received), and ``publication`` says whether, and at
which log entry, the digest of the unfiltered document of that tree size
was published (``flask ledger publish-stats``), else null.

A document depends only on the tree size and the filters, so documents are
kept in a per-process LRU cache (keyed by origin, tree size, root and the
normalised filters) and, when ``tree_size`` is given, served as cacheable
by anyone: immutable once the digest is published; for a minute before,
because only ``publication`` can still change. Without ``tree_size`` the
answer describes the latest checkpoint and must be revalidated (its ETag
makes that cheap).

Computing a document reads every record below the checkpoint (seconds for
a million). Each process computes one at a time: a request that finds no
cached document waits up to :data:`COMPUTE_WAIT` seconds for its turn (and
then usually finds its document computed by the request it waited for),
else it gets 429 with Retry-After. So cheap requests for many different
filters cannot make a worker spend more than one CPU on statistics.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from marshmallow import RAISE, Schema, fields, validate

from api.feed import TimeParam
from api.params import StrictInt, parse_query
from api.state import get_log
from ledger.errors import RateLimited
from ledger.evenness import GROUPS, METRICS, Evenness, Filters, Publication, evenness_at, find_publication
from ledger.records import canonical
from ledger.vocab import PATTERNS

bp = Blueprint("stats", __name__, url_prefix="/api/v1/stats")

#: Cached documents per process: at most this many, and this many bytes.
CACHE_ENTRIES = 256
CACHE_BYTES = 256 * 1024 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"
UNTIL_PUBLISHED = "public, max-age=60"
LATEST = "no-cache"
#: Seconds a request waits for another's computation before 429, and the Retry-After then.
COMPUTE_WAIT = 10.0
COMPUTE_RETRY = 5


class EvennessQuery(Schema):
    class Meta:
        unknown = RAISE

    tree_size = StrictInt(metadata={"description": "a tree size the log signed a checkpoint for (default: latest)"})
    platform = fields.String(validate=validate.Regexp(PATTERNS["platform"], error="must match the pattern {regex}"))
    rule_id = fields.String(validate=validate.Regexp(PATTERNS["rule_id"], error="must match the pattern {regex}"))
    group = fields.String(validate=validate.OneOf(tuple(GROUPS)))
    metric = fields.String(validate=validate.OneOf(METRICS))
    decided_from = TimeParam(metadata={"description": "decisions decided at or after this time"})
    decided_to = TimeParam(metadata={"description": "decisions decided before this time"})


Key = tuple[Any, ...]


class Documents:
    """Computed documents: a thread-safe LRU of (bytes, digest), bounded in
    entries and bytes, and the one-at-a-time gate for computing them."""

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES, wait: float = COMPUTE_WAIT) -> None:
        self._items: OrderedDict[Key, tuple[bytes, str]] = OrderedDict()
        self._entries, self._max_bytes, self._bytes, self._wait = entries, max_bytes, 0, wait
        self._lock = threading.Lock()
        self._computing = threading.Lock()

    def get(self, key: Key) -> tuple[bytes, str] | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Key, value: tuple[bytes, str]) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += len(value[0])
            while self._items and (len(self._items) > self._entries or self._bytes > self._max_bytes):
                _, (data, _) = self._items.popitem(last=False)
                self._bytes -= len(data)

    def get_or_compute(self, key: Key, compute: Callable[[], Evenness]) -> tuple[bytes, str]:
        """The cached document of ``key``, computing it if needed (one at a time)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        if not self._computing.acquire(timeout=self._wait):
            raise RateLimited("the server is computing other statistics; retry shortly", retry_after=COMPUTE_RETRY)
        try:
            cached = self.get(key)  # computed while this request waited
            if cached is None:
                document = compute()
                cached = (document.data, document.sha256)
                self.put(key, cached)
            return cached
        finally:
            self._computing.release()


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    app.extensions["evenness_documents"] = Documents()


def _filters(args: dict[str, Any]) -> Filters:
    return Filters(
        platform=args.get("platform"),
        rule_id=args.get("rule_id"),
        group=args.get("group"),
        metric=args.get("metric"),
        decided_from_ms=args.get("decided_from"),
        decided_to_ms=args.get("decided_to"),
    )


@bp.get("/evenness")
def evenness() -> Response:
    args = parse_query(EvennessQuery(), request.args)
    filters = _filters(args)
    pinned = args.get("tree_size")
    documents: Documents = current_app.extensions["evenness_documents"]
    log = get_log()
    with log.read() as s:
        cp = log.checkpoint_for(s, pinned)
        publication = find_publication(s, cp.size)

    def compute() -> Evenness:
        # Rows below a signed size never change: a transaction of its own is as good as the one above.
        with log.read() as s:
            return evenness_at(s, cp, filters)

    key = (log.origin, cp.size, cp.root, tuple(sorted(filters.as_json().items())))
    data, digest = documents.get_or_compute(key, compute)
    return _response(data, digest, publication, pinned is not None)


def _response(data: bytes, digest: str, publication: Publication | None, pinned: bool) -> Response:
    # RFC 8785 orders "document" < "document_sha256" < "publication", and a
    # canonical value stays canonical inside a canonical object.
    published = b"null" if publication is None else canonical(publication.as_json())
    body = b"".join([b'{"document":', data, b',"document_sha256":"', digest.encode(), b'","publication":', published])
    resp = Response(body + b"}", mimetype="application/json")
    # The document's digest, plus where it was published once it was: the
    # body changes exactly when one of the two does.
    resp.set_etag(digest if publication is None else f"{digest}.p{publication.leaf_index}")
    if not pinned:
        resp.headers["Cache-Control"] = LATEST
    else:
        resp.headers["Cache-Control"] = UNTIL_PUBLISHED if publication is None else IMMUTABLE
    return resp.make_conditional(request)
