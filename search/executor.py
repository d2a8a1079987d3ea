"""Runs a query against the store: containers first, then `logs` one day partition at a time.

Walking days newest first and stopping once the page is full is what keeps a common term
cheap (DESIGN.md: fetching all 100k hits of a common term costs ~300 ms; the first 100 of
the newest day cost a few ms), and each day's query prunes to that day's partitions.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.db import connection
from psycopg import sql

from ingest.store.schema import STREAM_NAMES
from search.querylang import Node, parse
from search.querylang.sql import build_search_sql, build_where, container_sql, new_params

DEFAULT_LIMIT = 100


@dataclass
class Page:
    rows: list[dict]
    # (ts, id) of the last row when more may follow; pass it back as `before`.
    next_before: tuple[datetime, int] | None
    containers: dict[int, dict] = field(default_factory=dict)


def matching_ckeys(cur, node: Node, tenants: list[str]) -> list[int]:
    if not tenants:
        return []
    query, params = container_sql(node, tenants)
    cur.execute(query, params)
    return [row[0] for row in cur.fetchall()]


def partition_days(cur, newest_first: bool) -> list[datetime]:
    cur.execute("SELECT day FROM log_partitions ORDER BY day " + ("DESC" if newest_first else "ASC"))
    return [datetime.combine(row[0], time(), UTC) for row in cur.fetchall()]


def container_meta(cur, ckeys: list[int]) -> dict[int, dict]:
    if not ckeys:
        return {}
    cur.execute(
        "SELECT id, tenant, service, container_id, name, image, host, labels FROM containers "
        "WHERE id = ANY(%s)",
        (list(ckeys),),
    )
    return {
        r[0]: {
            "ckey": r[0],
            "tenant": r[1],
            "service": r[2],
            "container_id": r[3],
            "name": r[4],
            "image": r[5],
            "host": r[6],
            "labels": r[7],
        }
        for r in cur.fetchall()
    }


def row_dict(row) -> dict:
    ckey, row_id, ts, ts_ns, stream, level, flags, line, attrs = row
    return {
        "ckey": ckey,
        "id": row_id,
        "ts": ts,
        "ts_ns": ts_ns,
        "stream": STREAM_NAMES.get(stream, "unknown"),
        "level": level,
        "flags": flags,
        "line": line,
        "attrs": attrs,
    }


def search_page(
    tenants: list[str],
    query: str | Node,
    limit: int = DEFAULT_LIMIT,
    before: tuple[datetime, int] | None = None,
    newest_first: bool = True,
    now: datetime | None = None,
) -> Page:
    """Raises QueryError for a bad query."""
    node = parse(query) if isinstance(query, str) else query
    now = now or datetime.now(UTC)
    rows: list[dict] = []
    with connection.cursor() as cur:
        ckeys = matching_ckeys(cur, node, tenants)
        if not ckeys:
            return Page([], None)
        for day in partition_days(cur, newest_first):
            if before is not None and (
                day > before[0] if newest_first else day + timedelta(days=1) <= before[0]
            ):
                continue
            sql_text, params = build_search_sql(
                node,
                tenants,
                ckeys,
                limit - len(rows),
                before=before,
                newest_first=newest_first,
                now=now,
                window=(day, day + timedelta(days=1)),
            )
            cur.execute(sql_text, params)
            rows += [row_dict(r) for r in cur.fetchall()]
            if len(rows) >= limit:
                break
        meta = container_meta(cur, sorted({r["ckey"] for r in rows}))
    next_before = (rows[-1]["ts"], rows[-1]["id"]) if len(rows) >= limit else None
    return Page(rows, next_before, meta)


BUCKETS = {
    "1m": "1 minute",
    "5m": "5 minutes",
    "15m": "15 minutes",
    "1h": "1 hour",
    "6h": "6 hours",
    "1d": "1 day",
}


def histogram(
    tenants: list[str], query: str | Node, bucket: str = "1h", now: datetime | None = None
) -> list[dict]:
    """Matching lines per time bucket (`date_bin`), oldest first."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    node = parse(query) if isinstance(query, str) else query
    with connection.cursor() as cur:
        ckeys = matching_ckeys(cur, node, tenants)
        if not ckeys:
            return []
        p = new_params()
        where = build_where(node, tenants, ckeys, p, now=now or datetime.now(UTC))
        stmt = sql.SQL(
            "SELECT date_bin({}::interval, l.ts, TIMESTAMPTZ '2000-01-01') AS bucket, count(*) "
            "FROM logs l WHERE {} GROUP BY 1 ORDER BY 1"
        ).format(p(BUCKETS[bucket]), where)
        cur.execute(stmt, p.values)
        return [{"bucket": b, "count": n} for b, n in cur.fetchall()]


def context(tenants: list[str], ckey: int, row_id: int, before: int = 20, after: int = 20) -> dict:
    """Lines around one row of one container, in (ts, id) order."""
    columns = "ckey, id, ts, ts_ns, stream, level, flags, line, attrs"
    with connection.cursor() as cur:
        cur.execute("SELECT tenant FROM containers WHERE id = %s", (ckey,))
        found = cur.fetchone()
        if found is None or found[0] not in tenants:
            raise LookupError("no such line")
        cur.execute(f"SELECT {columns} FROM logs WHERE ckey = %s AND id = %s", (ckey, row_id))
        anchor = cur.fetchone()
        if anchor is None:
            raise LookupError("no such line")
        ts = anchor[2]
        cur.execute(
            f"SELECT {columns} FROM logs WHERE ckey = %s AND (ts, id) < (%s, %s) "
            "ORDER BY ts DESC, id DESC LIMIT %s",
            (ckey, ts, row_id, before),
        )
        earlier = [row_dict(r) for r in reversed(cur.fetchall())]
        cur.execute(
            f"SELECT {columns} FROM logs WHERE ckey = %s AND (ts, id) > (%s, %s) ORDER BY ts, id LIMIT %s",
            (ckey, ts, row_id, after),
        )
        later = [row_dict(r) for r in cur.fetchall()]
        meta = container_meta(cur, [ckey])
    return {"before": earlier, "line": row_dict(anchor), "after": later, "containers": meta}
