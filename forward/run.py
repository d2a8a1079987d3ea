"""One forwarding run of one target: read from the cursor, send, move the cursor on ack.

The cursor moves only after the destination acknowledged rows, and only as far as it did
(`rows_sent` of a failure), so an outage delays and never skips: at least once. A worker killed
mid-send never moved the cursor for the rows in flight, so they are sent again (a duplicate,
never a gap).

Batching: a send takes up to the target's batch_lines and batch_bytes; when fewer lines are
pending and the oldest of them is younger than batch_wait_ms, the run waits for more first.
Retryable errors back off exponentially with jitter (short waits inside the run, longer ones
through next_attempt_at and beat); final errors pause the target with the reason.
"""

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.functions import Now

from forward import destinations, filters, lease
from forward import state as states
from forward.backoff import backoff_delay
from forward.cursor import Position
from forward.gc_tuning import fewer_gc_passes
from forward.models import ForwardState, Target
from forward.readahead import ReadAhead
from forward.rows import RowReader
from forward.sinks.errors import SinkError
from forward.template import compile_template
from ingest.store.writer import conninfo_from_settings

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    status: str  # busy | inactive | caught_up | budget | backoff | paused | lost_lease
    sent: int = 0

    @property
    def more(self) -> bool:
        """The target still has lines and nothing stops it: start another run now."""
        return self.status == "budget"


class LostLease(Exception):
    pass


def new_owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def forward_target(target_id: int, *, budget_s: float | None = None, owner: str | None = None) -> RunResult:
    owner = owner or new_owner()
    if not lease.claim(target_id, owner, settings.LOGSITE_FORWARD_LEASE_SECONDS):
        # Someone holds it (or a dead worker's lease has not expired): let beat look again.
        ForwardState.objects.filter(pk=target_id).update(queued_at=None)
        return RunResult("busy")
    run = _Run(target_id, owner)
    try:
        with fewer_gc_passes():
            return run.run(budget_s if budget_s is not None else settings.LOGSITE_FORWARD_RUN_SECONDS)
    except LostLease:
        log.warning("forward target %s: lease lost to another worker; stopping", target_id)
        return RunResult("lost_lease", run.sent)
    finally:
        lease.release(target_id, owner)


class _Run:
    def __init__(self, target_id: int, owner: str):
        self.target_id = target_id
        self.owner = owner
        self.sent = 0
        self.lease_s = settings.LOGSITE_FORWARD_LEASE_SECONDS

    def run(self, budget_s: float) -> RunResult:
        deadline = time.monotonic() + budget_s
        target = Target.objects.select_related("tenant").get(pk=self.target_id)
        if not target.enabled or target.paused:
            return RunResult("inactive")
        state = ForwardState.objects.get(pk=self.target_id)
        try:
            sink = destinations.sink_for(target)
            matcher = filters.line_matcher(target.query)
            render = compile_template(target.template)
        except (SinkError, ValueError) as e:
            self.pause(str(e))
            return RunResult("paused")
        conditions, params = filters.container_conditions(
            target.tenant.slug, target.service, target.container
        )
        connection.ensure_connection()

        def make_reader(cur) -> RowReader:
            return RowReader(cur, target.tenant.slug, conditions, params, matcher)

        ahead = ReadAhead(conninfo_from_settings(), make_reader)
        try:
            # A server-binding cursor on Django's connection: rows are fetched in binary, which
            # Django's own (client-binding) cursors cannot do.
            with psycopg.Cursor(connection.connection) as cur:
                return self.loop(target, state, sink, make_reader(cur), ahead, render, deadline)
        finally:
            ahead.close()

    def loop(self, target, state, sink, reader, ahead, render, deadline) -> RunResult:
        position = states.position_of(state)
        replay_from = state.replay_from
        replay_until = states.replay_until(state)
        wait_s = target.batch_wait_ms / 1000
        while True:
            if time.monotonic() >= deadline:
                return RunResult("budget", self.sent)
            if replay_until is not None and position > replay_until:
                self.renew(replay_from=None, replay_until_xid=None, replay_until_batch=None)
                replay_from = replay_until = None
            limits = (target.batch_lines, target.batch_bytes, replay_from, replay_until)
            chunk = ahead.take(position) or reader.read(position, *limits)
            if not chunk.rows:
                if chunk.end == position:
                    self.renew(caught_up_at=Now())
                    return RunResult("caught_up", self.sent)
                position = self.advance(chunk.end, 0, None)  # batches with no line for this target
                continue
            small = len(chunk.rows) < target.batch_lines and chunk.nbytes < target.batch_bytes
            if small and not chunk.more and chunk.oldest_age_s < wait_s:
                pause_s = wait_s - chunk.oldest_age_s
                if time.monotonic() + pause_s < deadline:
                    time.sleep(pause_s)
                    self.renew()
                    continue
            if render is not None:
                for row in chunk.rows:
                    row.line = render(row)
            if chunk.more:
                ahead.start(chunk.end, *limits)
            try:
                sent = sink.send(chunk.rows)
            except SinkError as e:
                ahead.drop()
                if e.rows_sent:
                    position = self.advance(chunk.position_after(e.rows_sent), e.rows_sent, chunk.rows)
                if not e.retryable:
                    self.pause(str(e))
                    return RunResult("paused", self.sent)
                delay = self.failed(str(e), e.retry_after)
                if (
                    delay <= settings.LOGSITE_FORWARD_INLINE_RETRY_SECONDS
                    and time.monotonic() + delay < deadline
                ):
                    time.sleep(delay)
                    self.renew()
                    continue
                return RunResult("backoff", self.sent)
            position = self.advance(chunk.end, sent, chunk.rows)

    # --- state updates (each one conditional on holding the lease) ---------------------------
    def renew(self, **fields) -> None:
        if not lease.renew(self.target_id, self.owner, self.lease_s, **fields):
            raise LostLease()

    def advance(self, position: Position, sent: int, rows) -> Position:
        fields = {"xid": position.xid, "batch_id": position.batch_id, "row_id": position.row_id}
        if sent:
            last_ts = datetime.fromtimestamp(rows[sent - 1].ts_ns / 1e9, tz=UTC)
            fields.update(
                lines_sent=F("lines_sent") + sent,
                last_sent_at=Now(),
                last_line_ts=last_ts,
                failures=0,
                next_attempt_at=None,
            )
        self.renew(**fields)
        self.sent += sent
        return position

    def failed(self, error: str, retry_after: float | None) -> float:
        state = ForwardState.objects.get(pk=self.target_id)
        failures = state.failures + 1
        delay = backoff_delay(
            failures,
            settings.LOGSITE_FORWARD_BACKOFF_BASE_MS / 1000,
            settings.LOGSITE_FORWARD_BACKOFF_MAX_SECONDS,
            retry_after,
        )
        log.warning(
            "forward target %s: attempt %d failed (%s); retrying in %.2fs",
            self.target_id,
            failures,
            error,
            delay,
        )
        self.renew(
            failures=failures,
            last_error=error[:2000],
            last_error_at=Now(),
            next_attempt_at=Now() + timedelta(seconds=delay),
        )
        return delay

    def pause(self, reason: str) -> None:
        log.error("forward target %s paused: %s", self.target_id, reason)
        Target.objects.filter(pk=self.target_id).update(
            paused=True, pause_reason=reason[:2000], paused_at=Now()
        )
        self.renew(last_error=reason[:2000], last_error_at=Now())
