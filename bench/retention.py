"""The writer's stall while retention and sealing run over a large `logs` table.

    python -m bench.retention                              # 10M rows over 10 days
    python -m bench.retention --rows 2000000 --seal-days 2  # a quicker run

A writer (the real BatchWriter) commits 1000-line batches every 50 ms for the whole run; 3% of
each batch are late lines for days under maintenance (a day being dropped, a mixed day whose
tenant-A rows are deleted, a day being sealed). Printed per phase: the batch commit latency
p50 / p99 / max; the share of 10 ms samples in which the writer's backend waited for a lock;
and how long the maintenance itself took. Phases:
  baseline    the writer alone
  retention   tenant A keeps 4 days, tenant B 7: the 3 oldest days are dropped whole, the
              next 3 lose tenant A's half (chunked DELETE), by ingest.retention.apply
  sealing     CREATE INDEX CONCURRENTLY (pg_trgm GIN) + VACUUM (FREEZE, ANALYZE) per leaf,
              by ingest.store.sealing, on --seal-days days
  plain-index for comparison: the same index built without CONCURRENTLY on one day's leaves
Also: the two ways to empty a mixed day (chunked DELETE vs copying the kept rows into a new
table with its indexes), and late-line insert and search cost on a sealed day with the trigram
index's fastupdate off and on (what sealing uses).

Uses its own database (--db; created, migrated, dropped at the end unless --keep). The
machine's load is printed: figures from a shared machine are noisy.
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PERIOD_S = 0.05
BATCH = 1000
LATE_PER_DAY = 10
WRITER_APP = "bench-retention-writer"


def setup_django(args) -> None:
    os.environ["DATABASE_URL"] = f"{args.dsn.rstrip('/')}/{args.db}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["LOGSITE_RETENTION_DAYS"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    import django

    django.setup()


def admin_sql(args, statement) -> None:
    import psycopg

    with psycopg.connect(f"{args.dsn.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(statement)


def recreate_database(args) -> None:
    from psycopg import sql

    admin_sql(args, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(args.db)))
    admin_sql(args, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.db)))


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- data --------------------------------------------------------------------------------------
GENERATE = """
INSERT INTO logs (ckey, id, ts, ts_ns, received_at, stream, level, flags, line)
SELECT k.ckeys[1 + (i %% k.n)], %(first_id)s + i,
       t.ts, 0, t.ts, 1 + (i %% 7 = 0)::int, 6, 0,
       CASE WHEN i %% 5 = 0 THEN 'ERROR upstream ' || (i %% 503) || ' connection reset req=' || md5(i::text)
            ELSE 'GET /api/v1/items/' || (i %% 1000) || ' 200 ' || (i %% 97) || 'ms user=' || (i %% 5000)
                 || ' req=' || substr(md5(i::text), 1, 16) END
FROM generate_series(0, %(count)s - 1) i, (SELECT %(ckeys)s::bigint[] AS ckeys, %(n)s AS n) k,
     LATERAL (SELECT %(start)s::timestamptz + (i::bigint * %(step)s) * interval '1 microsecond' AS ts) t
