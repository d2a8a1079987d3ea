"""The hand-off between receivers (asyncio) and the single writer (its own thread).

Receivers either `offer` records (protocols that cannot acknowledge: never block, count a drop
when the queue is full) or `await submit(records)` (protocols that acknowledge: the coroutine
returns only once every record is committed or fsynced to the spool, and raises otherwise so
the receiver answers an error and the sender retries).

Records carry a global sequence number; the writer reports which sequence ranges became
durable or failed, and each waiting submit is resolved from that, so a submit spanning
several writer batches is acknowledged only when all of them are durable.

An optional `Preparer` (ingest/prepare.py) runs before records are queued: tenant label
override and multi-line grouping. Grouping may hold a container's newest lines back until
the next line shows whether they continue; held lines count against the queue limit. An
offered line may stay held until its rule's flush timeout; a submitted line never outlives
its submit (the submit flushes its containers' groups), so an acknowledgement still means
durable — docs/admin.md, "Multi-line and acknowledgements".
"""

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ingest.record import Record


class Overloaded(Exception):
    """The queue is full; an acknowledging sender should retry later (HTTP 503)."""


class NotDurable(Exception):
    """The writer could neither commit nor spool these records."""


@dataclass
class Counters:
    accepted: int = 0
    dropped: int = 0
    committed: int = 0
    spooled: int = 0
    quarantined: int = 0
    # Re-sent records not stored again (their de-duplication key was already stored).
    deduplicated: int = 0
    batches: int = 0
    by_driver: dict = field(default_factory=dict)
    # (tenant, container id) -> lines dropped because the queue was full; bounded
    dropped_by_container: dict = field(default_factory=dict)


