"""Lines/s end to end per receiver, and rsyslog + ompgsql on the same syslog input.

    python bench/receivers.py [--lines 200000] [--only syslog-tcp,rsyslog] [--workers 4]
        [--repeat 3] [--database bench_x] [--py-spy /tmp/prof]

For each receiver: a fresh `manage.py ingest` serving one driver on a bench database (created
and migrated here; `--database`, default logsite_bench, on DATABASE_URL's server), a sender in
its own process that builds its whole payload before the clock starts, and the clock stopped
when the batch ledger (log_batches) holds every line. Senders that cannot be acknowledged (UDP,
zmq) are not slowed down for the receiver: their clock stops at the last row stored, and what
was lost is printed. HTTP-like senders (splunk, http, fluentd) keep `--workers` requests in
flight, as many containers or a forwarder would.

rsyslog: a private rsyslogd (bench/rsyslog.py: imtcp → ompgsql, one row per message) is fed the
very bytes Logsite's syslog-tcp run got, into the same Postgres, and the ratio is printed.

CPU µs/line: CPU time of the receiving process (ingest, or rsyslogd) plus the Postgres backends
that served it, per stored line; unlike lines/s it hardly depends on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import receiver_senders as senders  # noqa: E402
from bench.rsyslog import Rsyslogd  # noqa: E402

# bench name -> (driver kind, bind)
RECEIVERS = {
    "syslog-tcp": ("syslog", "tcp://127.0.0.1:{port}"),
    "syslog-udp": ("syslog", "udp://127.0.0.1:{port}"),
    "gelf-tcp": ("gelf", "tcp://127.0.0.1:{port}"),
    "gelf-udp": ("gelf", "udp://127.0.0.1:{port}"),
    "fluentd": ("fluentd", "127.0.0.1:{port}"),
    "splunk": ("splunk", "127.0.0.1:{port}"),
    "journal": ("journal", "127.0.0.1:{port}"),
    "zmq": ("zmq", "tcp://127.0.0.1:{port}"),
    "http": ("http", "127.0.0.1:{port}"),
}
LOSSY = {"syslog-udp", "gelf-udp", "zmq"}
QUIET_S = 2.0  # a lossy run is over once nothing was stored for this long after sending ended


@dataclass
class Result:
    name: str
    sent: int
    stored: int
    seconds: float
    cpu_seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu_seconds / self.stored if self.stored else 0.0


def free_port() -> int:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))
        return port


def prepare_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, check=True)


def clean(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE logs, log_batches, containers, log_dedup_keys CASCADE")


def stored_rows(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(sum(rows), 0) FROM log_batches").fetchone()[0]


class CpuMeter:
    """CPU seconds used by the receiving processes and by the Postgres backends serving them:
    the cost of storing the lines, which a busy shared machine distorts far less than lines/s."""

    def __init__(self, conn: psycopg.Connection, *pids: int):
        self.conn, self.pids = conn, pids
        self.start = self._now()

    def _now(self) -> dict[int, float]:
        backends = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
        return {pid: _cpu_seconds(pid) for pid in [*self.pids, *(row[0] for row in backends)]}

    def used(self) -> float:
        return sum(seconds - self.start.get(pid, 0.0) for pid, seconds in self._now().items())


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(kind: str, n: int, address, token: str, workers: int, count, lossy: bool, meter) -> Result:
    """Runs one sender process and waits for the rows; the clock runs from go to the last row."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
    sender = ctx.Process(target=senders.run, args=(kind, n, address, token, workers, ready, go, results))
    sender.start()
    ready.wait()
    cpu = meter()
    started = time.perf_counter()
    go.set()
    stored, last_change, sent_at = 0, started, None
    deadline = started + max(120.0, n / 2000)
    while time.perf_counter() < deadline:
        now_stored = count()
        now = time.perf_counter()
        if now_stored != stored:
            stored, last_change = now_stored, now
        if stored >= n:
            break
        if sent_at is None and not sender.is_alive():
            sent_at = now
        if lossy and sent_at is not None and now - max(last_change, sent_at) > QUIET_S:
            break
        time.sleep(0.02)
    cpu_seconds = cpu.used()
    sender.join(60)
    note = ""
    while not results.empty():
        _, status, value = results.get()
        if status != "ok":
            note = f"sender failed: {value}"
    return Result(kind, n, stored, last_change - started, cpu_seconds, note)


