"""The whole forwarding path for tests: real ingest subprocesses (HTTP push), a real Celery
worker and beat on the test database and Redis db, and helpers to push and count lines."""

import json
import time
from collections import Counter

import requests

from forward.lag import forward_lag
from forward.schedule import ensure_schedule
from tests.base import make_driver
from tests.support import celery_processes
from tests.support.processes import IngestProcess

# Short times so outages, backoff and a dead worker's lease play out within a test.
FORWARD_ENV = {
    "LOGSITE_FORWARD_TICK_SECONDS": 1,
    "LOGSITE_FORWARD_RUN_SECONDS": 5,
    "LOGSITE_FORWARD_LEASE_SECONDS": 8,
    "LOGSITE_FORWARD_BACKOFF_BASE_MS": 100,
    "LOGSITE_FORWARD_BACKOFF_MAX_SECONDS": 2,
    "LOGSITE_FORWARD_INLINE_RETRY_SECONDS": 1,
}


class ForwardStack:
    def __init__(self, tmp_path, tenant):
        self.tmp_path = tmp_path
        self.tenant = tenant
        self.ingests: list[IngestProcess] = []
        self.workers: list[celery_processes.CeleryProcess] = []
        self.beat_process: celery_processes.CeleryProcess | None = None
        self.pushers: list[tuple[str, str]] = []  # (url, token) per ingest process

    def ingest(self, port: int, writer: str = "writer-1") -> int:
        """Starts an ingest process serving one HTTP push driver; returns its index."""
        driver, token = make_driver("http", f"127.0.0.1:{port}", tenant=self.tenant)
        proc = IngestProcess(self.tmp_path, writer=writer, args=("--driver", str(driver.id)))
        self.ingests.append(proc)
        proc.start(wait_for_drivers=[driver.id])
        self.pushers.append((f"http://127.0.0.1:{port}/api/v1/push", token))
        return len(self.pushers) - 1

    def worker(self, name: str = "w1", **env) -> celery_processes.CeleryProcess:
        proc = celery_processes.worker(self.tmp_path, name=name, **{**FORWARD_ENV, **env})
        self.workers.append(proc)
        return proc.start()

    def beat(self) -> celery_processes.CeleryProcess:
        ensure_schedule()
        self.beat_process = celery_processes.beat(self.tmp_path, **FORWARD_ENV).start()
        return self.beat_process

    def push(self, lines: list[str], container: str = "c1", via: int = 0, ts_ns: int | None = None, **fields):
        """Pushes lines for one container; ts_ns: the first line's own time (then +1 µs each)."""
        url, token = self.pushers[via]
        objects = []
        for i, line in enumerate(lines):
            obj = {"line": line, "container_id": container, "container_name": f"/{container}", **fields}
            if ts_ns is not None:
                obj["ts_ns"] = ts_ns + i * 1000
            objects.append(obj)
        body = "\n".join(json.dumps(obj) for obj in objects)
        response = requests.post(
            url, data=body.encode(), headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        for proc in [*self.workers, self.beat_process]:
            if proc is not None:
                proc.stop()
        for proc in self.ingests:
            proc.stop()

    def logs(self) -> str:
        parts = [f"--- {p.name}\n{p.log_tail()}" for p in [*self.workers, self.beat_process] if p]
        return "\n".join(parts)


def wait_for(predicate, what: str, timeout: float = 120, stack: ForwardStack | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{stack.logs() if stack else ''}")


def wait_lines(standin, expected: list[str], stack=None, timeout: float = 120) -> Counter:
    """Waits until every expected line arrived at least once; returns the arrival counts."""
    wanted = set(expected)

    def arrived():
        counts = Counter(log.fields["log"] for log in standin.logs())
        return counts if wanted <= set(counts) else None

    return wait_for(
        arrived, f"{len(expected)} lines at the stand-in (have {standin.count()})", timeout, stack
    )


def wait_caught_up(target, stack=None, timeout: float = 60) -> None:
    def caught_up():
        rows = [r for r in forward_lag() if r.target_id == target.id]
        return rows and rows[0].lag_lines == 0

    wait_for(caught_up, "the target to catch up", timeout, stack)
