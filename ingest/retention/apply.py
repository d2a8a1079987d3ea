"""One retention run: every past day is decided again just before it is acted on, from rules
loaded at that moment, so a pin added while a run is under way is honoured."""

import time
from collections.abc import Callable
from datetime import date

from ingest.retention.plan import decide, past_days
from ingest.retention.rules import Rules
from ingest.store import bucket_counts, day_counts
from ingest.store.day_drop import drop_day_if
from ingest.store.row_delete import delete_rows


def run_retention(conn, load_rules: Callable[[], Rules], max_ts_age_days: int) -> dict:
    """`conn`: an autocommit psycopg connection. Returns a summary for MaintenanceRun."""
    summary: dict = {
        "dropped_days": [],
        "kept_days": [],
        "deleted_rows": {},
        "containers_removed": 0,
        "seconds": {},
    }
    with conn.cursor() as cur:
        days = past_days(cur, load_rules())
    for day, table, state in days:
        started = time.monotonic()
        _act_on_day(conn, load_rules(), day, table, state, max_ts_age_days, summary)
        summary["seconds"][day.isoformat()] = round(time.monotonic() - started, 3)
    return summary


def _act_on_day(conn, rules: Rules, day: date, table: str, state: str, max_ts_age_days: int, summary) -> None:
    if state != "attached":  # left over by an interrupted drop
        _note(summary, day, drop_day_if(conn, day, _all_removable(rules, day)))
        return
    with conn.cursor() as cur:
        action = decide(cur, rules, day, table, max_ts_age_days)
    if action.action == "drop":
        _note(summary, day, drop_day_if(conn, day, _all_removable(rules, day)))
    elif action.action == "delete":
        with conn.cursor() as cur:
            # Histograms must not count the deleted rows from the rollup meanwhile.
            bucket_counts.forget_day(cur, day)
        summary["deleted_rows"][day.isoformat()] = delete_rows(conn, table, sorted(action.remove))
        summary["containers_removed"] += len(action.remove)
        with conn.cursor() as cur:
            cur.execute("SELECT sealed_at IS NOT NULL FROM log_partitions WHERE day = %s", (day,))
            row = cur.fetchone()
            if row and row[0]:  # the storage page and histograms read sealed days' counts from tables
                day_counts.store_counts(cur, day, table)
                bucket_counts.store_buckets(conn, day, table)


def _all_removable(rules: Rules, day: date) -> Callable[[set[int]], bool]:
    return lambda present: all(rules.removable(ckey, day) for ckey in present)


def _note(summary: dict, day: date, outcome: str) -> None:
    if outcome == "dropped":
        summary["dropped_days"].append(day.isoformat())
    elif outcome == "kept":
        summary["kept_days"].append(day.isoformat())
