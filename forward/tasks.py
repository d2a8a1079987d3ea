"""Celery tasks of forwarding. Beat runs `forward_due` (the "forward-due" periodic task, created
by `manage.py setup`); it queues one `forward_target` per target that has lines to send."""

from celery import shared_task
from django.conf import settings

from forward import dispatch, run

_RUN_LIMIT_S = settings.LOGSITE_FORWARD_RUN_SECONDS + 90


@shared_task(name="forward.forward_due", ignore_result=True)
def forward_due() -> list[int]:
    return dispatch.dispatch_due(lambda target_id: forward_target.delay(target_id))


@shared_task(
    name="forward.forward_target",
    ignore_result=True,
    soft_time_limit=_RUN_LIMIT_S,
    time_limit=_RUN_LIMIT_S + 30,
)
def forward_target(target_id: int) -> str:
    result = run.forward_target(target_id)
    if result.more and dispatch.mark_queued(target_id):
        # Its time is up but lines remain: hand over to a fresh task instead of waiting for beat.
        forward_target.delay(target_id)
    return result.status
