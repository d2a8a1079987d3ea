from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from ingest import tasks
from ingest.store import partitions
from ingest.store.writer import conninfo_from_settings
from tests.support.celery_worker import run_task
from tests.support.rows import drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_days(transactional_db):
    drop_all_days()


def attached_days() -> dict:
    with connection.cursor() as cur:
        return {day: state for day, (_name, state) in partitions.day_tables(cur.cursor).items()}


def test_it_creates_the_days_ahead_in_the_worker(no_days, celery_worker):
    today = timezone.now().date()
    wanted = [today + timedelta(days=n) for n in range(settings.LOGSITE_PARTITION_DAYS_AHEAD + 1)]

    result = run_task(tasks.create_partitions_ahead, celery_worker)

    assert result == {"created": [d.isoformat() for d in wanted]}
    assert attached_days() == dict.fromkeys(wanted, "attached")
    with connection.cursor() as cur:
        leaves = partitions.leaf_names(cur.cursor, partitions.partition_name(wanted[-1]))
        cur.execute("SELECT day FROM log_partitions ORDER BY day")
        assert [r[0] for r in cur.fetchall()] == wanted
        cur.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = ANY(%s)",
            (leaves,),
        )
        assert cur.fetchone()[0] == 3 * len(leaves)  # (ckey, ts, id), BRIN id, BRIN ts
    assert len(leaves) == settings.LOGSITE_HASH_PARTITIONS
    # Idempotent: a second run finds everything in place.
    assert run_task(tasks.create_partitions_ahead, celery_worker) == {"created": []}


def test_it_lets_the_first_insert_after_midnight_find_its_day(no_days, celery_worker):
    run_task(tasks.create_partitions_ahead, celery_worker)
    after_midnight = datetime.combine(timezone.now().date() + timedelta(days=1), time(0, 0, 1), tzinfo=UTC)
    # What the writer's COPY does at 00:00:01, with nothing that could create the day first.
    with psycopg.connect(conninfo_from_settings()) as conn:
        conn.execute(
            "INSERT INTO logs (ckey, id, ts, received_at, stream, line) VALUES (1, 1, %s, %s, 1, 'x')",
            (after_midnight, after_midnight),
        )
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM logs")
        assert cur.fetchone()[0].startswith(partitions.partition_name(after_midnight.date()) + "_h")


def test_it_creates_a_day_while_a_search_holds_the_table(no_days):
    """Creating a day must not queue behind a long search (nor make the writer queue)."""
    day = timezone.now().date() + timedelta(days=30)
    conninfo = conninfo_from_settings()
    with psycopg.connect(conninfo) as search, psycopg.connect(conninfo) as ddl:
        search.execute("SELECT count(*) FROM logs").fetchone()  # holds ACCESS SHARE on logs until commit
        ddl.execute("SET lock_timeout = '2s'")
        with ddl.transaction(), ddl.cursor() as cur:
            assert partitions.ensure_day(cur, day) is True
        search.rollback()
    assert attached_days()[day] == "attached"
