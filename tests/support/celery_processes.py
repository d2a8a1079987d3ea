"""A real Celery worker and beat for tests, on the test database and the test Redis db.

Each runs in its own session (process group), so a test can kill a worker together with its
pool processes (SIGKILL mid-task), as a crashed host would.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings

from tests.support.processes import REPO, child_env

# Celery's own keys in the broker db: the default queue and the unacked bookkeeping.
BROKER_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")


def purge_broker() -> None:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*BROKER_KEYS)


class CeleryProcess:
    def __init__(self, tmp_path: Path, role: str, name: str, args: list[str], ready: str, **env):
        self.role = role
        self.name = name
        self.args = args
        self.ready = ready
        self.log_path = tmp_path / f"celery-{name}.log"
        self.env = child_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "CeleryProcess":
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "logsite", self.role, *self.args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"celery {self.role} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.ready in self.log_text():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery {self.role} not ready in {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signals the whole process group (the worker and its pool processes)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def worker(tmp_path: Path, name: str = "w1", concurrency: int = 2, **env) -> CeleryProcess:
    args = [
        "-l",
        "info",
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return CeleryProcess(tmp_path, "worker", name, args, "ready.", **env)


def beat(tmp_path: Path, **env) -> CeleryProcess:
    args = ["-l", "info", "--pidfile=", "-s", str(tmp_path / "beat-schedule")]
    return CeleryProcess(tmp_path, "beat", "beat", args, "beat: Starting", **env)