def run_receiver(name: str, n: int, workers: int, conninfo: str, tmp: Path, py_spy: str = "") -> Result:
    from ingest.models import Driver, Tenant
    from tests.support.processes import IngestProcess

    kind, bind = RECEIVERS[name]
    clean(conninfo)
    Driver.objects.all().delete()
    port = free_port()
    # Bound to a tenant, as drivers are deployed (an unbound http driver needs it per record).
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "bench"})
    driver = Driver(name=f"bench-{name}", kind=kind, bind=bind.format(port=port), tenant=tenant)
    token = driver.set_new_token()
    driver.save()
    ingest = IngestProcess(tmp / name, writer=f"bench-{name}")
    (tmp / name).mkdir(parents=True, exist_ok=True)
    ingest.start(wait_for_drivers=[driver.id], timeout=120)
    profiler = None
    if py_spy:
        # Attached, so that SIGINT makes py-spy write its file; only the thread holding the GIL.
        spy = ["py-spy", "record", "--pid", str(ingest.proc.pid), "--format", "raw", "-r", "200"]
        spy += ["--threads", "--gil", "--nonblocking", "-o", f"{py_spy}.{name}"]
        profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL)
        time.sleep(1)  # attached before the clock starts
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            result = measure(
                name,
                n,
                ("127.0.0.1", port),
                token,
                workers,
                lambda: stored_rows(conn),
                name in LOSSY,
                lambda: CpuMeter(conn, ingest.proc.pid),
            )
        stats = ingest.stats() or {}
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        ingest.stop()
    drv = stats.get("drivers", {}).get(str(driver.id), {})
    extra = [result.note] if result.note else []
    if drv.get("malformed"):
        extra.append(f"{drv['malformed']} malformed")
    if stats.get("dropped"):
        extra.append(f"{stats['dropped']} dropped (queue full)")
    result.note = "; ".join(extra)
    return result


def run_syslog_processes(count: int, n: int, conninfo: str, tmp: Path) -> Result:
    """One syslog driver bound to tcp:// only, served by `manage.py ingest --processes count`
    on one port (SO_REUSEPORT), over one connection per container as Docker's syslog driver
    opens them (100), which the kernel spreads over the processes by a hash, so not quite evenly."""
    import redis
    from django.conf import settings

    from ingest.models import Driver, Tenant
    from tests.support.processes import IngestProcess

    clean(conninfo)
    Driver.objects.all().delete()
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "bench"})
    port = free_port()
    driver = Driver(name="bench-syslog-shared", kind="syslog", bind=f"tcp://127.0.0.1:{port}", tenant=tenant)
    driver.set_new_token()
    driver.save()
    (tmp / "syslog-shared").mkdir(parents=True, exist_ok=True)
    proc = IngestProcess(tmp / "syslog-shared", writer="bench-syslog", args=("--processes", str(count)))
    proc.start(wait_for_drivers=[driver.id], timeout=120)
    try:
        keys = ["logsite:ingest:bench-syslog", *(f"logsite:ingest:bench-syslog-{i}" for i in range(1, count))]
        client = redis.Redis.from_url(settings.REDIS_URL)
        pids = []
        deadline = time.monotonic() + 120
        while len(pids) < count and time.monotonic() < deadline:
            stats = [json.loads(raw) for raw in client.mget(keys) if raw]
            pids = [st["pid"] for st in stats if str(driver.id) in st.get("drivers", {})]
            time.sleep(0.2)
        if len(pids) < count:
            raise SystemExit(f"only {len(pids)} of {count} ingest processes serve the syslog driver")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            result = measure(
                "syslog-tcp",
                n,
                [("127.0.0.1", port)] * senders.CONTAINERS,
                "",
                1,
                lambda: stored_rows(conn),
                False,
                lambda: CpuMeter(conn, proc.proc.pid, *pids),
            )
            shares = conn.execute(
                "SELECT sum(rows) FROM log_batches GROUP BY writer ORDER BY 1 DESC"
            ).fetchall()
    finally:
        proc.stop()
    result.name = f"syslog-tcp, {count} processes"
    result.note = "lines per process: " + " / ".join(f"{row[0]:,}" for row in shares)
    return result


