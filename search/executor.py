"""Runs a query against the store: containers first, then `logs` one time window at a time.

Walking windows newest first and stopping once the page is full is what keeps a common term
cheap (DESIGN.md: fetching all 100k hits of a common term costs ~300 ms; the first 100 of
the newest seconds cost a few ms), while a rare term gets few, large windows that each use
the sealed days' trigram indexes (search/walk.py). Each window's query prunes to the day
partitions it overlaps, and the container keys prune the hash partitions inside them.
Histograms of container-only queries read sealed days from their rollup
(ingest/store/bucket_counts.py).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from ingest.store import hot_index
from ingest.store.schema import STREAM_NAMES
from search import walk
from search.histogram import BUCKETS, count_buckets
from search.querylang import Node, parse
from search.querylang.nodes import And, TimeBound
from search.querylang.sql import build_search_sql, container_sql
from search.querylang.values import resolve_time
from search.session import search_cursor

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


@dataclass
class Extent:
    """What a walk needs to know before it starts, read in one round trip."""

    lo: datetime  # the first day partition's start
    hi: datetime  # the last day partition's end
    # About when the containers' newest line arrived (`last_seen`, written up to a minute
    # late), so a walk starts where lines are rather than at a quiet `now`; lines stamped
    # later are still found, as the first window reaches to `hi`.
    newest_arrival: datetime | None
    # The containers' lines per second on the newest day counted when it was sealed.
    lines_per_second: float | None
    # [start, end) of each sealed day: one trigram index per leaf answers any window in it.
    sealed_days: list[tuple[datetime, datetime]] = field(default_factory=list)
    # The hot days' indexed blocks (ingest/store/hot_index.py).
    hot_blocks: list[tuple[datetime, datetime]] = field(default_factory=list)


def stored_extent(cur, ckeys: list[int]) -> Extent | None:
    """None when there are no day partitions."""
    cur.execute(
        "SELECT (SELECT min(day) FROM log_partitions), (SELECT max(day) FROM log_partitions), "
        "(SELECT max(last_seen) FROM containers WHERE id = ANY(%(k)s)), "
        "(SELECT sum(rows) FROM log_day_counts "
        " WHERE day = (SELECT max(day) FROM log_day_counts) AND ckey = ANY(%(k)s)), "
        "(SELECT array_agg(day ORDER BY day) FROM log_partitions WHERE sealed_at IS NOT NULL), "
        f"({hot_index.VALID_BLOCKS_SQL})",
        {"k": list(ckeys), "block_names": hot_index.BLOCK_NAMES},
    )
    first, last, arrival, rows, sealed, blocks = cur.fetchone()
    if first is None:
        return None
    starts = [datetime.combine(day, time(), UTC) for day in sealed or ()]
    return Extent(
        datetime.combine(first, time(), UTC),
        datetime.combine(last, time(), UTC) + timedelta(days=1),
        arrival,
        float(rows) / 86400 if rows else None,
        [(start, start + timedelta(days=1)) for start in starts],
        hot_index.block_spans(blocks, set(sealed or ())),
    )


def time_bounds(node: Node, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The since:/until: bounds every match lies within (top-level terms only)."""
    lo = hi = None
    for term in node.terms if isinstance(node, And) else (node,):
        if isinstance(term, TimeBound):
            at = resolve_time(term.at, now)
            if term.edge == "since":
                lo = at if lo is None else max(lo, at)
            else:
                hi = at if hi is None else min(hi, at)
    return lo, hi


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
    with search_cursor() as cur:
        ckeys = matching_ckeys(cur, node, tenants)
        extent = stored_extent(cur, ckeys) if ckeys else None
        if extent is None:
            return Page([], None)
        since, until = time_bounds(node, now)
        lo, hi = max(extent.lo, since or extent.lo), min(extent.hi, until or extent.hi)
        if before is not None:
            if newest_first:
                hi = min(hi, before[0] + timedelta(microseconds=1))
            else:
                lo = max(lo, before[0])
        anchor = None
        if newest_first and before is None:
            anchor = min(now, extent.newest_arrival or now)
        first = walk.first_width(extent.lines_per_second)
        spans = extent.sealed_days + extent.hot_blocks
        steps = walk.windows(lo, hi, newest_first, anchor, first, spans)
        edges = sorted({edge for span in extent.hot_blocks for edge in span})
        window = next(steps, None)
        while window is not None:
            for piece in walk.split(window, edges, newest_first):
                sql_text, params = build_search_sql(
                    node,
                    tenants,
                    ckeys,
                    limit - len(rows),
                    before=before,
                    newest_first=newest_first,
                    now=now,
                    window=piece,
                    indexed=walk.covered(piece, spans),
                )
                cur.execute(sql_text, params)
                rows += [row_dict(r) for r in cur.fetchall()]
                if len(rows) >= limit:
                    break
            try:
                window = steps.send((len(rows), limit - len(rows)))
            except StopIteration:
                window = None
        meta = container_meta(cur, sorted({r["ckey"] for r in rows}))
    next_before = (rows[-1]["ts"], rows[-1]["id"]) if len(rows) >= limit else None
    return Page(rows, next_before, meta)


def histogram(
    tenants: list[str], query: str | Node, bucket: str = "1h", now: datetime | None = None
) -> list[dict]:
    """Matching lines per time bucket (`date_bin`), oldest first."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    node = parse(query) if isinstance(query, str) else query
    with search_cursor() as cur:
        ckeys = matching_ckeys(cur, node, tenants)
        if not ckeys:
            return []
        counts = count_buckets(cur, node, tenants, ckeys, bucket, now or datetime.now(UTC))
    return [{"bucket": b, "count": n} for b, n in sorted(counts.items())]


def context(tenants: list[str], ckey: int, row_id: int, before: int = 20, after: int = 20) -> dict:
    """Lines around one row of one container, in (ts, id) order."""
    columns = "ckey, id, ts, ts_ns, stream, level, flags, line, attrs"
    with search_cursor() as cur:
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
