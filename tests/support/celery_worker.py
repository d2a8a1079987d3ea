"""A real `celery -A logsite worker` (and beat) on the test database and the test Redis db."""

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from ingest.models import MaintenanceRun
from tests.support.processes import REPO, child_env

# Kombu's keys for the default queue: left-overs of an earlier run would be executed first.
QUEUE_KEYS = ("celery", "unacked", "unacked_index")


class CeleryProcess:
    def __init__(self, tmp_path: Path, kind: str, args: list[str], ready: str, **env):
        self.kind = kind
        self.log_path = tmp_path / f"celery-{kind}.log"
        self.args = args
        self.ready = ready
        self.env = child_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "CeleryProcess":
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "logsite", self.kind, "--loglevel=INFO", *self.args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"celery {self.kind} exited with {code}:\n{self.log_tail()}")
            if self.ready in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery {self.kind} not ready in {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def purge_queue() -> None:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUE_KEYS)
    client.close()


def start_worker(tmp_path: Path, **env) -> CeleryProcess:
    purge_queue()
    return CeleryProcess(
        tmp_path,
        "worker",
        ["--concurrency=2", "--without-gossip", "--without-mingle", "--hostname=logsite-test@%h"],
        ready="ready.",
        **env,
    ).start()


def start_beat(tmp_path: Path, **env) -> CeleryProcess:
    return CeleryProcess(
        tmp_path,
        "beat",
        [f"--pidfile={tmp_path / 'beat.pid'}", f"--schedule={tmp_path / 'beat-schedule'}"],
        ready="beat: Starting",
        **env,
    ).start()


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A running worker; tasks sent with .delay() from the test run in it."""
    worker = start_worker(tmp_path)
    yield worker
    worker.stop()


def wait_for_run(task_id: str, worker: CeleryProcess, timeout: float = 120) -> MaintenanceRun:
    """The MaintenanceRun of a task sent with .delay(), once it finished successfully."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = MaintenanceRun.objects.filter(task_id=task_id, finished_at__isnull=False).first()
        if run is not None:
            if not run.ok:
                raise AssertionError(f"task {run.task} failed: {run.error}\n{worker.log_tail()}")
            return run
        if worker.proc is not None and worker.proc.poll() is not None:
            raise AssertionError(f"the worker died:\n{worker.log_tail()}")
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish in {timeout}s:\n{worker.log_tail()}")


def run_task(task, worker: CeleryProcess, *args, timeout: float = 120) -> dict:
    """Sends `task` to the real worker and returns its recorded result."""
    return wait_for_run(task.delay(*args).id, worker, timeout).result
