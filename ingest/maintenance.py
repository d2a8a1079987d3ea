"""Runs one maintenance job at a time per kind, and records each run.

Beat may fire a job while the previous one still runs (a long seal), or two workers may both
receive one: a session advisory lock per kind makes the second a recorded no-op instead of a
duplicate. The lock lives on the job's own connection, so it goes away with a dead worker.
Every run leaves a MaintenanceRun row: the storage page shows it and tests wait for it.
"""

import logging
from collections.abc import Callable

import psycopg
from django.utils import timezone

from ingest.models import MaintenanceRun
from ingest.store.writer import conninfo_from_settings

log = logging.getLogger(__name__)


def maintenance_connection() -> psycopg.Connection:
    """Autocommit: CREATE INDEX / DETACH ... CONCURRENTLY and VACUUM refuse transaction blocks,
    and each chunk of a long job should commit on its own."""
    return psycopg.connect(conninfo_from_settings(), autocommit=True, application_name="logsite-maintenance")


def run_job(kind: str, task_id: str | None, job: Callable[[psycopg.Connection], dict]) -> dict:
    run = MaintenanceRun.objects.create(task=kind, task_id=task_id or "", started_at=timezone.now())
    try:
        with maintenance_connection() as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", ("logsite-maintenance:" + kind,))
                claimed = cur.fetchone()[0]
            if not claimed:
                result = {"skipped": "another run of this job is in progress"}
            else:
                result = job(conn)
    except Exception as e:
        log.exception("maintenance job %s failed", kind)
        _finish(run, ok=False, result={}, error=f"{type(e).__name__}: {e}")
        raise
    _finish(run, ok=True, result=result)
    log.info("maintenance job %s: %s", kind, result)
    return result


def _finish(run: MaintenanceRun, ok: bool, result: dict, error: str = "") -> None:
    run.finished_at = timezone.now()
    run.ok = ok
    run.result = result
    run.error = error
    run.save(update_fields=["finished_at", "ok", "result", "error"])