"""


def generate(conn, today: date, days: int, rows: int, containers: int) -> dict:
    from ingest.store import partitions

    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ingest_tenant (slug, name, created_at) "
            "VALUES ('bench-a', '', now()), ('bench-b', '', now())"
        )
        cur.execute(
            "INSERT INTO containers "
            "(tenant, service, container_id, name, image, host, labels, first_seen, last_seen) "
            "SELECT CASE WHEN g %% 2 = 0 THEN 'bench-a' ELSE 'bench-b' END, 'svc' || (g %% 10), 'cid' || g, "
            "'c' || g, '', '', '{}', now(), now() FROM generate_series(1, %s) g RETURNING id",
            (containers,),
        )
        ckeys = [r[0] for r in cur.fetchall()]
    per_day = rows // days
    started = time.perf_counter()
    first_id = 1
    for age in range(days, 0, -1):
        day = today - timedelta(days=age)
        with conn.transaction(), conn.cursor() as cur:
            partitions.ensure_day(cur, day)
        t0 = time.perf_counter()
        conn.execute(
            GENERATE,
            {
                "first_id": first_id,
                "start": day_start(day),
                "step": 86_400_000_000 // per_day,
                "count": per_day,
                "ckeys": ckeys,
                "n": len(ckeys),
            },
        )
        first_id += per_day
        print(f"  day -{age}: {per_day:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    conn.execute("SELECT setval('logs_id_seq', %s)", (first_id + 1,))
    conn.execute("ANALYZE containers")
    for name, _state in partitions.day_tables(conn.cursor()).values():
        for leaf in partitions.leaf_names(conn.cursor(), name):
            conn.execute(f'VACUUM ANALYZE "{leaf}"')
    return {"rows": per_day * days, "seconds": time.perf_counter() - started, "ckeys": ckeys}


# --- the writer under test ---------------------------------------------------------------------
class WriterProbe(threading.Thread):
    """The real BatchWriter, committing a batch every PERIOD_S; records each commit's latency."""

    def __init__(self, conninfo: str, spool_dir: Path, late_days):
        super().__init__(daemon=True)
        from ingest.normalize import Limits
        from ingest.pipeline import Pipeline
        from ingest.store.spool import Spool
        from ingest.store.writer import BatchWriter

        self.pipeline = Pipeline(queue_limit=10**6, batch_lines=BATCH, batch_wait_s=0.01)
        self.limits = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=3650 * 86400 * 10**9)
        self.writer = BatchWriter(self.pipeline, conninfo, Spool(spool_dir, "bench"), self.limits, "bench")
        self.late_days = late_days
        self.samples: list[tuple[float, float]] = []  # (monotonic start, seconds)
        self.stop = threading.Event()

    def run(self) -> None:
        from ingest.normalize import normalize_batch
        from ingest.record import Record

        n = 0
        while not self.stop.is_set():
            now = time.time_ns()
            late = [
                Record(
                    line=f"late line {n} {i} for {day}",
                    ts_ns=int(day_start(day).timestamp() * 1e9) + n,
                    tenant="bench-b",
                    container_id=f"late-{i % 3}",
                )
                for day in self.late_days()
                for i in range(LATE_PER_DAY)
            ]
            records = [
                Record(
                    line=f"live line {n} {i} GET /api ok",
                    ts_ns=now,
                    tenant="bench-b",
                    container_id=f"live-{i % 20}",
                )
                for i in range(BATCH - len(late))
            ] + late
            batch = normalize_batch(records, self.limits)
            t0 = time.monotonic()
            self.writer.consume_batch(batch, 0, len(records))
            took = time.monotonic() - t0
            self.samples.append((t0, took))
            n += 1
            self.stop.wait(max(0.0, PERIOD_S - took))

    def between(self, start: float, end: float) -> list[float]:
        return [took for t0, took in self.samples if start <= t0 < end]


