"""The beat schedules of the maintenance tasks, as django-celery-beat rows.

Stored in the database (not in code) so an admin can change or pause them in the admin;
`manage.py setup` creates the missing ones at every start and never overwrites an edit.
"""

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

# (name shown in the admin, task, every N seconds)
SCHEDULES = [
    ("logsite: create partitions ahead", "ingest.create_partitions_ahead", 3600),
    ("logsite: seal partitions", "ingest.seal_partitions", 3600),
    ("logsite: roll up hot days", "ingest.roll_up_hot_days", 300),
    ("logsite: index hot blocks", "ingest.index_hot_blocks", 60),
    ("logsite: apply retention", "ingest.apply_retention", 3600),
    ("logsite: expire containers", "ingest.expire_containers", 6 * 3600),
    ("logsite: prune ledger", "ingest.prune_ledger", 6 * 3600),
]


@transaction.atomic
def ensure_schedules() -> list[str]:
    """Creates missing schedules; returns the names created."""
    created = []
    for name, task, seconds in SCHEDULES:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name=name, task=task, interval=every)
        created.append(name)
    return created
