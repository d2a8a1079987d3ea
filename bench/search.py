"""Search latency over a generated store, next to grep -F, rg -F and a sequential ILIKE.

    python bench/search.py [--lines 10000000] [--containers 200] [--days 7] [--runs 15]

Creates (and at the end drops) the database `logsite_bench_search` on DATABASE_URL's server,
loads the lines through the real writer path (normalise → containers → binary COPY), seals
every day but today (pg_trgm GIN index + ANALYZE, as the sealing task does), then prints
p50/p95 in ms for each kind of query through search/executor.py (the code the API runs).
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH_DB = "logsite_bench_search"

WORDS = [
    "get",
    "post",
    "user",
    "order",
    "cart",
    "item",
    "payment",
    "session",
    "token",
    "cache",
    "queue",
    "worker",
    "retry",
    "request",
    "response",
]
RARE = "zebracorn"
COMMON = "payment"


def admin_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/logsite")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + BENCH_DB))


def psql(db_url: str, sql: str) -> None:
    subprocess.run(["psql", "-qX", db_url, "-c", sql], check=True, capture_output=True)


def setup_database() -> str:
    url = admin_url()
    maint = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    psql(maint, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    psql(maint, f"CREATE DATABASE {BENCH_DB}")
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    return url


def make_line(rnd: random.Random, i: int) -> str:
    words = " ".join(rnd.choice(WORDS) for _ in range(8))
    extra = f" {RARE}" if i % 100_000 == 7 else ""
    return f"{i:09d} level=info {words} status={rnd.choice((200, 201, 404, 500))}{extra} " + "x" * 20


def load(args, text_file: Path) -> None:
    from ingest.record import Record
    from tests.support.store import store_records

    rnd = random.Random(7)
    now_ns = time.time_ns()
    span_ns = args.days * 86400 * 10**9
    step = span_ns // args.lines
    chunk = 500_000
    started = time.monotonic()
    with text_file.open("w") as out:
        for start in range(0, args.lines, chunk):
            records = []
            for i in range(start, min(start + chunk, args.lines)):
                c = i % args.containers
                line = make_line(rnd, i)
                out.write(line + "\n")
                records.append(
                    Record(
                        line=line,
                        ts_ns=now_ns - span_ns + i * step,
                        tenant="bench",
                        service=f"svc-{c % 20}",
                        container_id=f"{c:012x}",
                        container_name=f"web-{c}",
                        image="nginx:1.27" if c % 2 else "api:3",
                        stream="stderr" if i % 10 == 0 else "stdout",
                        labels={"com.docker.compose.service": f"svc-{c % 20}"},
                    )
                )
            store_records(records)
            print(f"  loaded {min(start + chunk, args.lines):,} lines", file=sys.stderr, flush=True)
    print(f"load: {args.lines / (time.monotonic() - started):,.0f} lines/s", file=sys.stderr)


def seal(cursor) -> None:
    cursor.execute("SELECT name FROM log_partitions WHERE day < current_date ORDER BY day")
    for (day,) in cursor.fetchall():
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            (day,),
        )
        for (child,) in cursor.fetchall():
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "{child}_line_trgm" ON "{child}" USING gin (line gin_trgm_ops)'
            )
            cursor.execute(f'ANALYZE "{child}"')
    cursor.execute("ANALYZE containers")


def timed(fn, runs: int) -> tuple[float, float]:
    fn()  # warm the cache once, as a user's second search would be
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1 if len(samples) > 1 else 0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    url = setup_database()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    import django

    django.setup()
    from django.db import connection

    from search import executor

    work = Path(tempfile.mkdtemp(prefix="logsite-bench-search-"))
    text_file = work / "lines.txt"
    try:
        load(args, text_file)
        with connection.cursor() as cur:
            t = time.monotonic()
            seal(cur)
            print(
                f"seal (trigram GIN + ANALYZE of {args.days - 1} days): {time.monotonic() - t:.1f}s",
                file=sys.stderr,
            )
        tenants = ["bench"]
        cases = {
            "container substring (rare)": lambda: executor.search_page(tenants, f"container:web-7 {RARE}"),
            "container substring (common)": lambda: executor.search_page(
                tenants, f"container:web-7 {COMMON}"
            ),
            "global top-100 rare term": lambda: executor.search_page(tenants, RARE),
            "global top-100 common term": lambda: executor.search_page(tenants, COMMON),
            "regex /status=50[0-9]/": lambda: executor.search_page(tenants, "/status=50[0-9]/"),
            "label filter": lambda: executor.search_page(tenants, "label:com.docker.compose.service=svc-3"),
            "histogram 1h, whole range": lambda: executor.histogram(tenants, "", bucket="1h"),
            "histogram of a term": lambda: executor.histogram(tenants, COMMON, bucket="1h"),
        }
        page = executor.search_page(tenants, "container:web-7", limit=1)
        anchor = page.rows[0]
        cases["context 20/20"] = lambda: executor.context(tenants, anchor["ckey"], anchor["id"], 20, 20)
        results = {name: timed(fn, args.runs) for name, fn in cases.items()}

        def seq_ilike():
            with connection.cursor() as cur:
                cur.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
                cur.execute("SELECT count(*) FROM logs WHERE line ILIKE %s", (f"%{RARE}%",))
                cur.execute("RESET enable_indexscan; RESET enable_bitmapscan")

        results["sequential ILIKE (rare)"] = timed(seq_ilike, 3)
        tools = {"grep -F": ["grep", "-F", "-c", RARE, str(text_file)]}
        if shutil.which("rg"):
            tools["rg -F"] = ["rg", "-F", "-c", RARE, str(text_file)]
        for name, cmd in tools.items():
            results[f"{name} (rare, text file)"] = timed(
                lambda cmd=cmd: subprocess.run(cmd, capture_output=True), 5
            )
        print(
            f"\n{args.lines:,} lines, {args.containers} containers, {args.days} days, {os.cpu_count()} cores"
        )
        print(f"{'query':40} {'p50 ms':>10} {'p95 ms':>10}")
        for name, (p50, p95) in results.items():
            print(f"{name:40} {p50:10.1f} {p95:10.1f}")
        grep = results["grep -F (rare, text file)"][0]
        rare = results["global top-100 rare term"][0]
        print(f"\nglobal rare term vs grep -F: {grep / rare:.1f}x faster")
        if "rg -F (rare, text file)" in results:
            print(f"global rare term vs rg -F:   {results['rg -F (rare, text file)'][0] / rare:.1f}x faster")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        connection.close()
        if not args.keep:
            maint = urlunsplit(urlsplit(url)._replace(path="/postgres"))
            psql(maint, f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
