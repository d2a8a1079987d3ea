import pytest
from django.db import connection

from tests.base import actors  # noqa: F401 - shared fixture
from tests.support.processes import IngestProcess


@pytest.fixture
def clean_logs(transactional_db):
    """`logs` and its ledger are not Django-managed, so the test flush leaves them: empty them."""
    with connection.cursor() as cur:
        cur.execute("TRUNCATE logs, log_batches, containers, log_dedup_keys CASCADE")


@pytest.fixture
def ingest(tmp_path, clean_logs):
    """Factory for real `manage.py ingest` subprocesses; all are stopped after the test."""
    started: list[IngestProcess] = []

    def start(drivers: list[int], writer: str = "test-writer", **env) -> IngestProcess:
        proc = IngestProcess(tmp_path, writer=writer, **env)
        started.append(proc)
        return proc.start(wait_for_drivers=drivers)

    yield start
    for proc in started:
        proc.stop()


def log_rows(where: str = "TRUE", params: tuple = ()) -> list[dict]:
    """Stored rows joined with their container, oldest id first (test helper)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.tenant, c.service, c.container_id, c.name, l.id, l.ts, l.ts_ns, l.stream, l.level, "
            "l.flags, l.line, l.attrs, l.raw FROM logs l JOIN containers c ON c.id = l.ckey "
            f"WHERE {where} ORDER BY l.id",
            params,
        )
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
