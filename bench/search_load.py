"""Loads the search bench's store fast: binary COPY straight into each day's partition.

Going through the writer (normalise, batch, commit, fan out) costs minutes at 10M lines and
measures ingest, not search; here the rows are encoded by the writer's own binary COPY
encoder (ingest/store/copy.py) and copied per day, one thread generating while another
copies. Containers go through the writer's ContainerKeys, days through ensure_day and the
sealing through seal_day, so the store has exactly the shape ingest and the sealing task give
it. The same lines are written to a text file for grep and rg.

The lines are spread evenly over `days` UTC days, the newest of which is today (its lines
between midnight and now): that day stays hot (unsealed, no trigram index), as it would in
production, and holds 1/days of the lines whatever the time of day the bench runs.
"""

import queue
import random
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

RARE = "zebracorn"
COMMON = "payment"
WORDS = [
    *("get", "post", "user", "order", "cart", "item", "payment", "session"),
    *("token", "cache", "queue", "worker", "retry", "request", "response"),
]
RARE_EVERY = 100_000
CHUNK = 200_000
# Every line draws its 8 words from a pool of pre-joined sequences: generating 10M lines
# word by word would cost more than copying them.
POOL_BITS = 14


def make_pool(rnd: random.Random) -> list[str]:
    return [" ".join(rnd.choice(WORDS) for _ in range(8)) for _ in range(1 << POOL_BITS)]


def make_line(rnd: random.Random, pool: list[str], i: int) -> str:
    extra = f" {RARE}" if i % RARE_EVERY == 7 else ""
    status = (200, 201, 404, 500)[rnd.getrandbits(2)]
    return f"{i:09d} level=info {pool[rnd.getrandbits(POOL_BITS)]} status={status}{extra} " + "x" * 20


def day_spans(days: int, now: datetime) -> list[tuple[date, int, int]]:
    """(day, first ns, end ns) for each day, oldest first; today ends at `now`."""
    today = now.date()
    spans = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, datetime.min.time(), UTC)
        end = now if back == 0 else start + timedelta(days=1)
        spans.append((day, int(start.timestamp()) * 10**9, int(end.timestamp() * 10**6) * 1000))
    return spans


def container_keys(conninfo: str, containers: int) -> list[int]:
    from ingest.normalize import ContainerMeta
    from ingest.store.containers import ContainerKeys

    metas = [
        ContainerMeta(
            tenant="bench",
            container_id=f"{c:012x}",
            service=f"svc-{c % 20}",
            name=f"web-{c}",
            image="nginx:1.27" if c % 2 else "api:3",
            host="bench-host",
            labels_json=f'{{"com.docker.compose.service": "svc-{c % 20}"}}',
            driver_id=None,
        )
        for c in range(containers)
    ]
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        return ContainerKeys().resolve(cur, metas)


