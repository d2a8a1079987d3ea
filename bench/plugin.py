"""Lines/s through the Logsite plugin under a real dockerd, next to json-file, into a real Logsite.

    sudo python -m bench.plugin [--lines 100000] [--containers 2]

Starts a private dockerd (the tests/e2e harness: vfs, no bridge, its own roots), builds and
installs the plugin with driver/build_plugin.py (the rootfs is cached), and runs
`manage.py ingest` with a plugin driver on its own database (--db: created, migrated and
dropped at the end unless --keep). Each scenario starts --containers busybox containers at once;
each writes --lines numbered lines of about 100 bytes as fast as it can:

    json-file             dockerd's default driver: the baseline
    plugin, Logsite up    the same containers on the plugin; also end to end, until every line
                          is committed in Postgres
    plugin, Logsite down  ingest stopped: the containers' write rate must not fall; then how
                          long the plugin takes to deliver its buffered lines once ingest is back

"write" is what the containers see: lines / the time they spent writing, measured inside them.
The machine's load is printed too: figures from a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PLUGIN = "logsite-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = f"{args.dsn.rstrip('/')}/{args.db}"
    os.environ["REDIS_URL"] = args.redis
    os.environ["LOGSITE_CHANNEL_PREFIX"] = "bench-plugin"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    import django

    django.setup()


def admin_sql(args: argparse.Namespace, statement: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{args.dsn.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL(statement).format(sql.Identifier(args.db)))


@dataclass
class Result:
    name: str
    write_s: list[float]  # per container, measured inside it
    lines: int
    end_to_end_s: float | None = None

    def write_rate(self) -> float:
        # Containers run at once, so the slowest one bounds the aggregate rate.
        return self.lines / max(max(self.write_s), 0.01)


def timing_line(dockerd, container_id: str) -> str:
    """The container's last line from json-file, read back with `docker logs`."""
    return dockerd.logs(container_id, "--tail", "1").stdout.decode().strip()


class Bench:
    def __init__(self, args: argparse.Namespace, dockerd, image: str, work: Path) -> None:
        self.args, self.dockerd, self.image, self.work = args, dockerd, image, work
        self.ingest = None

    def start_containers(self, tag: str, log_driver: str | None) -> list[str]:
        from tests.e2e import bursts

        ids = []
        for k in range(self.args.containers):
            script = bursts.script(self.args.lines, f"{tag}{k}")
            run = self.dockerd.run(self.image, "sh", "-c", script, log_driver=log_driver, detach=True)
            ids.append(run.container_id)
        for container_id in ids:
            assert self.dockerd.wait(container_id, timeout=1800) == 0
        return ids

    @property
    def total(self) -> int:
        return self.args.lines * self.args.containers

    def json_file(self) -> Result:
        from tests.e2e import bursts

        ids = self.start_containers("json", None)
        return Result("json-file", [bursts.elapsed(timing_line(self.dockerd, c)) for c in ids], self.total)

    def plugin_up(self) -> Result:
        started = time.monotonic()
        ids = self.start_containers("up", PLUGIN)
        self.wait_stored(ids)
        return Result("plugin, Logsite up", self.stored_timings(ids), self.total, time.monotonic() - started)

    def plugin_down(self) -> tuple[Result, float]:
        self.ingest.stop()
        ids = self.start_containers("down", PLUGIN)
        result = Result("plugin, Logsite down", [], self.total)
        restarted = time.monotonic()
        self.start_ingest()
        self.wait_stored(ids)
        result.write_s = self.stored_timings(ids)
        return result, time.monotonic() - restarted

    def start_ingest(self) -> None:
        from tests.support.processes import IngestProcess

        self.ingest = IngestProcess(self.work, writer="bench-plugin", LOGSITE_LOG_LEVEL="WARNING")
        self.ingest.start(wait_for_drivers=[self.driver_id], timeout=120)

    def wait_stored(self, ids: list[str]) -> None:
        from django.db import connection

        want = (self.args.lines + 1) * len(ids)  # each container's lines and its timing line
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM logs l JOIN containers c ON c.id = l.ckey "
                    "WHERE c.container_id = ANY(%s)",
                    [ids],
                )
                if cur.fetchone()[0] >= want:
                    return
            time.sleep(0.2)
        raise SystemExit(f"lines never all arrived:\n{self.ingest.log_tail()}\n{self.dockerd.log_tail()}")

    def stored_timings(self, ids: list[str]) -> list[float]:
        from django.db import connection

        from tests.e2e import bursts

        with connection.cursor() as cur:
            cur.execute(
                "SELECT l.line FROM logs l JOIN containers c ON c.id = l.ckey "
                "WHERE c.container_id = ANY(%s) AND l.line LIKE 'elapsed %%'",
                [ids],
            )
            return [bursts.elapsed(line) for (line,) in cur.fetchall()]

    def install(self) -> None:
        from driver import build_plugin
        from ingest.models import Driver, Tenant, hash_token
        from tests.e2e import rootfs

        token = "lgs_" + secrets.token_urlsafe(24)
        port = free_port()
        started = time.monotonic()
        settings = {"LOGSITE_URL": f"http://127.0.0.1:{port}", "LOGSITE_TOKEN": token}
        build_plugin.build(
            PLUGIN,
            {**settings, "LOGSITE_RETRY_MAX_SECONDS": "1"},
            cache=rootfs.cache_dir(),
            docker=build_plugin.DockerCli(self.dockerd.host, env=self.dockerd._cli_env),
        )
        print(f"plugin built and enabled in {time.monotonic() - started:.1f} s", flush=True)
        tenant = Tenant.objects.create(slug="bench", name="Bench")
        driver = Driver(name="bench-plugin", kind="plugin", bind=f"127.0.0.1:{port}", tenant=tenant)
        driver.token_hash = hash_token(token)
        driver.save()
        self.driver_id = driver.id


def report(results: list[Result], replay_s: float, lines: int, containers: int) -> None:
    print(f"\n{containers} container(s) x {lines:,} lines of ~100 bytes; load {os.getloadavg()[0]:.1f}")
    print(f"{'':<24}{'write lines/s':>16}{'slowest container':>20}{'end to end lines/s':>21}")
    for r in results:
        e2e = f"{r.lines / r.end_to_end_s:>21,.0f}" if r.end_to_end_s else f"{'':>21}"
        print(f"{r.name:<24}{r.write_rate():>16,.0f}{max(r.write_s):>18.2f} s{e2e}")
    print(
        f"buffered lines delivered {replay_s:.1f} s after ingest was started again "
        f"({lines * containers / replay_s:,.0f} lines/s, including ingest's start)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000, help="lines per container")
    parser.add_argument("--containers", type=int, default=2, help="containers at once")
    parser.add_argument("--db", default="logsite_bench_plugin")
    parser.add_argument("--dsn", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/plugin.py runs dockerd: run it as root")

    admin_sql(args, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
    admin_sql(args, "CREATE DATABASE {}")
    setup_django(args)
    from django.core.management import call_command

    from tests.e2e.dockerd import Dockerd

    call_command("migrate", verbosity=0)
    dockerd = Dockerd().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-plugin-") as work:
            bench = Bench(args, dockerd, dockerd.import_busybox(), Path(work))
            bench.install()
            bench.start_ingest()
            try:
                results = [bench.json_file(), bench.plugin_up()]
                down, replay_s = bench.plugin_down()
                results.append(down)
            finally:
                bench.ingest.stop()
        report(results, replay_s, args.lines, args.containers)
    finally:
        dockerd.stop()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_sql(args, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


if __name__ == "__main__":
    main()
