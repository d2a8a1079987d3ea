"""Ingest throughput, end to end against the ceilings, in one run.

    (a) raw binary COPY of the same rows straight into `logs` (same partitions and indexes),
        pre-encoded, one transaction per writer-sized batch: the database's ceiling;
    (b) HTTP NDJSON push end to end: a real `manage.py ingest` with an http driver, a sender
        process posting NDJSON bodies over a few keep-alive connections; lines/s counted when
        every request was answered 200 (answers come only after commit), rows checked in Postgres;
    (c) zmq end to end: a sender process publishing 3-frame zmq-logger messages to the same
        ingest's zmq driver; committed rows from the batch ledger, drops from the ingest stats
        in Redis (logsite:ingest:<writer>);
    (d) raw pyzmq receive rate of the same messages: a receiver process that only drains
        whole messages with ingest's own receive call (recv_frames): the transport's ceiling.
Goals: b/a >= 0.5 and c/d >= 0.8.

    python -m bench.ingest                 # 300k lines per path
    python -m bench.ingest --lines 1000000 --py-spy /tmp/ingest.txt

Uses its own database (--db, created, migrated, dropped at the end unless --keep) and Redis
database (--redis). The machine's load is printed: figures from a shared machine are noisy.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRITER = "bench-ingest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(args) -> None:
    os.environ["DATABASE_URL"] = f"{args.dsn.rstrip('/')}/{args.db}"
    os.environ["REDIS_URL"] = args.redis
    os.environ["LOGSITE_CHANNEL_PREFIX"] = "bench"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    import django

    django.setup()


def recreate_database(args) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{args.dsn.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.db)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.db)))


def drop_database(args) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{args.dsn.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(args.db)))


def empty_logs(conn) -> None:
    conn.execute("TRUNCATE logs, log_batches")


def committed(conn) -> tuple[int, float]:
    """Rows in the ledger and the start time of the last batch transaction (Unix s)."""
    rows, last = conn.execute(
        "SELECT coalesce(sum(rows), 0), extract(epoch FROM max(committed_at)) FROM log_batches"
    ).fetchone()
    return int(rows), float(last or 0)


def cpu_s(pid: int) -> float:
    """CPU seconds used by a local process so far (Linux /proc); 0 when it is gone.

    Wall-clock rates on a machine shared with other work swing by 2x from run to run; the
    CPU each part spends per line does not, so it is printed beside every rate.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children (ingest --processes N is a supervisor)."""
    total = cpu_s(pid)
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            total += sum(tree_cpu_s(int(child)) for child in children.read_text().split())
        except FileNotFoundError:
            continue
    return total


class CpuMeter:
    """CPU used by the ingest process and by the bench database's other backends."""

    def __init__(self, conn, ingest_pid: int | None = None):
        self.conn = conn
        self.ingest_pid = ingest_pid
        self.start = self._snapshot()

    def _backends(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return [row[0] for row in rows]

    def _snapshot(self) -> dict:
        db = {pid: cpu_s(pid) for pid in self._backends()}
        return {"ingest": tree_cpu_s(self.ingest_pid) if self.ingest_pid else 0.0, "db": db}

    def used(self, lines: int) -> dict:
        end = self._snapshot()
        db = sum(cpu - self.start["db"].get(pid, 0.0) for pid, cpu in end["db"].items())
        return {
            "ingest_cpu_us": (end["ingest"] - self.start["ingest"]) / lines * 1e6,
            "db_cpu_us": db / lines * 1e6,
        }


# --- (a) ---------------------------------------------------------------------------------------
def raw_copy(conn, args, driver_id: int) -> dict:
    from django.conf import settings

    from bench import workload
    from ingest.normalize import Limits, normalize_batch
    from ingest.receivers.base import DriverConfig
    from ingest.receivers.http_push import decode_body, record_from_object
    from ingest.store import partitions
    from ingest.store.containers import ContainerKeys
    from ingest.store.copy import COPY_SQL, encode_rows

    # The rows (b) stores, made by the same decoder and normaliser, encoded before the clock.
    driver = DriverConfig(id=driver_id, name="bench", kind="http", bind="", tenant="bench", token_hash="")
    limits = Limits(settings.LOGSITE_MAX_LINE_BYTES, settings.LOGSITE_MAX_TS_AGE_DAYS * 86400 * 10**9)
    keys = ContainerKeys()
    payloads = []
    row_id = 1
    with conn.cursor() as cur:
        for body in workload.ndjson_bodies(args.lines, args.batch):
            records = [record_from_object(n, obj, driver, time.time_ns()) for n, obj in decode_body(body)]
            batch = normalize_batch(records, limits)
            payloads.append(encode_rows(batch.rows, keys.resolve(cur, batch.metas), row_id))
            row_id += len(batch.rows)
        with conn.transaction():  # the lines are stamped "now": yesterday .. tomorrow covers them
            partitions.ensure_days_ahead(cur, date.today() - timedelta(days=1), days_ahead=2)
        started = time.perf_counter()
        cpu_before = cpu_s(conn.info.backend_pid)
        for data in payloads:
            with conn.transaction(), cur.copy(COPY_SQL) as copy:
                copy.write(data)
        elapsed = time.perf_counter() - started
        db_cpu = cpu_s(conn.info.backend_pid) - cpu_before
    count = conn.execute("SELECT count(*) FROM logs").fetchone()[0]
    return {"rate": count / elapsed, "rows": count, "seconds": elapsed, "db_cpu_us": db_cpu / count * 1e6}


# --- ingest process ----------------------------------------------------------------------------
class Ingest:
    def __init__(self, args, spool_dir: Path):
        import redis

        self.redis = redis.Redis.from_url(args.redis)
        self.key = f"logsite:ingest:{WRITER}"
        self.others = [f"{self.key}-{i}" for i in range(1, args.ingest_processes)]
        env = dict(
            os.environ,
            LOGSITE_WRITER_NAME=WRITER,
            LOGSITE_SPOOL_DIR=str(spool_dir),
            LOGSITE_DRIVER_POLL_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(item.split("=", 1) for item in args.ingest_env)
        self.log_path = spool_dir / "ingest.log"
        self.redis.delete(self.key, *self.others)
        with open(self.log_path, "wb") as log:
            command = [sys.executable, "manage.py", "ingest", "--processes", str(args.ingest_processes)]
            self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.profiler = None
        if args.py_spy:
            # Attached rather than wrapping the command, so that SIGINT makes py-spy write its
            # file while ingest is stopped the usual way.
            spy = ["py-spy", "record", "--pid", str(self.proc.pid), "--format", "raw", "-r", "200"]
            spy += ["--threads", "--gil", "--nonblocking", "--subprocesses", "-o", args.py_spy]
            self.profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL)

    def stats(self) -> dict:
        """Process 0's stats (it runs every driver), with drops summed over all processes."""
        raw = self.redis.get(self.key)
        stats = json.loads(raw) if raw else {}
        others = [json.loads(v) for v in self.redis.mget(self.others) if v] if self.others else []
        stats["dropped"] = stats.get("dropped", 0) + sum(o.get("dropped", 0) for o in others)
        return stats

    def wait_for_drivers(self, ids: list[int], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"ingest exited:\n{self.log_path.read_text()[-3000:]}")
            if {str(i) for i in ids} <= set(self.stats().get("drivers", {})):
                return
            time.sleep(0.2)
        raise SystemExit(f"ingest did not start its drivers:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(60)
        self.proc.terminate()
        self.proc.wait(120)


def in_process(ctx, target, *args):
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out), daemon=True)
    proc.start()
    return proc, out


