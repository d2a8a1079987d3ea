"""Creating a target's state, and moving its cursor (replay)."""

from django.db import connection, transaction

from forward import cursor as ledger
from forward.cursor import END_BATCH, Position
from forward.models import ForwardState, Target


def current_horizon() -> int:
    with connection.cursor() as cur:
        return ledger.horizon(cur)


def create_state(target: Target) -> ForwardState:
    """A new target forwards what is committed from now on (use replay for older lines)."""
    start = Position.before_horizon(current_horizon())
    state, _ = ForwardState.objects.get_or_create(
        target=target, defaults={"xid": start.xid, "batch_id": start.batch_id, "row_id": start.row_id}
    )
    return state


def position_of(state: ForwardState) -> Position:
    return Position(state.xid, state.batch_id, state.row_id)


REPLAY_START_SQL = """
SELECT xid::text::bigint, id, first_id FROM log_batches
 WHERE ts_max >= %s ORDER BY xid, id LIMIT 1
"""


def replay_from(target: Target, since) -> Position:
    """Send again every stored line of the target with ts >= since (at least once).

    The cursor goes back to the first ledger batch (in commit order) that can hold such a
    line; until it is back where it was, lines older than `since` are passed over.
    """
    with transaction.atomic():
        state = ForwardState.objects.select_for_update().get(target=target)
        with connection.cursor() as cur:
            cur.execute(REPLAY_START_SQL, [since])
            row = cur.fetchone()
            now = ledger.horizon(cur)
        old = position_of(state)
        if row is None:
            # Nothing stored at or after `since`: start from the horizon.
            new = Position.before_horizon(now)
        else:
            xid, batch_id, first_id = row
            new = Position(xid, batch_id, first_id - 1)
        state.xid, state.batch_id, state.row_id = new.xid, new.batch_id, new.row_id
        state.replay_from = since
        until = max(old, new)
        state.replay_until_xid, state.replay_until_batch = until.xid, until.batch_id
        state.failures = 0
        state.next_attempt_at = None
        state.save()
    return new


def replay_until(state: ForwardState) -> Position | None:
    if state.replay_from is None or state.replay_until_xid is None:
        return None
    return Position(state.replay_until_xid, state.replay_until_batch, END_BATCH)
