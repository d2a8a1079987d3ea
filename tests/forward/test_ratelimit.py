"""The token-bucket limiter keeps every one-second window under CLS's per-topic limits.

Time is simulated (the clock moves only when the limiter sleeps), so rates are checked exactly
and nothing here depends on how fast the machine is.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forward.sinks.ratelimit import RateLimiter


class FakeClock:
    """Time that only moves when the limiter sleeps, so rates are checked exactly, not timed."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _max_in_window(events: list[tuple[float, int]], width: float = 1.0) -> tuple[int, int]:
    most_requests = most_bytes = 0
    for i, (start, _) in enumerate(events):
        inside = [n for t, n in events[i:] if t < start + width - 1e-9]
        most_requests = max(most_requests, len(inside))
        most_bytes = max(most_bytes, sum(inside))
    return most_requests, most_bytes


def test_it_keeps_every_second_under_500_requests():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    events = []
    for _ in range(2_000):
        limiter.acquire(100)
        events.append((clock.now, 100))
    most_requests, _ = _max_in_window(events)
    assert 480 <= most_requests <= 500
    assert clock.now - 1000.0 >= (2_000 - 50) / 450 - 1e-6  # the long-run rate, not a burst


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 2_000_000), min_size=1, max_size=60))
def test_it_keeps_every_second_under_5_mb_for_any_request_sizes(sizes):
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    events = []
    for size in sizes:
        limiter.acquire(size)
        events.append((clock.now, size))
    # A request bigger than the bucket goes once the bucket is full and leaves a debt, so a
    # window can exceed the limit by at most the part of one request above the bucket size.
    _, most_bytes = _max_in_window(events)
    assert most_bytes <= 5_000_000 + max(0, max(sizes) - 500_000)


def test_it_makes_the_next_request_wait_after_an_oversized_one():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    assert limiter.acquire(6_000_000) == 0  # a full bucket lets it go at once
    waited = limiter.acquire(1)
    assert waited == pytest.approx((6_000_000 - 500_000 + 1) / 4_500_000)
