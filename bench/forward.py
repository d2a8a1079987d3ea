"""Forwarding throughput: lines/s from the store to the CLS stand-in, with a real ingest process,
a real Celery worker and beat, on a bench database.

    python bench/forward.py [--lines 600000] [--live-lines 400000] [--workers 1] [--db NAME]
                            [--py-spy PREFIX]

Phases:
  ingest only    lines pushed over HTTP into `manage.py ingest` while nothing forwards (the
                 ingest figure on this machine, for comparison)
  drain backlog  the worker starts and forwards that backlog: the forwarding path alone
                 (ledger → logs by id range → encode → LZ4 → HTTP to the stand-in)
  drain + ingest the goal's figure: forwarding capacity while ingest runs. A second backlog
                 is stored with the target disabled; the target is enabled as a second push
                 starts, and lines/s reaching the stand-in are counted from the first forwarded
                 line to the end of the push (the forwarder always has more to send than it
                 can, and shares the CPU with ingest and Postgres). The lag left at the end
                 shows the backlog lasted; if it is 0 the figure is ingest-bound.
  live           ingest and forwarding at the same time with no backlog: lines/s reaching the
                 stand-in while lines are pushed (bounded by the ingest rate), the worst lag
                 seen, and the time to catch up afterwards
Each forwarding figure also comes with the worker's CPU seconds (lines per CPU-second), which
is steadier than wall time on a shared machine; the backlog drain also splits the CPU of one
forwarded line between the worker, the bench database's Postgres backends and the stand-in.

The stand-in runs in its own process in count-only mode (it still checks the signature, the
LZ4 block and the protobuf). DATABASE_URL names the server (default the local one); the bench
empties the database `--db` (default `logsite_bench_forward`) on it, creating it if needed.
Redis: REDIS_URL (db 14 by default).
"""

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DB_NAME = "logsite_bench_forward"
SERVER_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
DATABASE_URL = f"{SERVER_URL}/{DB_NAME}"


def use_database(name: str) -> None:
    global DB_NAME, DATABASE_URL
    DB_NAME, DATABASE_URL = name, f"{SERVER_URL}/{name}"


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET_ID, SECRET_KEY, TOPIC = "AKIDbench", "bench-key", "bench-topic"
CONTAINERS = 8
LINES_PER_REQUEST = 5000


def _serve(ports, count, stop) -> None:
    from tests.forward.cls_standin import ClsStandIn

    server = ClsStandIn(credentials={SECRET_ID: SECRET_KEY}, topics=[TOPIC], count_only=True).start()
    ports.put(server.port)
    while not stop.wait(0.05):
        count.value = server.count()
    server.stop()


class StandIn:
    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.ports, self.count, self.stop_event = ctx.Queue(), ctx.Value("q", 0), ctx.Event()
        self.proc = ctx.Process(target=_serve, args=(self.ports, self.count, self.stop_event), daemon=True)
        self.proc.start()
        self.port = self.ports.get(timeout=60)

    def lines(self) -> int:
        return self.count.value

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def stop(self):
        self.stop_event.set()
        self.proc.join(10)


def env(**extra) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "LOGSITE_CHANNEL_PREFIX": "bench-forward",
        "PYTHONUNBUFFERED": "1",
        **{k: str(v) for k, v in extra.items()},
    }


def prepare_database() -> None:
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env(), check=True)
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("TRUNCATE logs, log_batches, containers CASCADE")
        conn.execute(
            "DELETE FROM forward_forwardstate; DELETE FROM forward_target; DELETE FROM ingest_driver"
        )
        conn.execute("DELETE FROM django_celery_beat_periodictask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=REPO,
        env=env(**extra),
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_log(log: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise SystemExit(f"{log} never said {text!r}:\n{log.read_text(errors='replace')[-3000:]}")


def bodies(prefix: str, total: int) -> list[bytes]:
    out = []
    now = time.time_ns()
    for start_ in range(0, total, LINES_PER_REQUEST):
        c = start_ // LINES_PER_REQUEST % CONTAINERS
        out.append(
            "\n".join(
                json.dumps(
                    {
                        "line": f'10.0.{i % 256}.{i % 97} - - "GET /api/v1/items/{i} HTTP/1.1" '
                        f"200 {i % 5000} "
                        f'"-" "Mozilla/5.0" rt=0.{i % 1000:03d} {prefix}',
                        "ts_ns": now + i * 1000,
                        "container_id": f"{c:02d}" * 32,
                        "container_name": f"/shop-api-{c}",
                        "image": "registry.local/shop/api:2.14.1",
                        "service": "shop-api",
                        "host": "node-7",
                        "labels": {"com.docker.compose.project": "shop"},
                    }
                )
                for i in range(start_, min(start_ + LINES_PER_REQUEST, total))
            ).encode()
        )
    return out


def push_all(url: str, token: str, payloads: list[bytes], threads: int = 3) -> float:
    """Pushes every body (threads in parallel); returns the wall time."""
    queue = list(payloads)
    lock = threading.Lock()

    def run():
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop(0)
            r = session.post(url, data=body, headers={"Authorization": f"Bearer {token}"}, timeout=300)
            r.raise_for_status()

    t0 = time.perf_counter()
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def cpu_seconds(proc: subprocess.Popen) -> float:
    try:
        parent = psutil.Process(proc.pid)
        procs = [parent, *parent.children(recursive=True)]
        return sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    except psutil.NoSuchProcess:
        return 0.0


class BackendCpu:
    """CPU seconds of the Postgres backends connected to the bench database, while it runs.

    The worker's connections close when its task ends, so backends are sampled every 0.1 s and
    each counts from its first sample (0 if it appeared meanwhile) to its last one.
    """

    def __init__(self):
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._conn = psycopg.connect(DATABASE_URL, autocommit=True)
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, initial: bool = False) -> None:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (DB_NAME,)
        ).fetchall()
        for (pid,) in rows:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            self.first.setdefault(pid, times.user + times.system if initial else 0.0)
            self.last[pid] = times.user + times.system

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        self._conn.close()
        return sum(cpu - self.first[pid] for pid, cpu in self.last.items())


