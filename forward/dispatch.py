"""Which targets need a forwarding run now, queued at most once each.

Beat calls this every LOGSITE_FORWARD_TICK_SECONDS. A target is due when it is enabled and not
paused, its backoff (next_attempt_at) has passed, nobody holds its lease, it is not already
queued, and the ledger has something past its cursor. Queueing is a conditional update of
queued_at, so two beats (or a beat and a run that re-queues itself) never queue it twice; a
queued task that never ran (lost with its worker) is queued again after the lease time.
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.db.models.functions import Now

from forward.cursor import HORIZON_CTE
from forward.models import ForwardState

LATEST_SQL = f"""
WITH {HORIZON_CTE}
SELECT b.xid::text::bigint, b.id, b.last_id FROM log_batches b, horizon
 WHERE b.xid < horizon.h ORDER BY b.xid DESC, b.id DESC LIMIT 1
"""


def _not_queued():
    stale = Now() - timedelta(seconds=settings.LOGSITE_FORWARD_LEASE_SECONDS)
    return Q(queued_at__isnull=True) | Q(queued_at__lt=stale)


def due_states():
    with connection.cursor() as cur:
        cur.execute(LATEST_SQL)
        latest = cur.fetchone()
    if latest is None:
        return []
    xid, batch_id, last_id = latest
    states = ForwardState.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now()),
        Q(lease_until__isnull=True) | Q(lease_until__lt=Now()),
        _not_queued(),
        target__enabled=True,
        target__paused=False,
    )
    # Idle targets (cursor at the newest batch below the horizon) are left alone.
    return [s for s in states if (s.xid, s.batch_id, s.row_id) < (xid, batch_id, last_id)]


def mark_queued(target_id: int) -> bool:
    return ForwardState.objects.filter(_not_queued(), target_id=target_id).update(queued_at=Now()) == 1


def dispatch_due(enqueue: Callable[[int], None]) -> list[int]:
    queued = []
    for state in due_states():
        if mark_queued(state.target_id):
            enqueue(state.target_id)
            queued.append(state.target_id)
    return queued
