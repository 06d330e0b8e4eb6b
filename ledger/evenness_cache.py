"""Computed evenness documents, cached per process and computed one at a time.

A document is a function of the checkpoint and the filters alone
(:mod:`ledger.evenness_store`), so a document once computed is good for as long
as the process lives. The JSON API (``api/stats.py``) and the dashboard
(``web/views_stats.py``) share one :class:`Documents` per application,
kept in ``app.extensions[EXTENSION]``: the dashboard shows the unfiltered
document, the very one the API serves without filters and the operator
publishes the digest of, and computes it at most once for both.

Computing a document reads every record below the checkpoint (seconds for
a million). Each process computes one at a time: a request that finds no
cached document waits up to :data:`COMPUTE_WAIT` seconds for its turn (and
then usually finds its document computed by the request it waited for),
else it gets :class:`~ledger.errors.RateLimited`. So cheap requests for
many different filters cannot make a worker spend more than one CPU on
statistics.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

from ledger.errors import RateLimited
from ledger.evenness_store import METHOD_VERSION, Evenness, Filters, evenness_at
from ledger.log import Log
from ledger.storage import StoredCheckpoint

#: Where an application keeps its one :class:`Documents`.
EXTENSION = "evenness_documents"
#: Cached documents per process: at most this many, and this many bytes.
CACHE_ENTRIES = 256
CACHE_BYTES = 256 * 1024 * 1024
#: Seconds a request waits for another's computation before RateLimited, and its Retry-After.
COMPUTE_WAIT = 10.0
COMPUTE_RETRY = 5

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

    def document(
        self, log: Log, checkpoint: StoredCheckpoint, filters: Filters, method_version: int = METHOD_VERSION
    ) -> tuple[bytes, str]:
        """The document of ``checkpoint`` (one ``log`` signed), ``filters`` and
        ``method_version``: its RFC 8785 bytes and their SHA-256 (hex)."""

        def compute() -> Evenness:
            # Rows below a signed size never change: a read transaction of
            # its own sees the same rows as the caller's.
            with log.read() as s:
                return evenness_at(s, checkpoint, filters, method_version)

        return self.get_or_compute(document_key(log.origin, checkpoint, filters, method_version), compute)


def document_key(
    origin: str, checkpoint: StoredCheckpoint, filters: Filters, method_version: int = METHOD_VERSION
) -> Key:
    """The cache key: origin, tree size, root, method version and the normalised filters."""
    return (origin, checkpoint.size, checkpoint.root, method_version, tuple(sorted(filters.as_json().items())))


def shared(extensions: MutableMapping[str, Any]) -> Documents:
    """The application's one :class:`Documents`, made on first use (by
    whichever of the API and the pages is set up first)."""
    documents: Documents = extensions.setdefault(EXTENSION, Documents())
    return documents
