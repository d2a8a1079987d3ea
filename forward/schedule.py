"""The beat schedule of forwarding, kept in the database (django-celery-beat) so the admin can
change it; created idempotently by `manage.py setup`."""

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

TASK_NAME = "forward-due"


def ensure_schedule() -> PeriodicTask:
    """Creates the periodic task if missing; an existing one keeps the admin's changes."""
    existing = PeriodicTask.objects.filter(name=TASK_NAME).first()
    if existing is not None:
        return existing
    every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.LOGSITE_FORWARD_TICK_SECONDS, period=IntervalSchedule.SECONDS
    )
    return PeriodicTask.objects.create(
        name=TASK_NAME,
        task="forward.forward_due",
        interval=every,
        description="Queue a forwarding run for every target with lines to send (forward/dispatch.py).",
    )
