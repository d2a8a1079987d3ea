"""Token buckets that keep a sender under a destination's published rate limits.

CLS allows 500 requests/s and 5 MB/s (compressed) per topic partition and answers 429 above
that (shared/CLS.md §1.5). We do not know how many partitions a topic has, so the limits are
applied per topic, which is safe for any partition count.

A plain bucket refilled at the limit with one second of burst would let 2x the limit through in
the first second. To keep *every* one-second window at or under the limit, the bucket refills at
(1 - burst_fraction) of the limit and holds burst_fraction of it: window total ≤ capacity + rate
= limit. A request larger than the byte capacity (a 6 MB body against a 0.5 MB bucket) waits for
a full bucket and then leaves it in debt, so later requests wait until the debt is repaid; the
long-run byte rate still holds.

The limiter reserves capacity under its lock and sleeps outside it, so several threads sharing
one topic queue up fairly instead of all waking at once.
"""

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, limit_per_s: float, burst_fraction: float = 0.1):
        if limit_per_s <= 0 or not 0 < burst_fraction < 1:
            raise ValueError("limit must be > 0 and burst_fraction in (0, 1)")
        self.rate = limit_per_s * (1 - burst_fraction)
        self.capacity = limit_per_s * burst_fraction
        self.tokens = self.capacity
        self.at: float | None = None  # the time `tokens` refers to; None until first use

    def level(self, t: float) -> float:
        if self.at is None:
            return self.capacity
        return min(self.capacity, self.tokens + (t - self.at) * self.rate)

    def earliest(self, cost: float, now: float) -> float:
        """When `cost` tokens (at most a full bucket) will be there."""
        at = now if self.at is None else max(now, self.at)
        return at + max(0.0, min(cost, self.capacity) - self.level(at)) / self.rate

    def take(self, cost: float, t: float) -> None:
        self.tokens = self.level(t) - cost
        self.at = t


class RateLimiter:
    """Requests/s and bytes/s together: a request goes when both buckets allow it."""

    def __init__(
        self,
        requests_per_s: float = 500,
        bytes_per_s: float = 5_000_000,
        burst_fraction: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.requests = TokenBucket(requests_per_s, burst_fraction)
        self.bytes = TokenBucket(bytes_per_s, burst_fraction)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self, nbytes: int) -> float:
        """Block until a request of `nbytes` may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            go = max(self.requests.earliest(1, now), self.bytes.earliest(nbytes, now))
            self.requests.take(1, go)
            self.bytes.take(nbytes, go)
        wait = go - now
        if wait > 0:
            self._sleep(wait)
        return wait


_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(host: str, topic_id: str) -> RateLimiter:
    """The process-wide limiter of one topic, shared by every client sending to it."""
    with _limiters_lock:
        limiter = _limiters.get((host, topic_id))
        if limiter is None:
            limiter = _limiters[(host, topic_id)] = RateLimiter()
        return limiter
