"""Search latency over a generated store, next to grep -F, rg -F and a sequential ILIKE.

    python bench/search.py --lines 10000000 --db bench_search2 --reuse

Loads `--lines` lines over `--containers` containers and `--days` UTC days (the newest is
today, which stays hot: unsealed, no full trigram index) by binary COPY straight into the day
partitions (bench/search_load.py), seals every older day through the sealing task's code
(trigram GIN index, VACUUM FREEZE ANALYZE), indexes the hot day's cooled blocks through the
hot-block task's code (partial trigram indexes, ingest/store/hot_index.py; `--hot-open-minutes`
leaves more of the newest lines unindexed), then prints p50/p95 in ms for each kind of query
through search/executor.py (the code the API runs), and grep -F / rg -F over the same lines as
a text file and a sequential ILIKE over the same table, in the same run.

`--reuse` keeps a database loaded with the same parameters (and its text file) and loads only
when there is none; `--keep` keeps the database at the end (implied by --reuse).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.search_load import COMMON, RARE, index_hot, load, seal  # noqa: E402


def db_url(name: str) -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/logsite")
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def psql(url: str, query: str) -> str:
    done = subprocess.run(["psql", "-qXAt", url, "-c", query], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def loaded_signature(url: str) -> str | None:
    try:
        return psql(url, "SELECT signature FROM bench_search_meta") or None
    except subprocess.CalledProcessError:
        return None


def prepare(args, text_file: Path) -> str:
    """The bench database's URL, loaded and sealed; loads only when --reuse finds nothing fit."""
    url = db_url(args.db)
    maint = db_url("postgres")
    signature = f"lines={args.lines} containers={args.containers} days={args.days}"
    if args.reuse and text_file.exists() and loaded_signature(url) == signature:
        print(f"reusing {args.db} ({signature})", file=sys.stderr)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, check=True)
    else:
        psql(maint, f'DROP DATABASE IF EXISTS "{args.db}"')
        psql(maint, f'CREATE DATABASE "{args.db}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, check=True)
        from ingest.store.writer import conninfo_from_settings

        text_file.parent.mkdir(parents=True, exist_ok=True)
        done = load(conninfo_from_settings(), args.lines, args.containers, args.days, text_file)
        rate = done["lines"] / done["load_s"]
        print(f"load: {rate:,.0f} lines/s ({done['load_s']:.0f} s)", file=sys.stderr)
        psql(url, "CREATE TABLE bench_search_meta (signature text)")
        psql(url, f"INSERT INTO bench_search_meta VALUES ('{signature}')")
    from django.conf import settings

    from ingest.store.writer import conninfo_from_settings

    started = time.monotonic()
    if sealed := seal(conninfo_from_settings(), settings.LOGSITE_SEAL_WORK_MEM):
        print(f"seal: {len(sealed)} days in {time.monotonic() - started:.0f} s", file=sys.stderr)
    hot = index_hot(conninfo_from_settings(), settings.LOGSITE_SEAL_WORK_MEM, args.hot_open_minutes)
    args.hot_summary = (
        f"hot day: {len(hot['blocks'])} indexed blocks ({', '.join(hot['blocks']) or 'none'}; "
        f"{hot['built']} built and {hot['dropped']} indexes dropped in {hot['seconds']:.0f} s this run), "
        f"{hot['open_lines']:,} lines after the newest block unindexed"
    )
    print(args.hot_summary, file=sys.stderr)
    return url


def timed(fn, runs: int) -> tuple[float, float]:
    fn()  # warm the cache once, as a user's second search would be
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(len(samples) * 0.95) - 1)]


