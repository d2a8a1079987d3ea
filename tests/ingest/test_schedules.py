import io
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ingest.models import MaintenanceRun
from ingest.schedules import SCHEDULES, ensure_schedules
from ingest.store import partitions
from tests.support.celery_worker import start_beat
from tests.support.rows import drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_creates_the_schedules_once_and_keeps_admin_edits():
    call_command("setup", stdout=io.StringIO())
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    assert {name: tasks.get(name) for name, _task, _every in SCHEDULES} == {
        name: task for name, task, _every in SCHEDULES
    }
    count = PeriodicTask.objects.count()  # other apps (forwarding) have schedules of their own
    # The admin edits one, then the next start runs setup again.
    edited = PeriodicTask.objects.get(task="ingest.apply_retention")
    edited.interval = IntervalSchedule.objects.create(every=17, period=IntervalSchedule.MINUTES)
    edited.enabled = False
    edited.save()

    assert ensure_schedules() == []

    edited.refresh_from_db()
    assert (edited.interval.every, edited.interval.period, edited.enabled) == (17, "minutes", False)
    assert PeriodicTask.objects.count() == count


def test_it_runs_a_schedule_from_the_database_in_beat(tmp_path, celery_worker):
    drop_all_days()
    ensure_schedules()
    # As an admin would: run "create partitions ahead" every second (the others stay hourly).
    task = PeriodicTask.objects.get(task="ingest.create_partitions_ahead")
    task.interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    task.save()
    beat = start_beat(tmp_path)
    try:
        deadline = time.monotonic() + 90
        while not MaintenanceRun.objects.filter(task="create_partitions_ahead", ok=True).exists():
            assert time.monotonic() < deadline, (
                f"beat never ran the task:\n{beat.log_tail()}\n{celery_worker.log_tail()}"
            )
            time.sleep(0.5)
    finally:
        beat.stop()
    today = timezone.now().date()
    with connection.cursor() as cur:
        days = set(partitions.day_tables(cur.cursor))
    assert {today + timedelta(days=n) for n in range(settings.LOGSITE_PARTITION_DAYS_AHEAD + 1)} <= days
