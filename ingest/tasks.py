"""Partition lifecycle and retention, run by Celery beat (schedules: ingest/schedules.py).

Every task is idempotent and safe while ingest runs: each re-reads the state it acts on, and
none takes a lock the writer waits on for more than a few milliseconds (measured in
bench/retention.py). The work itself lives in ingest/store/ and ingest/retention/.
"""

from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ingest.maintenance import run_job
from ingest.retention import containers, ledger
from ingest.retention.apply import run_retention
from ingest.retention.load import load_rules
from ingest.retention.plan import decide
from ingest.store import bucket_counts, hot_index, partitions, sealing


def _today() -> date:
    return timezone.now().date()


@shared_task(bind=True, name="ingest.create_partitions_ahead")
def create_partitions_ahead(self) -> dict:
    def job(conn):
        today, created = _today(), []
        for offset in range(settings.LOGSITE_PARTITION_DAYS_AHEAD + 1):
            day = today + timedelta(days=offset)
            # One transaction per day: its advisory lock and ATTACH last only for that day.
            with conn.transaction(), conn.cursor() as cur:
                if partitions.ensure_day(cur, day):
                    created.append(day.isoformat())
        return {"created": created}

    return run_job("create_partitions_ahead", self.request.id, job)


@shared_task(bind=True, name="ingest.apply_retention")
def apply_retention(self) -> dict:
    def job(conn):
        return run_retention(conn, lambda: load_rules(timezone.now()), settings.LOGSITE_MAX_TS_AGE_DAYS)

    return run_job("apply_retention", self.request.id, job)


@shared_task(bind=True, name="ingest.seal_partitions")
def seal_partitions(self) -> dict:
    def job(conn):
        sealed, skipped = [], []
        with conn.cursor() as cur:
            due = sealing.days_due(cur, _today(), settings.LOGSITE_HOT_DAYS)
        for day in due:
            # Indexing a day that retention is about to drop is wasted work, and its build
            # would only delay the drop.
            with conn.cursor() as cur:
                rules = load_rules(timezone.now())
                name = partitions.partition_name(day)
                if decide(cur, rules, day, name, settings.LOGSITE_MAX_TS_AGE_DAYS).action == "drop":
                    skipped.append(day.isoformat())
                    continue
            done = sealing.seal_day(conn, day, settings.LOGSITE_SEAL_WORK_MEM)
            if done is not None:
                sealed.append(done)
        with conn.cursor() as cur:
            missing = bucket_counts.days_missing(cur)
        for day in missing:
            bucket_counts.store_buckets(conn, day, partitions.partition_name(day))
        return {"sealed": sealed, "skipped": skipped, "rolled_up": [d.isoformat() for d in missing]}

    return run_job("seal_partitions", self.request.id, job)


@shared_task(bind=True, name="ingest.index_hot_blocks")
def index_hot_blocks(self) -> dict:
    """Partial trigram indexes on the hot days' cooled blocks (ingest/store/hot_index.py)."""

    def job(conn):
        if not settings.LOGSITE_HOT_INDEX_BLOCKS:
            return {"days": []}
        now = timezone.now()
        with conn.cursor() as cur:
            days = hot_index.days_to_index(cur, now.date(), settings.LOGSITE_HOT_DAYS)
            cur.execute(
                "SELECT set_config('maintenance_work_mem', %s, false)", (settings.LOGSITE_SEAL_WORK_MEM,)
            )
        done = [
            hot_index.index_day(
                conn,
                day,
                now,
                settings.LOGSITE_HOT_INDEX_BLOCKS,
                timedelta(seconds=settings.LOGSITE_HOT_INDEX_DELAY_SECONDS),
            )
            for day in days
        ]
        return {"days": [d for d in done if d["blocks_built"] or d["indexes_dropped"]]}

    return run_job("index_hot_blocks", self.request.id, job)


@shared_task(bind=True, name="ingest.roll_up_hot_days")
def roll_up_hot_days(self) -> dict:
    """Histogram rollups of the days still being written (ingest/store/bucket_counts.py)."""

    def job(conn):
        return {"rolled_up": [d.isoformat() for d in bucket_counts.roll_up_unsealed(conn, _today())]}

    return run_job("roll_up_hot_days", self.request.id, job)


@shared_task(bind=True, name="ingest.seal_partition")
def seal_partition(self, day: str) -> dict:
    """Seals one day ("YYYY-MM-DD") now, whatever the hot window says; for operators."""
    target = date.fromisoformat(day)
    return run_job(
        "seal_partitions",
        self.request.id,
        lambda conn: {"sealed": [sealing.seal_day(conn, target, settings.LOGSITE_SEAL_WORK_MEM)]},
    )


@shared_task(bind=True, name="ingest.expire_containers")
def expire_containers(self) -> dict:
    return run_job(
        "expire_containers", self.request.id, lambda conn: {"expired": containers.expire_containers(conn)}
    )


@shared_task(bind=True, name="ingest.prune_ledger")
def prune_ledger(self) -> dict:
    return run_job(
        "prune_ledger",
        self.request.id,
        lambda conn: {"ledger_rows": ledger.prune_ledger(conn), "runs": ledger.prune_runs(conn)},
    )
