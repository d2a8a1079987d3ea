"""Exponential backoff with jitter for retryable destination errors.

"Equal jitter": half of the exponential step is fixed, half is random. The fixed half keeps a
storm of 429s from being retried at once by every worker; the random half spreads targets that
failed together. A server's Retry-After is a floor, never shortened.
"""

import random


def backoff_delay(
    failures: int,
    base_s: float,
    cap_s: float,
    retry_after: float | None = None,
    rand=random.random,
) -> float:
    """Seconds to wait before attempt number failures + 1 (failures >= 1)."""
    step = min(cap_s, base_s * 2 ** min(max(failures - 1, 0), 62))
    delay = step / 2 + rand() * step / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap_s))
    return delay
