"""Containers (and their metadata) expire once no row of theirs is left.

Only containers silent for EXPIRE_AFTER are candidates: the writer caches a container's key
and refreshes `last_seen` at least every minute while it writes (ingest/store/containers.py),
so a container quiet for an hour has no cached key that could still be used for new rows;
its next line upserts a fresh row. The final DELETE re-checks both conditions, so a line
that arrives meanwhile keeps the container.
"""

from datetime import timedelta

import psycopg

from ingest.store.partitions import day_tables
from ingest.store.presence import present_ckeys

EXPIRE_AFTER = timedelta(hours=1)
CHUNK = 1000

_CANDIDATES = "SELECT id FROM containers WHERE last_seen < now() - %s ORDER BY id"
_EXPIRE = (
    "DELETE FROM containers c WHERE c.id = ANY(%s) AND c.last_seen < now() - %s "
    "AND NOT EXISTS (SELECT 1 FROM logs l WHERE l.ckey = c.id) RETURNING c.id"
)


def expire_containers(conn, expire_after: timedelta = EXPIRE_AFTER) -> list[int]:
    """Deletes containers without rows; `conn` in autocommit. Returns the deleted keys."""
    with conn.cursor() as cur:
        cur.execute(_CANDIDATES, (expire_after,))
        candidates = [row[0] for row in cur.fetchall()]
        if not candidates:
            return []
        # One skip scan per day is far cheaper than probing every day for every candidate.
        present: set[int] = set()
        for name, _state in day_tables(cur).values():
            present |= present_ckeys(cur, name)
        empty = [ckey for ckey in candidates if ckey not in present]
        expired = []
        for i in range(0, len(empty), CHUNK):
            expired += _delete(cur, empty[i : i + CHUNK], expire_after)
    return expired


def _delete(cur, ckeys: list[int], expire_after: timedelta) -> list[int]:
    try:
        cur.execute(_EXPIRE, (ckeys, expire_after))
        return [row[0] for row in cur.fetchall()]
    except psycopg.errors.ForeignKeyViolation:
        # Something else still refers to one of them: keep those, expire the rest one by one.
        expired = []
        for ckey in ckeys:
            try:
                cur.execute(_EXPIRE, ([ckey], expire_after))
                expired += [row[0] for row in cur.fetchall()]
            except psycopg.errors.ForeignKeyViolation:
                continue
        return expired