def run_rsyslog(n: int, conninfo: str, tmp: Path) -> Result:
    port = free_port()
    daemon = Rsyslogd(tmp / "rsyslog", conninfo, port)
    (tmp / "rsyslog").mkdir(parents=True, exist_ok=True)
    daemon.start()
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            result = measure(
                "syslog-tcp",
                n,
                ("127.0.0.1", port),
                "",
                1,
                lambda: daemon.stored(conn),
                False,
                lambda: CpuMeter(conn, daemon.proc.pid),
            )
    finally:
        daemon.stop()
    result.name = "rsyslog+ompgsql"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=4, help="requests in flight for HTTP-like senders")
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join([*RECEIVERS, "rsyslog"]))
    parser.add_argument("--database", default="logsite_bench")
    parser.add_argument("--repeat", type=int, default=1, help="run the list this often; the best run counts")
    parser.add_argument("--py-spy", default="", help="py-spy each ingest run into FILE.<receiver>")
    parser.add_argument(
        "--processes", type=int, default=1, help="also run syslog-tcp in this many ingest processes"
    )
    args = parser.parse_args()
    chosen = [c for c in args.only.split(",") if c] or [*RECEIVERS, "rsyslog"]
    unknown = set(chosen) - {*RECEIVERS, "rsyslog"}
    if unknown:
        parser.error(f"unknown: {sorted(unknown)}")
    if args.processes > 1 and "syslog-tcp" in chosen:
        chosen.insert(chosen.index("syslog-tcp") + 1, "syslog-tcp-processes")

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/logsite")
    url = urlunsplit(urlsplit(base)._replace(path=f"/{args.database}"))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    prepare_database(url)
    import django

    django.setup()
    from ingest.store.writer import conninfo_from_settings

    conninfo = conninfo_from_settings()
    shape = f"{senders.LINE_BYTES}-byte lines from {senders.CONTAINERS} containers"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.lines} {shape}, {os.cpu_count()} CPUs, load {load}")
    columns = f"{'sent':>9} {'stored':>9} {'seconds':>8} {'lines/s':>10} {'CPU µs/line':>12} {'load':>5}"
    print(f"{'receiver':<16} {columns}  notes")
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="bench-receivers-") as tmp:
        # Rounds interleave the receivers, so that a busy moment of a shared machine does not
        # land on one of them only.
        for name in [name for _ in range(args.repeat) for name in chosen]:
            if name == "rsyslog":
                result = run_rsyslog(args.lines, conninfo, Path(tmp))
            elif name == "syslog-tcp-processes":
                result = run_syslog_processes(args.processes, args.lines, conninfo, Path(tmp))
            else:
                result = run_receiver(name, args.lines, args.workers, conninfo, Path(tmp), args.py_spy)
            if name not in results or result.rate > results[name].rate:
                results[name] = result
            lost = 1 - result.stored / result.sent
            loss = f"{100 * lost:.1f}% lost; " if lost else ""
            print(
                f"{result.name:<16} {result.sent:>9} {result.stored:>9} {result.seconds:>8.2f} "
                f"{result.rate:>10,.0f} {result.cpu_us:>12.1f} {os.getloadavg()[0]:>5.2f}  "
                f"{loss}{result.note}",
                flush=True,
            )
    if args.repeat > 1:
        print("best of", args.repeat, ": " + ", ".join(f"{n} {r.rate:,.0f}/s" for n, r in results.items()))
    rsyslog = results.get("rsyslog")
    for name in ("syslog-tcp", "syslog-tcp-processes"):
        if name in results and rsyslog is not None and rsyslog.rate:
            logsite = results[name]
            print(
                f"Logsite {logsite.name} / rsyslog+ompgsql on the same input: "
                f"{logsite.rate / rsyslog.rate:.1f}x the lines/s (goal: 5x), "
                f"{rsyslog.cpu_us / logsite.cpu_us:.1f}x less CPU per line"
            )


if __name__ == "__main__":
    main()
