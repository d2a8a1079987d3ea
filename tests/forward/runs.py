"""Forwarding runs in the test process.

A run that finds nothing below the horizon reports "caught_up"; any write transaction of this
database that is still open (another test's connection, a writer of a neighbouring test that
has not quite finished) legitimately holds the horizon back for a moment. Tests that expect
lines to arrive therefore run until the target's lag is zero, not just once.
"""

import time

from forward.lag import forward_lag
from forward.run import RunResult, forward_target


def lag_lines(target) -> int:
    return next(row.lag_lines for row in forward_lag() if row.target_id == target.id)


def run_until_done(target, timeout: float = 60) -> RunResult:
    """Runs until the target paused, backs off, or has forwarded everything committed."""
    deadline = time.monotonic() + timeout
    while True:
        result = forward_target(target.id, budget_s=30)
        if result.status in ("paused", "backoff"):
            return result
        if result.status == "caught_up" and lag_lines(target) == 0:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"target {target.name} did not finish in {timeout}s: {result}")
        time.sleep(0.1)
