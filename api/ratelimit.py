"""Per-platform rate limiting: a token bucket per platform, per worker process.

With W gunicorn workers a platform may submit up to W times the configured
rate; the README says so. The limit protects the sequencer from one
platform crowding out the others, not the server from a flood (that is the
reverse proxy's job).
"""

from __future__ import annotations

import math
import threading
import time

from ledger.errors import RateLimited


class RateLimiter:
    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float) -> None:
        """Spend ``cost`` tokens of ``key``'s bucket or raise :class:`RateLimited`."""
        if self._rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if cost > tokens:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((min(cost, self._burst) - tokens) / self._rate)
                raise RateLimited(
                    f"platform {key!r} is over its rate limit of {self._rate:g} records/s (burst {self._burst:g}); "
                    f"retry in {max(wait, 1)} s",
                    max(wait, 1),
                )
            self._buckets[key] = (tokens - cost, now)
