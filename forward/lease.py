"""One worker forwards a target at a time: a lease on the target's state row.

Claimed with a conditional UPDATE (only when free or expired) and acted on only if exactly one
row changed, so two workers racing for the same target cannot both win. The lease expires on
its own, so a worker killed with SIGKILL blocks its target for at most the lease time; every
cursor move renews it and is itself conditional on still holding it, so a worker that lost its
lease (it was too slow) stops instead of moving a cursor someone else now owns.
"""

from datetime import timedelta

from django.db.models import Q
from django.db.models.functions import Now

from forward.models import ForwardState


def _free():
    return Q(lease_until__isnull=True) | Q(lease_until__lt=Now())


def claim(target_id: int, owner: str, seconds: float) -> bool:
    ForwardState.objects.get_or_create(target_id=target_id)
    changed = ForwardState.objects.filter(_free(), target_id=target_id).update(
        lease_owner=owner, lease_until=Now() + timedelta(seconds=seconds), queued_at=None
    )
    return changed == 1


def holding(target_id: int, owner: str):
    """A queryset that matches the state row only while `owner` holds the lease."""
    return ForwardState.objects.filter(target_id=target_id, lease_owner=owner)


def renew(target_id: int, owner: str, seconds: float, **fields) -> bool:
    return holding(target_id, owner).update(lease_until=Now() + timedelta(seconds=seconds), **fields) == 1


def release(target_id: int, owner: str, **fields) -> bool:
    return holding(target_id, owner).update(lease_owner="", lease_until=None, **fields) == 1