class LockWaits(threading.Thread):
    """Samples the writer's backend every 10 ms: was it waiting for a lock? Separates lock
    stalls from CPU and I/O contention on a shared machine."""

    def __init__(self, conninfo: str):
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.samples: list[tuple[float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
        )
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self.stop.wait(0.01):
                waiting = conn.execute(query, (WRITER_APP,)).fetchone()[0] > 0
                self.samples.append((time.monotonic(), waiting))

    def between(self, start: float, end: float) -> str:
        inside = [w for t, w in self.samples if start <= t < end]
        return f"{sum(inside)}/{len(inside)}"


def figures(latencies: list[float]) -> str:
    if not latencies:
        return "no batches"
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{len(ms):5d} batches  p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


# --- phases ------------------------------------------------------------------------------------
def mixed_day_alternatives(conn, day: date, a_ckeys: list[int]) -> dict:
    """Cost of the two ways to remove tenant A's rows from a mixed day (nothing is changed)."""
    from ingest.store.partitions import partition_name

    name = partition_name(day)
    t0 = time.perf_counter()
    conn.execute(f'CREATE TABLE bench_copyback AS SELECT * FROM "{name}" WHERE ckey <> ALL(%s)', (a_ckeys,))
    conn.execute("CREATE INDEX ON bench_copyback (ckey, ts, id)")
    conn.execute("CREATE INDEX ON bench_copyback USING brin (id)")
    copy_s = time.perf_counter() - t0
    kept = conn.execute("SELECT count(*) FROM bench_copyback").fetchone()[0]
    conn.execute("DROP TABLE bench_copyback")
    return {"copy_back_s": copy_s, "kept_rows": kept}


def fastupdate_comparison(conn, day: date) -> dict:
    """Late-line inserts into a sealed leaf and a search of it, with the GIN fastupdate off/on
    (sealing keeps the default, on)."""
    from ingest.store.partitions import leaf_names, partition_name
    from ingest.store.sealing import trgm_index_name

    leaf = leaf_names(conn.cursor(), partition_name(day))[0]
    index = trgm_index_name(leaf)
    ckey = conn.execute(f'SELECT ckey FROM "{leaf}" LIMIT 1').fetchone()[0]
    start = day_start(day)
    out = {}
    for mode in ("off", "on"):
        conn.execute(f'ALTER INDEX "{index}" SET (fastupdate = {mode})')
        t0 = time.perf_counter()
        for batch in range(100):
            conn.execute(
                f'INSERT INTO "{leaf}" (ckey, id, ts, received_at, stream, line) '
                "SELECT %s, -(%s * 1000 + g), %s, now(), 1, 'late fastupdate-" + mode + " ' || md5(g::text) "
                "FROM generate_series(1, 50) g",
                (ckey, batch + (0 if mode == "off" else 100), start),
            )
        insert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(5):
            query = f'SELECT count(*) FROM "{leaf}" WHERE line ILIKE %s'
            conn.execute(query, ("%connection reset req=ffe%",)).fetchone()
        out[mode] = {"insert_5000_late_lines_s": insert_s, "search_ms": (time.perf_counter() - t0) / 5 * 1000}
    conn.execute(f'ALTER INDEX "{index}" RESET (fastupdate)')
    conn.execute(f'VACUUM "{leaf}"')  # flushes the pending list the "on" round left
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--seal-days", type=int, default=3, help="days sealed in the sealing phase")
    parser.add_argument("--baseline-s", type=float, default=20)
    parser.add_argument("--seal-work-mem", default="256MB", help="maintenance_work_mem for the sealing")
    parser.add_argument("--dsn", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="logsite_bench_retention")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    recreate_database(args)
    setup_django(args)
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            from psycopg import sql

            admin_sql(
                args, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(args.db))
            )