class Pipeline:
    def __init__(
        self, queue_limit: int, batch_lines: int, batch_wait_s: float, prepare=None, batch_bytes: int = 0
    ):
        self.prepare = prepare
        self.queue_limit = queue_limit
        self.batch_lines = batch_lines
        # 0: no cap. Lines may be 256 KiB each: 5,000 of them would be a 1.3 GB COPY in memory.
        self.batch_bytes = batch_bytes
        self.batch_wait_s = batch_wait_s
        self.counters = Counters()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._records: list[Record] = []
        self._first_at = 0.0
        self._next_seq = 0  # sequence number of the next appended record
        self._taken_seq = 0  # everything below was handed to the writer
        self._acks: deque = deque()  # (end_seq, start_seq, future), ordered by end_seq
        self._failures: list[tuple[int, int, str]] = []
        self._closed = False

    # --- receiver side (event loop thread) ---------------------------------------------------
    def offer(self, record: Record) -> bool:
        return self.offer_many([record]) == 0

    def offer_many(self, records: list[Record]) -> int:
        """Queues as many as fit; returns how many were dropped."""
        with self._lock:
            held = self.prepare.held if self.prepare is not None else 0
            room = 0 if self._closed else self.queue_limit - len(self._records) - held
            if room < len(records):
                keep = max(room, 0)
                dropped = len(records) - keep
                self.counters.dropped += dropped
                self._count_drops(records[keep:])
                records = records[:keep]
            else:
                dropped = 0
            if records and self.prepare is None:
                self._append(records)
                return dropped
        if records:
            ready = self.prepare.feed(records)
            with self._lock:
                self._append(ready, accepted=len(records))
        return dropped

    def has_room(self, count: int) -> bool:
        """Would offer_many take `count` more lines without dropping any?"""
        with self._lock:
            waiting = len(self._records) + (self.prepare.held if self.prepare is not None else 0)
            return waiting + count <= self.queue_limit

    async def submit(self, records: list[Record]) -> None:
        if not records:
            return
        fut = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise Overloaded("ingest is shutting down")
            waiting = len(self._records) + (self.prepare.held if self.prepare is not None else 0)
            # A submit larger than the whole queue is taken when the queue is empty: refusing it
            # would make its sender retry the same body forever.
            if waiting and waiting + len(records) > self.queue_limit:
                raise Overloaded(f"ingest queue is full ({waiting} lines waiting)")
            if self.prepare is None:
                start = self._next_seq
                self._append(records)
                self._acks.append((self._next_seq, start, fut))
        if self.prepare is not None:
            # flush_after: every group holding one of these records is queued now, so the
            # acknowledgement below covers all of them (no held line outlives its submit).
            ready = self.prepare.feed(records, flush_after=True)
            with self._lock:
                start = self._next_seq
                self._append(ready, accepted=len(records))
                self._acks.append((self._next_seq, start, fut))
        await fut

    def flush_expired(self) -> None:
        """Queues multi-line groups whose flush timeout passed (called by the service's timer)."""
        if self.prepare is not None:
            ready = self.prepare.expire()
            if ready:
                with self._lock:
                    self._append(ready, accepted=0)

    def flush_held(self) -> None:
        """Queues every held group (before rules change, and on close)."""
        if self.prepare is not None:
            ready = self.prepare.flush_all()
            if ready:
                with self._lock:
                    self._append(ready, accepted=0)

    def _count_drops(self, records: list[Record]) -> None:
        by_container = self.counters.dropped_by_container
        for record in records:
            key = (record.tenant, record.container_id or record.container_name or record.host)
            if key not in by_container and len(by_container) >= 1000:
                key = ("", "")  # everything past the first 1000 containers, together
            by_container[key] = by_container.get(key, 0) + 1

    def _append(self, records: list[Record], accepted: int | None = None) -> None:
        self.counters.accepted += len(records) if accepted is None else accepted
        if not records:
            return
        was_empty = not self._records
        if was_empty:
            self._first_at = time.monotonic()
        self._records.extend(records)
        self._next_seq += len(records)
        # An idle writer sleeps on its idle timeout: wake it for the first record too, so the
        # batch wait (not the idle timeout) bounds how long a small batch waits.
        if was_empty or len(self._records) >= self.batch_lines:
            self._wake.notify()

    # --- writer side (writer thread) ----------------------------------------------------------
    def take(self, idle_timeout: float = 0.5) -> tuple[list[Record], int]:
        """Blocks until a batch is due (full, or its first line waited batch_wait_s)."""
        with self._lock:
            deadline = time.monotonic() + idle_timeout
            while True:
                n = len(self._records)
                if n >= self.batch_lines or (self._closed and n):
                    break
                now = time.monotonic()
                if n and now - self._first_at >= self.batch_wait_s:
                    break
                if not n and (now >= deadline or self._closed):
                    return [], self._taken_seq
                wait = (self._first_at + self.batch_wait_s - now) if n else deadline - now
                self._wake.wait(max(wait, 0.001))
            size = self._batch_size()
            batch = self._records[:size]
            del self._records[:size]
            if self._records:
                self._first_at = time.monotonic()
            start = self._taken_seq
            self._taken_seq += len(batch)
            return batch, start

    def _batch_size(self) -> int:
        """Lines in the next batch: batch_lines, fewer if they would pass batch_bytes (at least 1)."""
        size = min(len(self._records), self.batch_lines)
        if self.batch_bytes:
            total = 0
            for i, record in enumerate(self._records[:size]):
                total += len(record.line)
                if total > self.batch_bytes:
                    return max(i, 1)
        return size

    def finished(self, start: int, end: int, error: str | None = None) -> None:
        """The writer reports records [start, end) durable (error=None) or lost."""
        with self._lock:
            if error is not None:
                self._failures.append((start, end, error))
            ready = []
            while self._acks and self._acks[0][0] <= end:
                ready.append(self._acks.popleft())
            failures = list(self._failures)
            if not self._acks:
                self._failures.clear()
        for ack_end, ack_start, fut in ready:
            reason = next((r for s, e, r in failures if s < ack_end and ack_start < e), None)
            loop = fut.get_loop()
            if reason is None:
                loop.call_soon_threadsafe(_resolve, fut, None)
            else:
                loop.call_soon_threadsafe(_resolve, fut, NotDurable(reason))

    def pending(self) -> int:
        with self._lock:
            return len(self._records)

    def close(self) -> None:
        """Stops accepting; the writer drains what is queued, then `take` returns empty."""
        self.flush_held()
        with self._lock:
            self._closed = True
            self._wake.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def _resolve(fut: asyncio.Future, error: Exception | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)