# --- (b) ---------------------------------------------------------------------------------------
def http_push(ctx, conn, ingest: "Ingest", port: int, token: str, args) -> dict:
    from bench.senders import http_sender

    go = ctx.Event()
    proc, out = in_process(ctx, http_sender, "127.0.0.1", port, token, args.lines, args.batch, args.conns, go)
    assert out.get(timeout=600) == "ready"
    meter = CpuMeter(conn, ingest.proc.pid)
    go.set()
    result = out.get(timeout=1800)
    proc.join()
    if result["errors"]:
        print(f"  http errors: {result['errors']}")
    rows, _ = committed(conn)
    elapsed = result["finished"] - result["started"]
    return {
        "rate": rows / elapsed,
        "rows": rows,
        "accepted": result["accepted"],
        "seconds": elapsed,
        **meter.used(max(rows, 1)),
    }


# --- (c) ---------------------------------------------------------------------------------------
def zmq_end_to_end(ctx, conn, ingest: Ingest, endpoint: str, args) -> dict:
    from bench.senders import zmq_sender

    dropped_before = ingest.stats().get("dropped", 0)
    go = ctx.Event()
    proc, out = in_process(ctx, zmq_sender, endpoint, args.lines, go)
    assert out.get(timeout=600) == "ready"
    meter = CpuMeter(conn, ingest.proc.pid)
    go.set()
    result = out.get(timeout=1800)
    proc.join()
    # Wait until the ledger stops growing: everything that was not dropped is committed.
    rows, last = committed(conn)
    quiet_since = time.monotonic()
    while rows < args.lines and time.monotonic() - quiet_since < 5:
        time.sleep(0.2)
        now_rows, last = committed(conn)
        if now_rows != rows:
            rows, quiet_since = now_rows, time.monotonic()
    cpu = meter.used(max(rows, 1))
    time.sleep(2.5)  # ingest publishes its stats every 2 s
    stats = ingest.stats()
    zmq_stats = next((d for d in stats.get("drivers", {}).values() if d["kind"] == "zmq"), {})
    elapsed = last - result["started"]
    return {
        "rate": rows / elapsed,
        "rows": rows,
        "seconds": elapsed,
        "send_rate": result["count"] / (result["sent"] - result["started"]),
        "dropped": stats.get("dropped", 0) - dropped_before,
        "lost": result["count"] - rows - (stats.get("dropped", 0) - dropped_before),
        "malformed": zmq_stats.get("malformed", 0),
        **cpu,
    }