def run(args) -> None:
    from django.core.management import call_command
    from django.utils import timezone

    from ingest.maintenance import maintenance_connection
    from ingest.models import RetentionPolicy, Tenant
    from ingest.retention.apply import run_retention
    from ingest.retention.load import load_rules
    from ingest.store import sealing
    from ingest.store.partitions import leaf_names, partition_name
    from ingest.store.writer import conninfo_from_settings

    call_command("migrate", verbosity=0)
    today = timezone.now().date()
    conn = maintenance_connection()
    print(f"generating {args.rows:,} rows over {args.days} days, {args.containers} containers", flush=True)
    data = generate(conn, today, args.days, args.rows, args.containers)
    size = conn.execute(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('logs')"
    )
    print(
        f"  {data['rows']:,} rows in {data['seconds']:.0f} s, {size.fetchone()[0]} with indexes", flush=True
    )
    a_ckeys = [r[0] for r in conn.execute("SELECT id FROM containers WHERE tenant = 'bench-a'").fetchall()]

    tenant_a = RetentionPolicy.objects.create(
        scope="tenant", tenant=Tenant.objects.get(slug="bench-a"), days=4
    )
    tenant_b = RetentionPolicy.objects.create(
        scope="tenant", tenant=Tenant.objects.get(slug="bench-b"), days=7
    )
    mixed_day = today - timedelta(days=6)
    seal_days = [today - timedelta(days=age) for age in range(2, 2 + args.seal_days)]
    late = {"days": [mixed_day, seal_days[0]]}

    alternatives = mixed_day_alternatives(conn, mixed_day, a_ckeys)

    spool_dir = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    conninfo = conninfo_from_settings()
    probe = WriterProbe(f"{conninfo} application_name={WRITER_APP}", spool_dir, lambda: late["days"])
    probe.start()
    locks = LockWaits(conninfo)
    locks.start()
    time.sleep(3)  # connection, partition cache: not part of any phase
    results = []

    def phase(name: str, work) -> None:
        spooled = probe.pipeline.counters.spooled
        t0 = time.monotonic()
        note = work()
        end = time.monotonic()
        spooled = probe.pipeline.counters.spooled - spooled
        if spooled:
            note += f"; {spooled:,} lines went through the spool"
        results.append((name, t0, end, note))

    phase("baseline", lambda: time.sleep(args.baseline_s) or "")

    def retention() -> str:
        t0 = time.monotonic()
        summary = run_retention(conn, lambda: load_rules(timezone.now()), max_ts_age_days=30)
        deleted = summary["deleted_rows"]
        # The first run's figures: the race run drops one day and deletes nothing.
        stats.setdefault("delete_s", [summary["seconds"][d] for d in deleted])
        stats.setdefault("drop_s", [summary["seconds"][d] for d in summary["dropped_days"]])
        return (
            f"{len(summary['dropped_days'])} days dropped, {sum(deleted.values()):,} rows deleted "
            f"from {len(deleted)} days, in {time.monotonic() - t0:.1f} s"
        )

    stats: dict = {}
    late["days"] = [mixed_day]
    phase("retention", retention)

    def seal() -> str:
        times = []
        for day in seal_days:
            s0 = time.monotonic()
            done = sealing.seal_day(conn, day, args.seal_work_mem)
            took = time.monotonic() - s0
            times.append(f"{took:.0f} s (index {done['index_s']:.0f}, vacuum {done['vacuum_s']:.0f})")
        rows = conn.execute(
            "SELECT sum(rows) FROM log_day_counts WHERE day = ANY(%s)", (seal_days,)
        ).fetchone()[0]
        return f"{len(seal_days)} days, {rows:,} rows: " + ", ".join(times)

    late["days"] = [seal_days[0], mixed_day]
    phase("sealing", seal)

    # The same index without CONCURRENTLY: the writer's late lines for that day must wait.
    day = seal_days[0]
    leaves = leaf_names(conn.cursor(), partition_name(day))
    for leaf in leaves:
        conn.execute(f'DROP INDEX "{sealing.trgm_index_name(leaf)}"')
    late["days"] = [day]

    def plain_index() -> str:
        t0 = time.monotonic()
        for leaf in leaves:
            conn.execute(
                f'CREATE INDEX "{sealing.trgm_index_name(leaf)}" ON "{leaf}" USING gin (line gin_trgm_ops)'
            )
        return f"{len(leaves)} leaves of one day in {time.monotonic() - t0:.1f} s"

    phase("plain-index", plain_index)

    # Late lines for the very day being dropped: the writer meets it half-detached.
    race_day = today - timedelta(days=7)
    for policy in (tenant_a, tenant_b):
        policy.days = 6
        policy.save()
    late["days"] = [race_day]
    time.sleep(2)

    def drop_race() -> str:
        note = retention()
        # The spooled batches belong to this phase: wait until the writer has replayed them.
        deadline = time.monotonic() + 60
        while probe.writer.spool.has_pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        return note

    phase("drop-race", drop_race)

    probe.stop.set()
    probe.join()
    locks.stop.set()
    locks.join()

    fast = fastupdate_comparison(conn, seal_days[-1])
    counters = probe.pipeline.counters
    print()
    print(
        f"writer: {counters.committed:,} lines committed, {counters.spooled:,} spooled, "
        f"{counters.quarantined} quarantined"
    )
    print(f"{'phase':12s} {'writer batch commit latency':58s} {'lock-wait samples':17s} maintenance")
    for name, start, end, note in results:
        print(f"{name:12s} {figures(probe.between(start, end)):58s} {locks.between(start, end):17s} {note}")
    print()
    print(
        f"mixed day, removing tenant A's half ({alternatives['kept_rows']:,} rows kept): "
        f"copy-back of the kept rows with indexes {alternatives['copy_back_s']:.1f} s "
        "(before the swap and the late-line catch-up it would still need); "
        f"chunked DELETE {statistics.mean(stats['delete_s']):.1f} s per day "
        f"(drop of a whole day {statistics.mean(stats['drop_s']) * 1000:.0f} ms)"
    )
    for mode, f in fast.items():
        print(
            f"sealed leaf, fastupdate={mode}: 5000 late lines in 50-line inserts "
            f"{f['insert_5000_late_lines_s'] * 1000:.0f} ms, then a trigram search {f['search_ms']:.1f} ms"
        )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
