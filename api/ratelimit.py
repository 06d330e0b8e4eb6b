"""Per-platform rate limiting: a token bucket per platform, per worker process.

With W gunicorn workers a platform may submit up to W times the configured
rate; the README says so. The limit protects the sequencer from one
platform crowding out the others, not the server from a flood (that is the
reverse proxy's job).

Tokens are spent only for records whose signature verified (``take`` after
``verify_items``): a record names its platform, so charging before the
check would let anyone spend a platform's quota with badly signed records.
``check`` may run before the signatures, since it spends nothing: it spares
a platform that is already over its limit the cost of verifying its request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping

from ledger.errors import RateLimited


class RateLimiter:
    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def check(self, costs: Mapping[str, float]) -> None:
        """Raise :class:`RateLimited` if any key lacks its cost in tokens; spend nothing."""
        self._charge(costs, spend=False)

    def take(self, costs: Mapping[str, float]) -> None:
        """Spend every key's cost, or raise :class:`RateLimited` and spend none."""
        self._charge(costs, spend=True)

    def _charge(self, costs: Mapping[str, float], spend: bool) -> None:
        if self._rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            refilled = {}
            for key, cost in costs.items():
                tokens, last = self._buckets.get(key, (self._burst, now))
                tokens = min(self._burst, tokens + (now - last) * self._rate)
                if cost > tokens:
                    wait = max(1, math.ceil((min(cost, self._burst) - tokens) / self._rate))
                    raise RateLimited(
                        f"platform {key!r} is over its rate limit of {self._rate:g} records/s "
                        f"(burst {self._burst:g}); retry in {wait} s",
                        wait,
                    )
                refilled[key] = tokens - cost
            if spend:
                for key, tokens in refilled.items():
                    self._buckets[key] = (tokens, now)
