"""Real Logsite processes for tests: `manage.py ingest` as a subprocess on the test database."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for child processes."""
    db = connection.settings_dict
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += ":" + db["PASSWORD"]
    host = db["HOST"] or "127.0.0.1"
    if host.startswith("/"):
        return f"postgres://{auth}@/{db['NAME']}?host={host}"
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def child_env(**overrides) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "LOGSITE_CHANNEL_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class IngestProcess:
    """`manage.py ingest` in a subprocess; waits until the given drivers listen."""

    def __init__(self, tmp_path: Path, writer: str = "test-writer", args: tuple[str, ...] = (), **env):
        self.writer = writer
        self.args = list(args)  # e.g. ("--driver", "3"): several ingest processes, one driver each
        self.spool_dir = tmp_path / "spool"
        self.log_path = tmp_path / f"ingest-{writer}.log"
        self.env = child_env(
            LOGSITE_SPOOL_DIR=self.spool_dir,
            LOGSITE_WRITER_NAME=writer,
            LOGSITE_DRIVER_POLL_SECONDS=1,
            **env,
        )
        self.proc: subprocess.Popen | None = None
        self._redis = redis.Redis.from_url(settings.REDIS_URL)

    def start(self, wait_for_drivers: list[int] | None = None, timeout: float = 30) -> "IngestProcess":
        self._redis.delete(self.stats_key)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "ingest", *self.args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        wanted = {str(d) for d in wait_for_drivers or []}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ingest exited with {self.proc.returncode}:\n{self.log_tail()}")
            stats = self.stats()
            if stats is not None and wanted <= set(stats.get("drivers", {})):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"ingest did not start its drivers {wanted} in {timeout}s:\n{self.log_tail()}")

    @property
    def stats_key(self) -> str:
        return f"logsite:ingest:{self.writer}"

    def stats(self) -> dict | None:
        raw = self._redis.get(self.stats_key)
        return json.loads(raw) if raw else None

    def wait_stats(self, predicate, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats is not None and predicate(stats):
                return stats
            time.sleep(0.1)
        raise AssertionError(f"ingest stats never matched; last: {self.stats()}\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class WebProcess:
    """The web server (`manage.py run`'s uvicorn command) on the test database, on a given port."""

    def __init__(self, tmp_path: Path, port: int, **env):
        from logsite.runner.app_processes import web_argv

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = tmp_path / f"web-{port}.log"
        self.argv = web_argv("127.0.0.1", port)
        self.env = child_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "WebProcess":
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"web did not listen on {self.port} in {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""