# --- (d) ---------------------------------------------------------------------------------------
def raw_zmq(ctx, args) -> dict:
    from bench.senders import raw_zmq_receiver, zmq_sender

    receiver, received = in_process(ctx, raw_zmq_receiver, "tcp://127.0.0.1:*", args.lines)
    endpoint = received.get(timeout=60)
    go = ctx.Event()
    sender, out = in_process(ctx, zmq_sender, endpoint, args.lines, go)
    assert out.get(timeout=600) == "ready"
    go.set()
    sent = out.get(timeout=1800)
    result = received.get(timeout=1800)
    sender.join()
    receiver.join()
    elapsed = result["last"] - sent["started"]
    return {
        "rate": result["received"] / elapsed,
        "rows": result["received"],
        "seconds": elapsed,
        "send_rate": sent["count"] / (sent["sent"] - sent["started"]),
        "dropped": args.lines - result["received"],
        "ingest_cpu_us": result["cpu"] / max(result["received"], 1) * 1e6,
    }


# --- report --------------------------------------------------------------------------------------
def cpu_cell(result: dict, key: str) -> str:
    return f"{result[key]:.1f}" if key in result else "-"


def print_report(args, results: dict, loads: dict) -> None:
    print()
    print(
        f"{'path':<42} {'lines/s':>10} {'rows':>10} {'seconds':>8} {'load':>5} "
        f"{'rcv cpu':>8} {'db cpu':>7}  notes"
    )
    print("-" * 100)
    names = {
        "a": "(a) raw binary COPY (pre-encoded)",
        "b": f"(b) HTTP NDJSON push, {args.conns} conns x {args.batch}",
        "c": "(c) zmq end to end",
        "d": "(d) raw pyzmq receive",
    }
    for key, name in names.items():
        r = results.get(key)
        if r is None:
            continue
        notes = []
        if "accepted" in r:
            notes.append(f"acked {r['accepted']:,}")
        if "send_rate" in r:
            notes.append(f"sender {r['send_rate']:,.0f}/s")
        if "dropped" in r:
            notes.append(f"dropped {r['dropped']:,}")
        if r.get("lost"):
            notes.append(f"lost before ingest {r['lost']:,}")
        if r.get("malformed"):
            notes.append(f"malformed {r['malformed']:,}")
        print(
            f"{name:<42} {r['rate']:>10,.0f} {r['rows']:>10,} {r['seconds']:>8.2f} {loads[key]:>5.2f} "
            f"{cpu_cell(r, 'ingest_cpu_us'):>8} {cpu_cell(r, 'db_cpu_us'):>7}  " + ", ".join(notes)
        )
    print("rcv cpu: CPU µs per line of the receiving processes (all ingest processes for b and c, the bare")
    print("         receiver for d)")
    print("db cpu: CPU µs per row of the Postgres backends writing it")
    print()
    for top, bottom, goal in (("b", "a", 0.5), ("c", "d", 0.8)):
        if top in results and bottom in results:
            ratio = results[top]["rate"] / results[bottom]["rate"]
            verdict = "meets" if ratio >= goal else "BELOW"
            print(f"{top}/{bottom} = {ratio:.2f}  (goal >= {goal}: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=300_000, help="lines per path")
    parser.add_argument("--batch", type=int, default=5000, help="lines per HTTP request and per (a) COPY")
    # A push is answered only after its lines are committed, so one connection carries at most
    # a body per batch round trip (~50-100 ms): many shippers push at once, 16 stand for them.
    parser.add_argument("--conns", type=int, default=16, help="concurrent HTTP connections")
    parser.add_argument(
        "--ingest-processes",
        type=int,
        default=os.cpu_count(),
        help="ingest processes (LOGSITE_INGEST_PROCESSES); HTTP is spread over all, zmq runs in the first",
    )
    parser.add_argument("--paths", default="abcd", help="which of a, b, c, d to run")
    parser.add_argument("--dsn", default=os.environ.get("BENCH_DSN", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--db", default="logsite_bench")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"))
    parser.add_argument(
        "--py-spy",
        help="record the ingest process with py-spy here (folded stacks; only the thread holding the GIL)",
    )
    parser.add_argument(
        "--ingest-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the ingest process, e.g. LOGSITE_BATCH_LINES=10000",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    recreate_database(args)
    setup_django(args)
    import psycopg
    from django.core.management import call_command

    from ingest.models import Driver, Tenant
    from ingest.store.writer import conninfo_from_settings

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(slug="bench", name="Bench")
    http_port = free_port()
    http = Driver(name="bench-http", kind="http", bind=f"127.0.0.1:{http_port}", tenant=tenant)
    token = http.set_new_token()
    http.save()
    zmq_endpoint = f"tcp://127.0.0.1:{free_port()}"
    zmq_driver = Driver.objects.create(name="bench-zmq", kind="zmq", bind=zmq_endpoint)

    print(
        f"{args.lines:,} lines of 120 bytes per path, 200 containers; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f} (other work on this machine skews every figure); "
        f"{args.ingest_processes} ingest process(es)"
    )
    ctx = multiprocessing.get_context("spawn")
    results: dict = {}
    loads: dict = {}
    (REPO / "var").mkdir(exist_ok=True)
    spool_dir = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=REPO / "var"))
    conn = psycopg.connect(conninfo_from_settings(), autocommit=True)
    try:
        if "a" in args.paths:
            loads["a"] = os.getloadavg()[0]
            results["a"] = raw_copy(conn, args, http.id)
            print(f"  (a) {results['a']['rate']:,.0f} lines/s", flush=True)
        if "b" in args.paths or "c" in args.paths:
            ingest = Ingest(args, spool_dir)
            try:
                ingest.wait_for_drivers([http.id, zmq_driver.id])
                if "b" in args.paths:
                    empty_logs(conn)
                    loads["b"] = os.getloadavg()[0]
                    results["b"] = http_push(ctx, conn, ingest, http_port, token, args)
                    print(f"  (b) {results['b']['rate']:,.0f} lines/s", flush=True)
                if "c" in args.paths:
                    empty_logs(conn)
                    loads["c"] = os.getloadavg()[0]
                    results["c"] = zmq_end_to_end(ctx, conn, ingest, zmq_endpoint, args)
                    print(f"  (c) {results['c']['rate']:,.0f} lines/s", flush=True)
            finally:
                ingest.stop()
        if "d" in args.paths:
            loads["d"] = os.getloadavg()[0]
            results["d"] = raw_zmq(ctx, args)
            print(f"  (d) {results['d']['rate']:,.0f} lines/s", flush=True)
    finally:
        conn.close()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args)
        shutil.rmtree(spool_dir, ignore_errors=True)
    print_report(args, results, loads)


if __name__ == "__main__":
    main()
