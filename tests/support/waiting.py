"""Polling helpers for tests that watch a real ingest process store rows."""

import time

from tests.conftest import log_rows


def wait_rows(count: int, where: str = "TRUE", params: tuple = (), timeout: float = 30) -> list[dict]:
    """The stored rows once at least `count` are there; fails with what was there otherwise."""
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = log_rows(where, params)
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"expected {count} rows, found {len(rows)}: {[r['line'][:60] for r in rows]}")


def driver_stats(proc, driver, predicate, timeout: float = 30) -> dict:
    stats = proc.wait_stats(lambda s: predicate(s["drivers"].get(str(driver.id), {})), timeout=timeout)
    return stats["drivers"][str(driver.id)]
