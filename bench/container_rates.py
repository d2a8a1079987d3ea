"""Per-container rates: what counting in the writer costs versus counting rows in `logs`.

python -m bench.container_rates                  # 1M rows over 200 containers in the last hour
python -m bench.container_rates --rows 300000

Prints (a) the writer-side cost of ingest/rates.py's RateCounter.count per committed row and
the Redis read of the status page, and (b) what the same figures cost as SQL over `logs`
(count(*) and sum(octet_length(line)) per container for the last minute and hour, through the
(ckey, ts, id) btree) in a scratch database that is dropped afterwards.
"""

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
django.setup()

import psycopg  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from ingest.normalize import Limits, normalize_batch  # noqa: E402
from ingest.rates import RateCounter, read_rates  # noqa: E402
from ingest.record import Record  # noqa: E402
from ingest.store import partitions  # noqa: E402
from ingest.store.schema import CREATE_LOGS  # noqa: E402
from ingest.store.writer import CommittedBatch, conninfo_from_settings  # noqa: E402

DB = "logsite_bench_rates"


def bench_counter(containers: int, batch_rows: int, batches: int) -> tuple[float, float]:
    """(ns per row of RateCounter.count, ns per row of normalize_batch on the same rows)."""
    now = time.time_ns()
    records = [
        Record(line=b"x" * 120, tenant="t", container_id=f"c{i % containers}", received_ns=now)
        for i in range(batch_rows)
    ]
    limits = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=30 * 86400 * 10**9)
    start = time.perf_counter()
    for _ in range(batches // 10):
        batch = normalize_batch(records, limits)
    normalize_ns = (time.perf_counter() - start) / (batch_rows * (batches // 10)) * 1e9
    committed = CommittedBatch(batch, list(range(1, len(batch.metas) + 1)), 1)
    counter = RateCounter()
    start = time.perf_counter()
    for _ in range(batches):
        counter.count(committed)
    count_ns = (time.perf_counter() - start) / (batch_rows * batches) * 1e9
    return count_ns, normalize_ns


def bench_redis_read(containers: int) -> float:
    client = redis.Redis.from_url(settings.REDIS_URL)
    fields = [f"c:{i}" for i in range(1, containers + 1)]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        read_rates(client, fields)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def scratch_conninfo(dbname: str) -> str:
    return make_conninfo(conninfo_from_settings(), dbname=dbname)


def fill(rows: int, containers: int) -> None:
    with psycopg.connect(scratch_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    with psycopg.connect(scratch_conninfo(DB), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(CREATE_LOGS)
        today = datetime.now(UTC).date()
        for day in (today - timedelta(days=1), today):
            partitions.ensure_day(cur, day)
        # Spread over the last hour (the window that matters), ids increasing with time.
        cur.execute(
            "INSERT INTO logs (ckey, id, ts, received_at, stream, line) "
            "SELECT 1 + g %% %s, g, now() - make_interval(secs => 3600.0 * (%s - g) / %s), now(), 1, "
            "repeat('x', 120) FROM generate_series(1, %s) g",
            [containers, rows, rows, rows],
        )
        cur.execute("VACUUM ANALYZE logs")


def bench_sql(containers: int, window: str, keys: int) -> float:
    query = (
        "SELECT ckey, count(*), sum(octet_length(line)) FROM logs "
        "WHERE ckey = ANY(%s) AND ts > now() - %s::interval GROUP BY ckey"
    )
    times = []
    with psycopg.connect(scratch_conninfo(DB)) as conn, conn.cursor() as cur:
        for _ in range(3):
            start = time.perf_counter()
            cur.execute(query, [list(range(1, keys + 1)), window])
            cur.fetchall()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--containers", type=int, default=200)
    args = parser.parse_args()

    count_ns, normalize_ns = bench_counter(args.containers, 5000, 100)
    print(f"writer: RateCounter.count   {count_ns:9.1f} ns per committed row (5000-row batches)")
    print(f"writer: normalize_batch     {normalize_ns:9.1f} ns per row ({count_ns / normalize_ns:.1%} of it)")
    read_ms = bench_redis_read(args.containers)
    print(f"web:    read_rates          {read_ms:9.1f} ms for {args.containers} containers (15 buckets)")
    print(f"filling {args.rows} rows over {args.containers} containers in the last hour ...")
    fill(args.rows, args.containers)
    try:
        for window in ("1 minute", "1 hour"):
            for keys in (1, args.containers):
                ms = bench_sql(args.containers, window, keys)
                print(f"sql:    count over {window:8} for {keys:4} container(s) {ms:9.1f} ms")
    finally:
        with psycopg.connect(scratch_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DB)))


if __name__ == "__main__":
    main()
