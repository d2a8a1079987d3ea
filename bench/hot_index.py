"""What the hot days' block indexes (ingest/store/hot_index.py) cost the write path and the
background.

    python -m bench.hot_index                 # 300k COPY rows a round, 90k lines an hour
    python -m bench.hot_index --copy-rows 100000 --per-hour 20000 --rounds 1

(1) COPY cost: binary COPY (the writer's encoder, 5,000-row transactions) of rows stamped in
    the current hour into a day whose leaves carry 0, 4, 8, 11 or 23 partial trigram indexes on
    earlier hours (predicates the rows do not match), and, for scale, 1 that they do match
    (what a full trigram index costs). Backend CPU per row from /proc, best of `--rounds`.
(2) Build cost: a day filled with `--per-hour` lines an hour for 16 hours; the beat task's own
    code builds one hour block, then one 6-hour block, on every leaf (CREATE INDEX
    CONCURRENTLY, one backend). Rows indexed per second of build is the ingest rate one core
    of builds keeps up with when each row is indexed once; blocks are built twice (hour, then
    its merged slot) before sealing builds the day's full index, so halve it for the blocks.

Uses its own database (--db), dropped at the end.
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ingest import cpu_s  # noqa: E402
from ingest.store import hot_index, partitions, trgm_index  # noqa: E402
from ingest.store.copy import COPY_SQL, encode_rows  # noqa: E402
from ingest.store.schema import CREATE_LOGS  # noqa: E402

DAY = date(2026, 12, 1)
MIDNIGHT = datetime.combine(DAY, datetime.min.time(), UTC)
WORDS = [
    *("get", "post", "user", "order", "cart", "item", "payment", "session"),
    *("token", "cache", "queue", "worker", "retry", "request", "response"),
]
BATCH = 5000


def lines(rnd: random.Random, n: int, first: int):
    pool = [" ".join(rnd.choice(WORDS) for _ in range(8)) for _ in range(1 << 12)]
    for i in range(first, first + n):
        yield (
            f"{i:09d} level=info {pool[rnd.getrandbits(12)]} status={(200, 201, 404, 500)[i % 4]} " + "x" * 20
        )


def encoded(rows: int, start: datetime, span: timedelta, first_id: int) -> list[bytes]:
    rnd = random.Random(first_id)
    step = int(span.total_seconds() * 10**9) // rows
    base = int(start.timestamp()) * 10**9
    out, batch = [], []
    for k, line in enumerate(lines(rnd, rows, first_id)):
        ts = base + k * step
        batch.append((k % 200, ts, ts, 1, 6, 0, line.encode(), None, None))
        if len(batch) == BATCH:
            out.append(encode_rows(batch, list(range(1, 201)), first_id + k + 1 - BATCH))
            batch = []
    if batch:
        out.append(encode_rows(batch, list(range(1, 201)), first_id + rows - len(batch)))
    return out


def set_blocks(conn, leaves: list[str], hours: list[int]) -> None:
    """Exactly the hour blocks `hours` on every leaf."""
    with conn.cursor() as cur:
        for leaf in leaves:
            for h in range(24):
                block = hot_index.Block(DAY, h * 60, h * 60 + 60)
                if h in hours:
                    hot_index.ensure_block_index(cur, leaf, block, None)
                else:
                    trgm_index.drop(cur, block.index_name(leaf))


def copy_cost(url: str, data: list[bytes]) -> tuple[float, float]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        pid = conn.info.backend_pid
        cpu, started = cpu_s(pid), time.perf_counter()
        for chunk in data:
            with cur.copy(COPY_SQL) as copy:
                copy.write(chunk)
            conn.commit()
        elapsed, cpu = time.perf_counter() - started, cpu_s(pid) - cpu
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(partitions.partition_name(DAY))))
        conn.commit()
    rows = len(data) * BATCH
    return cpu / rows * 1e6, rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="logsite_bench_hot_index")
    parser.add_argument("--copy-rows", type=int, default=300_000)
    parser.add_argument("--per-hour", type=int, default=90_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-mem", default="256MB")
    args = parser.parse_args()
    url = f"{args.dsn.rstrip('/')}/{args.db}"
    with psycopg.connect(f"{args.dsn.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.db)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.db)))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(CREATE_LOGS)
            with conn.cursor() as cur:
                partitions.ensure_day(cur, DAY, 8)
                leaves = partitions.leaf_names(cur, partitions.partition_name(DAY))
            load1 = os.getloadavg()[0]
            # (1) rows of 23:00..24:00; blocks on earlier hours, and one on 23:00 itself.
            data = encoded(
                args.copy_rows - args.copy_rows % BATCH, MIDNIGHT + timedelta(hours=23), timedelta(hours=1), 1
            )
            # 11: the most the default levels (15,60,360) leave on a leaf.
            cases = {
                "none": [],
                "4 blocks": list(range(4)),
                "8 blocks": list(range(8)),
                "11 blocks": list(range(11)),
            }
            cases["23 blocks"] = list(range(23))
            cases["1 block the rows match"] = [23]
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):
                for name, hours in cases.items():
                    set_blocks(conn, leaves, hours)
                    copy_cost(url, data[:2])  # warm
                    cpu, rate = copy_cost(url, data)
                    old = best.get(name)
                    best[name] = (min(cpu, old[0]) if old else cpu, max(rate, old[1]) if old else rate)
            set_blocks(conn, leaves, [])
            print(f"(1) COPY of {len(data) * BATCH:,} rows into a leaf set with partial trigram indexes")
            print(
                f"{'partial indexes per leaf':28} {'backend µs/row':>15} {'vs none':>8} {'rows/s (wall)':>14}"
            )
            for name, (cpu, rate) in best.items():
                print(f"{name:28} {cpu:15.2f} {cpu / best['none'][0]:7.2f}x {rate:14,.0f}")

            # (2) 16 hours of lines, then one hour block and one 6-hour block per leaf.
            with conn.cursor() as cur:
                first = 1
                for hour in range(16):
                    for chunk in encoded(
                        args.per_hour, MIDNIGHT + timedelta(hours=hour), timedelta(hours=1), first
                    ):
                        with cur.copy(COPY_SQL) as copy:
                            copy.write(chunk)
                    first += args.per_hour
                cur.execute(
                    sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(partitions.partition_name(DAY)))
                )
                cur.execute("SELECT set_config('maintenance_work_mem', %s, false)", (args.work_mem,))
                print(f"\n(2) builds on a day of 16 h x {args.per_hour:,} lines (all 8 leaves, one backend)")
                for label, start, end in (("hour block 14-15", 14, 15), ("6 h block 06-12", 6, 12)):
                    block = hot_index.Block(DAY, start * 60, end * 60)
                    started, cpu0 = time.perf_counter(), cpu_s(conn.info.backend_pid)
                    for leaf in leaves:
                        hot_index.ensure_block_index(cur, leaf, block, None)
                    seconds, cpu = time.perf_counter() - started, cpu_s(conn.info.backend_pid) - cpu0
                    rows = args.per_hour * (end - start)
                    print(
                        f"{label:18} {seconds:6.2f} s wall, {cpu:6.2f} s backend CPU: "
                        f"{rows / cpu:,.0f} rows per CPU second"
                    )
            print(f"2 cores, load average {load1:.2f} before / {os.getloadavg()[0]:.2f} after")
    finally:
        with psycopg.connect(f"{args.dsn.rstrip('/')}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.db)))


if __name__ == "__main__":
    main()