def load(conninfo: str, lines: int, containers: int, days: int, text_file: Path) -> dict:
    from ingest.store.copy import encode_rows
    from ingest.store.partitions import ensure_day, partition_name
    from ingest.store.schema import LOG_COLUMNS

    started = time.monotonic()
    ckeys = container_keys(conninfo, containers)
    spans = day_spans(days, datetime.now(UTC))
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        for day, _, _ in spans:
            ensure_day(cur, day)
    chunks: queue.Queue = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def copier() -> None:
        try:
            with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
                while (item := chunks.get()) is not None:
                    table, data = item
                    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, LOG_COLUMNS))
                    )
                    with cur.copy(copy) as cp:
                        cp.write(data)
                    conn.commit()
        except BaseException as exc:  # reported by the generating thread
            failed.append(exc)
            while chunks.get() is not None:
                pass

    thread = threading.Thread(target=copier, name="bench-copy")
    thread.start()
    rnd = random.Random(7)
    pool = make_pool(rnd)
    per_day = -(-lines // days)
    i = 0
    try:
        with text_file.open("w") as out:
            for day, start_ns, end_ns in spans:
                day_lines = min(per_day, lines - i)
                step = max(1, (end_ns - start_ns) // max(day_lines, 1))
                for chunk_start in range(0, day_lines, CHUNK):
                    rows, text = [], []
                    for k in range(chunk_start, min(chunk_start + CHUNK, day_lines)):
                        line = make_line(rnd, pool, i)
                        text.append(line)
                        ts_ns = start_ns + k * step
                        stream = 2 if i % 10 == 0 else 1
                        rows.append((i % containers, ts_ns, ts_ns, stream, 6, 0, line.encode(), None, None))
                        i += 1
                    out.write("\n".join(text) + "\n")
                    # ids follow ts, as the writer's sequence blocks do for in-order lines.
                    chunks.put((partition_name(day), encode_rows(rows, ckeys, i - len(rows) + 1)))
                    if failed:
                        raise failed[0]
                print(f"  loaded {i:,} lines (through {day})", file=sys.stderr, flush=True)
    finally:
        chunks.put(None)
        thread.join()
    if failed:
        raise failed[0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT setval('logs_id_seq', %s)", (i + 1,))
    return {"lines": i, "load_s": time.monotonic() - started}


def seal(conninfo: str, work_mem: str) -> list[dict]:
    """Seals every unsealed day before today through the sealing task's own code."""
    from ingest.store.sealing import days_due, seal_day

    done = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with conn.cursor() as cur:
            due = days_due(cur, datetime.now(UTC).date(), 0)
        for day in due:
            result = seal_day(conn, day, work_mem)
            print(f"  sealed {result}", file=sys.stderr, flush=True)
            done.append(result)
        from ingest.store.bucket_counts import days_missing, roll_up_unsealed, store_buckets
        from ingest.store.partitions import leaf_names, partition_name, ts_brin_sql

        with conn.cursor() as cur:
            # A database kept from before the rollup and the ts BRIN gets them here.
            for day in days_missing(cur):
                store_buckets(conn, day, partition_name(day))
            cur.execute("SELECT name, sealed_at IS NULL FROM log_partitions")
            for name, hot in cur.fetchall():
                for leaf in leaf_names(cur, name):
                    cur.execute(ts_brin_sql(leaf))
                    if hot:
                        # What autovacuum does to a day being written (the test server runs
                        # without it): statistics for the planner, the visibility map for
                        # index-only counts.
                        cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(leaf)))
                if hot:
                    cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
            # What the 5-minute task keeps up to date for the hot day.
            roll_up_unsealed(conn, datetime.now(UTC).date())
        conn.execute("ANALYZE containers")
    return done


def index_hot(conninfo: str, work_mem: str, open_minutes: int) -> dict:
    """Builds the hot days' block indexes through the beat task's code (hot_index.index_day),
    as the task would have at the moment the data ends, less `open_minutes`: the lines after
    the newest block stay unindexed, as the newest lines are in production (up to a block's
    length plus the delay). Blocks of a previous run that end later are dropped first."""
    from django.conf import settings

    from ingest.store import hot_index, trgm_index

    sizes = settings.LOGSITE_HOT_INDEX_BLOCKS
    delay = timedelta(seconds=settings.LOGSITE_HOT_INDEX_DELAY_SECONDS)
    started = time.monotonic()
    built = dropped = 0
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT set_config('maintenance_work_mem', %s, false)", (work_mem,))
        cur.execute("SELECT max(day) FROM log_partitions")
        today = cur.fetchone()[0]
        cur.execute(
            "SELECT max(ts) FROM logs WHERE ts >= %s", (datetime.combine(today, datetime.min.time(), UTC),)
        )
        now = cur.fetchone()[0] - timedelta(minutes=open_minutes)
        for day in hot_index.days_to_index(cur, today, 0):
            for leaf, blk in hot_index.day_indexes(cur, day):
                if blk.hi > now - delay:
                    trgm_index.drop(cur, blk.index_name(leaf))
            done = hot_index.index_day(conn, day, now, sizes, delay)
            print(f"  hot blocks {done}", file=sys.stderr, flush=True)
            built += len(done["blocks_built"])
            dropped += done["indexes_dropped"]
        blocks = hot_index.indexed_spans(cur)
        newest = max((hi for _, hi in blocks), default=datetime.combine(today, datetime.min.time(), UTC))
        cur.execute("SELECT count(*) FROM logs WHERE ts >= %s", (newest,))
        open_lines = cur.fetchone()[0]
    return {
        "blocks": [f"{lo:%H:%M}-{hi:%H:%M}" for lo, hi in blocks],
        "built": built,
        "dropped": dropped,
        "open_lines": open_lines,
        "seconds": time.monotonic() - started,
    }
