"""Counts of matching lines per time bucket.

A query that only names containers (or nothing) counts the same rows every time, so sealed
days answer it from their 5-minute or 1-hour rollup (ingest/store/bucket_counts.py) plus the few lines
that arrived after the rollup was built; days without a rollup (the hot day) and every query
with line filters are counted from `logs`, one query per hot block (whose trigram index then
serves it) and one for the rest.
"""

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

from psycopg import sql

from ingest.store import hot_index
from ingest.store.bucket_counts import ORIGIN
from search.querylang import Node
from search.querylang.nodes import is_container_level
from search.querylang.sql import build_where, new_params

BUCKETS = {
    "1m": "1 minute",
    "5m": "5 minutes",
    "15m": "15 minutes",
    "1h": "1 hour",
    "6h": "6 hours",
    "1d": "1 day",
}
# The coarsest rollup span (minutes) each bucket is a multiple of; 1m has none.
ROLLUP_SPAN = {"5m": 5, "15m": 5, "1h": 60, "6h": 60, "1d": 60}

_TENANT_KEYS = (
    "ARRAY(SELECT c.id FROM containers c WHERE c.id = ANY({}::bigint[]) AND c.tenant = ANY({}::text[]))"
)


def count_buckets(
    cur, node: Node, tenants: list[str], ckeys: list[int], bucket: str, now: datetime
) -> Counter:
    counts: Counter = Counter()
    rolled = rolled_days(cur) if bucket in ROLLUP_SPAN and is_container_level(node) else {}
    if not rolled:
        # Cut at the hot days' indexed blocks, whose partial trigram indexes serve only a
        # query whose time bounds lie within one (ingest/store/hot_index.py).
        for window in _block_cuts(cur):
            _count_logs(cur, counts, node, tenants, ckeys, bucket, now, window)
        return counts
    _count_rollup(cur, counts, list(rolled), tenants, ckeys, bucket)
    _count_late(cur, counts, node, tenants, ckeys, bucket, now, rolled)
    cur.execute("SELECT day FROM log_partitions ORDER BY day")
    for (day,) in cur.fetchall():
        if day not in rolled:
            start = datetime.combine(day, time(), UTC)
            window = (start, start + timedelta(days=1))
            _count_logs(cur, counts, node, tenants, ckeys, bucket, now, window)
    return counts


def _block_cuts(cur) -> list[tuple[datetime, datetime] | None]:
    """Windows tiling every stored day, cut at the hot blocks' edges; [None] without blocks."""
    edges = sorted({edge for span in hot_index.indexed_spans(cur) for edge in span})
    if not edges:
        return [None]
    cur.execute("SELECT min(day), max(day) FROM log_partitions")
    first, last = cur.fetchone()
    lo = min(datetime.combine(first, time(), UTC), edges[0])
    hi = max(datetime.combine(last, time(), UTC) + timedelta(days=1), edges[-1])
    cuts = [lo, *edges, hi]
    return [(a, b) for a, b in pairwise(cuts) if a < b]


def rolled_days(cur) -> dict:
    """day -> max_id of the days that have a rollup and still exist."""
    cur.execute("SELECT b.day, b.max_id FROM log_bucket_days b JOIN log_partitions p ON p.day = b.day")
    return dict(cur.fetchall())


def _count_rollup(
    cur, counts: Counter, days: list, tenants: list[str], ckeys: list[int], bucket: str
) -> None:
    p = new_params()
    keys = p([int(k) for k in ckeys])
    stmt = sql.SQL(
        "SELECT date_bin({}::interval, b.bucket, {}::timestamptz), sum(b.rows)::bigint "
        "FROM log_bucket_counts b WHERE b.day = ANY({}::date[]) AND b.span = {} "
        "AND b.ckey = ANY({}::bigint[]) AND b.ckey = ANY(" + _TENANT_KEYS + ") GROUP BY 1"
    ).format(p(BUCKETS[bucket]), p(ORIGIN), p(days), p(ROLLUP_SPAN[bucket]), keys, keys, p(list(tenants)))
    cur.execute(stmt, p.values)
    counts.update(dict(cur.fetchall()))


def _count_logs(cur, counts, node, tenants, ckeys, bucket, now, window=None) -> None:
    p = new_params()
    where = build_where(node, tenants, ckeys, p, now=now, window=window)
    stmt = sql.SQL(
        "SELECT date_bin({}::interval, l.ts, {}::timestamptz) AS bucket, count(*) "
        "FROM logs l WHERE {} GROUP BY 1"
    ).format(p(BUCKETS[bucket]), p(ORIGIN), where)
    cur.execute(stmt, p.values)
    counts.update(dict(cur.fetchall()))


def _count_late(cur, counts, node, tenants, ckeys, bucket, now, rolled: dict) -> None:
    """The lines of rolled-up days above each day's watermark, in one query: the smallest
    watermark lets the BRIN on id skip every block of the days' original rows."""
    days = sorted(rolled)
    starts = [datetime.combine(d, time(), UTC) for d in days]
    p = new_params()
    where = build_where(node, tenants, ckeys, p, now=now, window=(starts[0], starts[-1] + timedelta(days=1)))
    stmt = sql.SQL(
        "SELECT date_bin({}::interval, l.ts, {}::timestamptz) AS bucket, count(*) "
        "FROM logs l JOIN unnest({}::timestamptz[], {}::bigint[]) AS m(start, mark) "
        "ON l.ts >= m.start AND l.ts < m.start + interval '1 day' AND l.id > m.mark "
        "WHERE {} AND l.id > {} GROUP BY 1"
    ).format(
        p(BUCKETS[bucket]),
        p(ORIGIN),
        p(starts),
        p([rolled[d] for d in days]),
        where,
        p(min(rolled.values())),
    )
    cur.execute(stmt, p.values)
    counts.update(dict(cur.fetchall()))