def profile(worker: subprocess.Popen, prefix: str | None, phase: str) -> subprocess.Popen | None:
    """py-spy on the worker and its pool processes (folded stacks, idle frames left out)."""
    if not prefix:
        return None
    out = f"{prefix}-{phase}.txt"
    spy = ["py-spy", "record", "--pid", str(worker.pid), "--subprocesses", "--format", "raw"]
    spy += ["-r", "200", "--nonblocking", "-o", out]
    return subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(spy: subprocess.Popen | None) -> None:
    if spy is not None:
        spy.send_signal(2)
        spy.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=600_000, help="backlog lines (ingest, then drain)")
    parser.add_argument("--live-lines", type=int, default=400_000, help="lines pushed while forwarding runs")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker concurrency")
    parser.add_argument("--db", default=DB_NAME, help="bench database (emptied, created if missing)")
    parser.add_argument("--py-spy", metavar="PREFIX", help="profile the worker into PREFIX-<phase>.txt")
    opts = parser.parse_args()
    use_database(opts.db)

    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs (before)")
    prepare_database()
    os.environ.update(
        DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DJANGO_SETTINGS_MODULE="logsite.settings"
    )
    import django

    django.setup()
    import redis

    from forward.lag import forward_lag
    from forward.models import Target
    from forward.schedule import ensure_schedule
    from ingest.models import Driver, Tenant

    redis.Redis.from_url(REDIS_URL).delete("celery", "unacked", "unacked_index")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-forward-{os.getpid()}"
    tmp.mkdir(parents=True)
    standin = StandIn()
    tenant, _ = Tenant.objects.get_or_create(slug="bench")
    port = free_port()
    driver = Driver(name="bench-http", kind="http", bind=f"127.0.0.1:{port}", tenant=tenant)
    token = driver.set_new_token()
    driver.save()
    Target.objects.create(
        name="bench-cls",
        kind="cls",
        tenant=tenant,
        cls_endpoint=f"http://127.0.0.1:{standin.port}",
        cls_topic_id=TOPIC,
        cls_secret_id=SECRET_ID,
        cls_secret_key=SECRET_KEY,
        batch_wait_ms=200,
    )
    ensure_schedule()
    procs = []
    try:
        ingest = start(
            [sys.executable, "manage.py", "ingest"],
            tmp / "ingest.log",
            LOGSITE_SPOOL_DIR=tmp / "spool",
            LOGSITE_WRITER_NAME="bench",
        )
        procs.append(ingest)
        url = f"http://127.0.0.1:{port}/api/v1/push"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.post(url, data=b"", headers={"Authorization": f"Bearer {token}"}, timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)

        payloads = bodies("backlog", opts.lines)
        wall = push_all(url, token, payloads)
        print(
            f"{'ingest only':<16} {opts.lines / wall:>10,.0f} lines/s pushed and committed"
            f"  ({opts.lines:,} lines, {wall:.1f} s)"
        )

        worker = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "logsite",
                "worker",
                "-l",
                "warning",
                "-c",
                str(opts.workers),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            tmp / "worker.log",
        )
        procs.append(worker)
        beat = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "logsite",
                "beat",
                "-l",
                "info",
                "--pidfile=",
                "-s",
                str(tmp / "beat"),
            ],
            tmp / "beat.log",
        )
        procs.append(beat)
        t0 = time.perf_counter()
        while standin.lines() == 0:
            if time.perf_counter() - t0 > 180:
                raise SystemExit("nothing was forwarded in 180 s; see " + str(tmp))
            time.sleep(0.05)
        t_first, cpu0 = time.perf_counter(), cpu_seconds(worker)
        pg, standin0 = BackendCpu(), standin.cpu_seconds()
        spy = profile(worker, opts.py_spy, "drain")
        while standin.lines() < opts.lines:
            time.sleep(0.05)
        wall, cpu = time.perf_counter() - t_first, cpu_seconds(worker) - cpu0
        pg_cpu, standin_cpu = pg.stop(), standin.cpu_seconds() - standin0
        stop_profile(spy)
        print(
            f"{'drain backlog':<16} {opts.lines / wall:>10,.0f} lines/s forwarded"
            f"  {opts.lines / max(cpu, 1e-9):>10,.0f} lines/worker-cpu-s"
            f"  ({wall:.1f} s from the first line; worker start {t_first - t0:.1f} s)"
        )
        # Nothing else runs in this phase: where the CPU of one forwarded line goes.
        per_line = {"worker": cpu, "postgres": pg_cpu, "stand-in": standin_cpu}
        print(
            f"{'':<16} CPU per forwarded line: "
            + ", ".join(f"{name} {seconds / opts.lines * 1e6:.2f} µs" for name, seconds in per_line.items())
        )

        # Forwarding capacity while ingest runs: a backlog is stored with the target disabled,
        # then the target is enabled at the moment a second push starts, so for the whole push
        # the forwarder has more to send than it can and competes with ingest for the CPU.
        Target.objects.filter(name="bench-cls").update(enabled=False)
        push_all(url, token, bodies("held", opts.lines))
        live = bodies("concurrent", opts.live_lines)
        spy = profile(worker, opts.py_spy, "concurrent")
        before = standin.lines()
        pushed = [0.0]
        pusher = threading.Thread(target=lambda: pushed.__setitem__(0, push_all(url, token, live)))
        t0 = time.perf_counter()
        Target.objects.filter(name="bench-cls").update(enabled=True)
        pusher.start()
        while standin.lines() == before and pusher.is_alive():
            time.sleep(0.01)
        # The window starts at the first forwarded line (beat's tick and the task's start are
        # not forwarding speed) and ends with the push.
        t_first, first, cpu0 = time.perf_counter(), standin.lines(), cpu_seconds(worker)
        pusher.join()
        t_end, during, cpu = time.perf_counter(), standin.lines() - first, cpu_seconds(worker) - cpu0
        lag_at_end = sum(row.lag_lines for row in forward_lag())
        stop_profile(spy)
        window = max(t_end - t_first, 1e-9)
        print(
            f"{'drain + ingest':<16} {during / window:>10,.0f} lines/s forwarded while"
            f" {opts.live_lines / pushed[0]:,.0f} lines/s were ingested"
            f"  {during / max(cpu, 1e-9):>10,.0f} lines/worker-cpu-s"
            f"  ({window:.1f} s of {pushed[0]:.1f} s push, from the first forwarded line;"
            f" lag at the end {lag_at_end:,} lines"
            + (")" if lag_at_end else "; caught up: ingest-bound, raise --lines)")
            + ("  -- the push ended before forwarding began: raise --live-lines" if not during else "")
        )
        while standin.lines() < 2 * opts.lines + opts.live_lines:
            time.sleep(0.05)

        live = bodies("live", opts.live_lines)
        before, cpu0 = standin.lines(), cpu_seconds(worker)
        max_lag = [0]
        done = threading.Event()

        def watch():
            while not done.wait(0.5):
                for row in forward_lag():
                    max_lag[0] = max(max_lag[0], row.lag_lines)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        push_wall = push_all(url, token, live)
        during = standin.lines() - before
        while standin.lines() < before + opts.live_lines:
            time.sleep(0.05)
        total_wall = time.perf_counter() - t0
        done.set()
        cpu = cpu_seconds(worker) - cpu0
        print(
            f"{'live':<16} {opts.live_lines / push_wall:>10,.0f} lines/s ingested,"
            f" {during / push_wall:>10,.0f} lines/s forwarded meanwhile;"
            f" all {opts.live_lines:,} forwarded {total_wall - push_wall:.1f} s after the last push"
            f" ({opts.live_lines / total_wall:,.0f} lines/s overall,"
            f" {opts.live_lines / max(cpu, 1e-9):,.0f} lines/worker-cpu-s,"
            f" worst lag seen {max_lag[0]:,} lines)"
        )
        expected = 2 * opts.lines + 2 * opts.live_lines
        print(f"stand-in total {standin.lines():,} lines (duplicates would show here: expected {expected:,})")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, 15)
                proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, 9)
        standin.stop()


if __name__ == "__main__":
    main()
