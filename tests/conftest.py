import json

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.base import actors  # noqa: F401 - shared fixture
from tests.support.private_postgres import private_db, private_postgres  # noqa: F401 - shared fixtures
from tests.support.processes import IngestProcess
from tests.support.shared import module_db  # noqa: F401 - shared fixture


@pytest.fixture
def clean_logs(transactional_db):
    """`logs` and its ledger are not Django-managed, so the test flush leaves them: empty them.

    Container keys start again at 1 in every new test database, so the per-container rates in
    Redis (ingest/rates.py) of earlier runs must go too.
    """
    with connection.cursor() as cur:
        cur.execute("TRUNCATE logs, log_batches, containers, log_dedup_keys CASCADE")
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in [*client.scan_iter(match="logsite:rates:*"), "logsite:seen"]:
        client.delete(key)
    client.close()


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


def decoded_log_rows(where: str = "TRUE", params: tuple = ()) -> list[dict]:
    """log_rows with attrs as a dict: Django's connection hands jsonb back as text."""
    rows = log_rows(where, params)
    for row in rows:
        if isinstance(row["attrs"], str):
            row["attrs"] = json.loads(row["attrs"])
    return rows
