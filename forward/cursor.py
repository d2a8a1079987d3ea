"""The durable cursor: where a target is in the commit-ordered batch ledger.

Why not `logs.id > last_id`: ids are reserved when a writer's transaction starts, so with two
ingest processes writer A can hold ids 100… while writer B commits 200… first; a reader that
moved past 200 would never see A's rows (shared/DESIGN.md, "Known trap").

Every committed writer batch has a ledger row in `log_batches` whose `xid` is the writing
transaction's id (xid8, never wraps). We consume ledger rows in (xid, id) order, and only those
below a *horizon* that no still-running writer can fall under: a transaction that is running
now has an xid in the snapshot's in-progress list, and one that starts later gets an xid at or
above the snapshot's xmax. So below the horizon the ledger is final: nothing new can appear
there, and the cursor never has to look back.

The textbook horizon is pg_snapshot_xmin(pg_current_snapshot()): the oldest xid still running
anywhere in the cluster. It is refined here to the oldest running xid *that could write our ledger*: an
xid that pg_stat_activity attributes to another database, or to an autovacuum worker (ANALYZE
takes one), cannot, so a long transaction in another database on a shared server or an analyze
of a big partition does not stall forwarding.
Anything unattributed (a backend that just finished, a prepared transaction, a hidden session)
still counts, which errs towards waiting, never towards skipping. Horizon and ledger rows come
from one statement, hence one snapshot.

A position is (xid, batch_id, row_id): every batch ordered before (xid, batch_id) is done, and
in batch `batch_id` the rows with id <= row_id are (ids inside a batch are contiguous and in
per-container order). row_id >= the batch's last_id means the whole batch is done.
"""

from dataclasses import dataclass
from datetime import datetime

# Larger than any ledger id: (xid, END_BATCH) sorts after every batch of transaction xid.
END_BATCH = 2**63 - 1

HORIZON_CTE = """
horizon AS (
    SELECT LEAST(
        pg_snapshot_xmax(s.snap),
        (SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
          WHERE xid(x) NOT IN (
              SELECT backend_xid FROM pg_stat_activity
               WHERE backend_xid IS NOT NULL
                 AND (datname IS DISTINCT FROM current_database() OR backend_type = 'autovacuum worker')))
    ) AS h
    FROM (SELECT pg_current_snapshot() AS snap) AS s
)
"""

HORIZON_SQL = f"WITH {HORIZON_CTE} SELECT h::text::bigint FROM horizon"

PENDING_SQL = f"""
WITH {HORIZON_CTE}
SELECT b.xid::text::bigint, b.id, b.first_id, b.last_id, b.rows, b.ts_min, b.ts_max,
       extract(epoch FROM now() - b.committed_at)::float8
  FROM log_batches b, horizon
 WHERE b.xid < horizon.h
   AND (b.xid, b.id) >= (%(xid)s::text::xid8, %(batch_id)s)
 ORDER BY b.xid, b.id
 LIMIT %(limit)s
"""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    xid: int
    batch_id: int
    row_id: int = 0

    @classmethod
    def before_horizon(cls, horizon: int) -> "Position":
        """Everything below the horizon counts as done: where a new target starts."""
        return cls(horizon - 1, END_BATCH, 0)


@dataclass(frozen=True, slots=True)
class LedgerBatch:
    xid: int
    id: int
    first_id: int
    last_id: int
    rows: int
    ts_min: datetime
    ts_max: datetime
    age_s: float  # seconds since it committed (database clock)

    @property
    def done(self) -> Position:
        return Position(self.xid, self.id, self.last_id)

    @property
    def before(self) -> Position:
        return Position(self.xid, self.id, self.first_id - 1)


def horizon(cur) -> int:
    cur.execute(HORIZON_SQL)
    return cur.fetchone()[0]


def pending_batches(cur, position: Position, limit: int) -> list[LedgerBatch]:
    """Ledger batches at or after `position` that are below the horizon, in xid order; the
    position's own batch is included only while some of its rows are still to do."""
    cur.execute(PENDING_SQL, {"xid": str(position.xid), "batch_id": position.batch_id, "limit": limit + 1})
    batches = [LedgerBatch(*row) for row in cur.fetchall()]
    if batches and batches[0].id == position.batch_id and position.row_id >= batches[0].last_id:
        batches = batches[1:]
    return batches[:limit]
