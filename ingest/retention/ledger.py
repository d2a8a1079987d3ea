"""Pruning the `log_batches` ledger (and old maintenance runs) once their rows are gone.

A line's timestamp is at most an hour ahead of the moment it was normalised, which precedes
its batch's commit; so a batch committed more than an hour before the oldest day that still
exists holds only rows of days already dropped. The BRIN index on committed_at finds them
without reading the ledger.
"""

from datetime import timedelta

CHUNK = 10_000
FUTURE_SLACK = timedelta(hours=1)
KEEP_RUNS = timedelta(days=30)

_PRUNE = (
    "DELETE FROM log_batches WHERE id = ANY(ARRAY("
    "SELECT id FROM log_batches WHERE committed_at < (%s::timestamp AT TIME ZONE 'UTC') - %s LIMIT %s))"
)


def prune_ledger(conn) -> int:
    """`conn` in autocommit; returns the number of ledger rows deleted."""
    with conn.cursor() as cur:
        cur.execute("SELECT min(day) FROM log_partitions")
        oldest = cur.fetchone()[0]
        if oldest is None:
            return 0
        deleted = 0
        while True:
            cur.execute(_PRUNE, (oldest, FUTURE_SLACK, CHUNK))
            deleted += cur.rowcount
            if cur.rowcount < CHUNK:
                return deleted


def prune_runs(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM ingest_maintenancerun WHERE started_at < now() - %s", (KEEP_RUNS,))
        return cur.rowcount
