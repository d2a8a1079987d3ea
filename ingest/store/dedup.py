"""Storing a re-sent record only once: de-duplication keys claimed in the writer's transaction.

A sender that re-sends a whole batch when it got no 2xx (systemd-journal-upload) gives each
record a stable key in attrs["dedup_key"] (journal: boot id + `__CURSOR`). The writer inserts
the batch's keys into `log_dedup_keys` (unique per tenant) in the same transaction as the rows
and keeps only the rows whose key it could insert. So the answer is exact whatever the timing:
- two uploads of the same entries at once, to one ingest process (their records meet in the one
  writer, one batch after the other or inside the same batch) or to two (the second insert
  waits on the first transaction's unique-index entry, then skips);
- entries still in the spool: replay claims their keys like any commit, so a copy that was
  spooled twice is stored once;
- entries whose time was implausible and replaced: the key, not the time, decides.

Keys are kept `KEEP_DAYS` (pruned by `prune`); a batch re-sent after that is stored again.
"""

from dataclasses import replace
from datetime import datetime, timedelta

from ingest.normalize import Batch

KEEP_DAYS = 30

CREATE_SQL = """
CREATE TABLE IF NOT EXISTS log_dedup_keys (
    tenant     text        NOT NULL,
    key        text        NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, key)
);
CREATE INDEX IF NOT EXISTS log_dedup_keys_stored_at ON log_dedup_keys (stored_at);
"""
DROP_SQL = "DROP TABLE IF EXISTS log_dedup_keys;"

# Sorted, so that two writers claiming overlapping keys lock them in the same order (no deadlock).
_CLAIM_SQL = """
INSERT INTO log_dedup_keys (tenant, key)
SELECT DISTINCT t, k FROM unnest(%s::text[], %s::text[]) AS u(t, k) ORDER BY t, k
ON CONFLICT DO NOTHING
RETURNING tenant, key
"""


def claim(cur, batch: Batch) -> tuple[Batch, int]:
    """(the batch without the rows whose key is already stored, how many rows were dropped).

    Must run inside the transaction that stores the rows: a rollback releases the keys.
    """
    if not batch.keys:
        return batch, 0
    pairs = [(batch.metas[batch.rows[i][0]].tenant, key) for i, key in batch.keys]
    cur.execute(_CLAIM_SQL, ([t for t, _ in pairs], [k for _, k in pairs]))
    fresh = {(t, k) for t, k in cur.fetchall()}
    if len(fresh) == len(pairs):
        return batch, 0
    dropped = set()
    for (i, _), pair in zip(batch.keys, pairs, strict=True):
        if pair in fresh:
            fresh.discard(pair)  # the first row with a key is kept, any later one is a copy
        else:
            dropped.add(i)
    rows = [row for i, row in enumerate(batch.rows) if i not in dropped]
    return replace(batch, rows=rows, keys=[]), len(dropped)


def prune(cur, now: datetime, keep_days: int = KEEP_DAYS) -> int:
    """Forgets keys older than `keep_days`; returns how many. For the retention task."""
    cur.execute("DELETE FROM log_dedup_keys WHERE stored_at < %s", (now - timedelta(days=keep_days),))
    return cur.rowcount