def store_shape(cur) -> str:
    cur.execute(
        "SELECT count(*), count(*) FILTER (WHERE sealed_at IS NOT NULL), "
        "pg_size_pretty((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('logs'))) "
        "FROM log_partitions"
    )
    days, sealed, size = cur.fetchone()
    cur.execute(
        "SELECT count(*) FROM logs WHERE ts >= (SELECT max(day) FROM log_partitions WHERE sealed_at IS NULL)"
    )
    hot = cur.fetchone()[0]
    return f"{days} day partitions ({sealed} sealed, ~{hot:,} rows hot), {size} with indexes"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--db", default="logsite_bench_search")
    parser.add_argument("--text-dir", type=Path, default=Path("/tmp"), help="where the text copy lives")
    parser.add_argument("--reuse", action="store_true", help="reuse a database loaded with these parameters")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument(
        "--hot-open-minutes",
        type=int,
        default=0,
        help="index the hot day's blocks as the beat task would this long before the data ends "
        "(more of the newest lines left unindexed)",
    )
    args = parser.parse_args()
    text_file = args.text_dir / f"logsite-{args.db}-lines.txt"

    # Settings read DATABASE_URL once, at setup.
    os.environ["DATABASE_URL"] = db_url(args.db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    import django

    django.setup()
    prepare(args, text_file)
    from django.db import connection

    from search import executor

    load1 = os.getloadavg()[0]
    try:
        tenants = ["bench"]
        one = "container:web-7"
        cases = {
            "container substring (rare)": lambda: executor.search_page(tenants, f"{one} {RARE}"),
            "container substring (common)": lambda: executor.search_page(tenants, f"{one} {COMMON}"),
            "global top-100 rare term": lambda: executor.search_page(tenants, RARE),
            "global top-100 common term": lambda: executor.search_page(tenants, COMMON),
            "regex /status=50[0-9]/": lambda: executor.search_page(tenants, "/status=50[0-9]/"),
            "label filter": lambda: executor.search_page(tenants, "label:com.docker.compose.service=svc-3"),
            "histogram 1h, whole range": lambda: executor.histogram(tenants, "", bucket="1h"),
            "histogram 1h, one container": lambda: executor.histogram(tenants, one, bucket="1h"),
            "histogram of rare term": lambda: executor.histogram(tenants, RARE, bucket="1h"),
            "histogram of common term": lambda: executor.histogram(tenants, COMMON, bucket="1h"),
        }
        # The same rare term where every day has its trigram index: the hot day's share.
        sealed = f"until:{datetime.now(UTC):%Y-%m-%d}"
        cases["global top-100 rare, sealed days"] = lambda: executor.search_page(tenants, f"{RARE} {sealed}")
        cases["histogram of rare, sealed days"] = lambda: executor.histogram(tenants, f"{RARE} {sealed}")
        page = executor.search_page(tenants, "container:web-7", limit=1)
        anchor = page.rows[0]
        cases["context 20/20"] = lambda: executor.context(tenants, anchor["ckey"], anchor["id"], 20, 20)
        if args.only:
            cases = {k: v for k, v in cases.items() if args.only in k}
        results = {name: timed(fn, args.runs) for name, fn in cases.items()}

        def seq_ilike(term):
            with connection.cursor() as cur:
                cur.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
                cur.execute("SELECT count(*) FROM logs WHERE line ILIKE %s", (f"%{term}%",))
                cur.execute("RESET enable_indexscan; RESET enable_bitmapscan")

        baselines = {}
        if not args.only:
            baselines["sequential ILIKE count (rare)"] = timed(lambda: seq_ilike(RARE), 3)
            for term_name, term in (("rare", RARE), ("common", COMMON)):
                for tool in ("grep", "rg"):
                    if shutil.which(tool):
                        cmd = [tool, "-F", "-c", term, str(text_file)]
                        baselines[f"{tool} -F -c ({term_name}, text file)"] = timed(
                            lambda cmd=cmd: subprocess.run(cmd, capture_output=True, check=False), 5
                        )
        with connection.cursor() as cur:
            shape = store_shape(cur)
        print(f"\n{args.lines:,} lines, {args.containers} containers, {args.days} days; {shape}")
        print(args.hot_summary)
        print(f"{os.cpu_count()} cores, load average {load1:.2f} before / {os.getloadavg()[0]:.2f} after")
        print(f"{'query':40} {'p50 ms':>10} {'p95 ms':>10}")
        for name, (p50, p95) in {**results, **baselines}.items():
            print(f"{name:40} {p50:10.1f} {p95:10.1f}")
        # Each page against the tools counting the same term over the same lines.
        for case, term in (
            ("global top-100 rare term", "rare"),
            ("global top-100 common term", "common"),
            ("global top-100 rare, sealed days", "rare"),
        ):
            tools = [(t, baselines.get(f"{t} -F -c ({term}, text file)")) for t in ("grep", "rg")]
            if case in results and all(b for _, b in tools):
                p50 = results[case][0]
                print(f"{case}: " + ", ".join(f"{b[0] / p50:.1f}x faster than {t} -F" for t, b in tools))
    finally:
        connection.close()
        if not (args.keep or args.reuse):
            psql(db_url("postgres"), f'DROP DATABASE IF EXISTS "{args.db}"')
            text_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
