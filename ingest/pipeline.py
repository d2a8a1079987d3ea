"""The hand-off between receivers (asyncio) and the single writer (its own thread).

Receivers either `offer` records (protocols that cannot acknowledge: never block, count a drop
when the queue is full) or `await submit(records)` (protocols that acknowledge: the coroutine
returns only once every record is committed or fsynced to the spool, and raises otherwise so
the receiver answers an error and the sender retries).

Records carry a global sequence number; the writer reports which sequence ranges became
durable or failed, and each waiting submit is resolved from that, so a submit spanning
several writer batches is acknowledged only when all of them are durable.
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


class Pipeline:
    def __init__(self, queue_limit: int, batch_lines: int, batch_wait_s: float):
        self.queue_limit = queue_limit
        self.batch_lines = batch_lines
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
        with self._lock:
            if len(self._records) >= self.queue_limit or self._closed:
                self.counters.dropped += 1
                return False
            self._append([record])
        return True

    def offer_many(self, records: list[Record]) -> int:
        """Queues as many as fit; returns how many were dropped."""
        with self._lock:
            room = 0 if self._closed else self.queue_limit - len(self._records)
            if room < len(records):
                dropped = len(records) - max(room, 0)
                self.counters.dropped += dropped
                records = records[: max(room, 0)]
            else:
                dropped = 0
            if records:
                self._append(records)
        return dropped

    async def submit(self, records: list[Record]) -> None:
        if not records:
            return
        fut = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise Overloaded("ingest is shutting down")
            if len(self._records) + len(records) > self.queue_limit:
                raise Overloaded(f"ingest queue is full ({len(self._records)} lines waiting)")
            start = self._next_seq
            self._append(records)
            self._acks.append((self._next_seq, start, fut))
        await fut

    def _append(self, records: list[Record]) -> None:
        if not self._records:
            self._first_at = time.monotonic()
        self._records.extend(records)
        self._next_seq += len(records)
        self.counters.accepted += len(records)
        if len(self._records) >= self.batch_lines:
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
            batch = self._records[: self.batch_lines]
            del self._records[: self.batch_lines]
            if self._records:
                self._first_at = time.monotonic()
            start = self._taken_seq
            self._taken_seq += len(batch)
            return batch, start

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
