"""Ships one container's records to Logsite's HTTP push, in order, without ever making the
FIFO reader wait.

`offer()` is synchronous and returns at once: records go to memory, and memory beyond a small
bound spills to the on-disk buffer. Only the `run()` task talks to the network. Order is kept by
giving every record a sequence number: disk segments are always older than what is in memory,
so the sender posts the oldest disk segment first and memory only when the disk is empty.

Delivery is at least once: a batch is forgotten only after Logsite answered 200, which it does
after commit or spool. The one case that re-sends lines is a batch split after a 400/413 whose
second half then fails on the network: the whole batch is retried.
"""

import asyncio
import contextlib
import gzip
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from driver.buffer import DiskBuffer, Segment

log = logging.getLogger(__name__)

# Statuses that will not change by sending the same body again.
_REJECTED = (400, 413, 422)


@dataclass(slots=True)
class _Batch:
    first_seq: int
    records: list[bytes]
    segment: Segment | None  # None: taken from memory
    # Counted as dropped while it was being posted, because the buffer needed room.
    dropped: bool = False


class Sender:
    def __init__(
        self,
        *,
        name: str,
        push_url: str,
        token: str,
        buffer: DiskBuffer,
        batch_bytes: int,
        batch_wait_s: float,
        retry_max_s: float,
        drop_report: Callable[[int], bytes],
    ) -> None:
        self._name = name
        self._push_url = push_url
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        }
        self._buffer = buffer
        self._batch_bytes = batch_bytes
        self._batch_wait = batch_wait_s
        self._retry_max = retry_max_s
        self._drop_report = drop_report
        # Memory beyond this spills to disk; it bounds RAM per container during an outage.
        self._memory_limit = 2 * batch_bytes
        self._memory: deque[bytes] = deque()
        self._memory_bytes = 0
        self._memory_since = 0.0
        self._next_seq = buffer.next_seq
        self._wake = asyncio.Event()
        self._finished = False
        self._healthy = True
        # The batch being posted. It is always the oldest data, so when the buffer needs room it
        # is the first to be dropped, even though it is not (or no longer) stored on disk.
        self._inflight: _Batch | None = None
        # Lines lost to a full buffer (or a failed disk write) not yet reported to Logsite.
        self.dropped_unreported = 0
        self.dropped_total = 0
        self.rejected = 0
        self.sent = 0

    # -- reader side: never awaits, never raises ---------------------------------------------

    def offer(self, record: bytes) -> None:
        first = not self._memory
        if first:
            self._memory_since = time.monotonic()
        self._memory.append(record)
        self._memory_bytes += len(record) + 1
        if self._memory_bytes > self._memory_limit:
            self._spill()
        elif first or self._memory_bytes >= self._batch_bytes:
            # The first record starts the batch-wait clock the idle sender must now watch.
            self._wake.set()

    def finish(self) -> None:
        """No more records will come (the FIFO reached EOF); deliver what is left and stop."""
        self._finished = True
        self._wake.set()

    @property
    def pending_lines(self) -> int:
        return len(self._memory) + self._buffer.lines

    def _spill(self) -> None:
        while self._memory:
            records: list[bytes] = []
            size = 0
            while self._memory and (not records or size < self._batch_bytes):
                record = self._memory.popleft()
                records.append(record)
                size += len(record) + 1
            self._store(self._next_seq, records)
            self._next_seq += len(records)
        self._memory_bytes = 0

    def _store(self, first_seq: int, records: list[bytes]) -> None:
        dropped = 0
        inflight = self._inflight
        if inflight is not None and not inflight.dropped and not self._buffer.fits(records):
            inflight.dropped = True
            if inflight.segment is not None:
                self._buffer.remove(inflight.segment)
            dropped += len(inflight.records)
        try:
            dropped += self._buffer.append(first_seq, records)
        except OSError as exc:
            log.error(
                "%s: cannot write the disk buffer (%s); dropping %d lines", self._name, exc, len(records)
            )
            dropped += len(records)
        if dropped:
            self.dropped_unreported += dropped
            self.dropped_total += dropped
            log.warning("%s: disk buffer full, dropped %d oldest lines", self._name, dropped)

    # -- network side ------------------------------------------------------------------------

    async def run(self) -> None:
        delay = 0.0
        timeout = aiohttp.ClientTimeout(total=60, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                batch = self._take()
                if batch is None:
                    if self._finished and not self._memory:
                        return
                    await self._idle()
                    continue
                self._inflight = batch
                try:
                    ok = await self._deliver(session, batch.records, with_report=True)
                except BaseException:
                    # Cancelled at shutdown or a bug: the batch must not vanish with the task.
                    self._give_back(batch)
                    raise
                finally:
                    self._inflight = None
                if ok:
                    if batch.dropped:
                        # Counted as lost while in flight, but Logsite has it after all.
                        self.dropped_unreported -= len(batch.records)
                        self.dropped_total -= len(batch.records)
                    elif batch.segment is not None:
                        self._buffer.remove(batch.segment)
                    self.sent += len(batch.records)
                    if not self._healthy:
                        log.info("%s: Logsite reachable again", self._name)
                    self._healthy = True
                    delay = 0.0
                    continue
                self._give_back(batch)
                if self._healthy:
                    log.warning("%s: Logsite unreachable; buffering on disk", self._name)
                self._healthy = False
                delay = min(self._retry_max, max(0.2, delay * 2))
                await self._wait_while_down(delay * random.uniform(0.8, 1.0))

    async def _wait_while_down(self, seconds: float) -> None:
        # New lines go behind the buffered ones every batch-wait rather than sitting in RAM,
        # where a plugin restart would lose them.
        deadline = time.monotonic() + seconds
        while True:
            self._spill()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, self._batch_wait))

    def shutdown_spill(self) -> None:
        """Plugin shutdown: move memory to disk so a restarted plugin delivers it."""
        self._spill()

    def _take(self) -> _Batch | None:
        segment = self._buffer.oldest()
        if segment is not None:
            try:
                records = self._buffer.read(segment)
            except OSError as exc:
                log.error("%s: unreadable buffer segment %s (%s); dropping it", self._name, segment.path, exc)
                self._buffer.remove(segment)
                self.dropped_unreported += segment.count
                self.dropped_total += segment.count
                return self._take()
            return _Batch(segment.first_seq, records, segment)
        if not self._memory:
            return None
        due = self._memory_bytes >= self._batch_bytes or self._finished
        if not due and time.monotonic() - self._memory_since < self._batch_wait:
            return None
        records = []
        size = 0
        while self._memory and (not records or size < self._batch_bytes):
            record = self._memory.popleft()
            records.append(record)
            size += len(record) + 1
        self._memory_bytes -= size
        self._memory_since = time.monotonic()
        # Records are numbered as they leave memory, oldest first, so what stays is newer.
        first_seq = self._next_seq
        self._next_seq += len(records)
        return _Batch(first_seq, records, None)

    def _give_back(self, batch: _Batch) -> None:
        # A disk batch is still stored; a memory batch goes to disk, unless it was dropped.
        if batch.segment is None and not batch.dropped:
            self._store(batch.first_seq, batch.records)

    async def _idle(self) -> None:
        self._wake.clear()
        timeout = None
        if self._memory:
            timeout = max(0.0, self._batch_wait - (time.monotonic() - self._memory_since))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _deliver(self, session: aiohttp.ClientSession, records: list[bytes], with_report: bool) -> bool:
        """True once Logsite has every record or has refused some for good; False to retry."""
        report_count = self.dropped_unreported if with_report else 0
        body = records
        if report_count:
            body = [self._drop_report(report_count), *records]
        status = await self._post(session, body)
        if status == 200:
            self.dropped_unreported -= report_count
            return True
        if status not in _REJECTED:
            return False
        if len(records) == 1:
            log.error("%s: Logsite refused a record (HTTP %d); dropping it", self._name, status)
            self.rejected += 1
            return True
        # Halve until the refused records are found, so one bad line does not sink its batch.
        half = len(records) // 2
        return await self._deliver(session, records[:half], with_report) and await self._deliver(
            session, records[half:], with_report
        )

    async def _post(self, session: aiohttp.ClientSession, records: list[bytes]) -> int | None:
        payload = b"\n".join(records) + b"\n"
        body = await asyncio.to_thread(gzip.compress, payload, 1)
        try:
            async with session.post(self._push_url, data=body, headers=self._headers) as resp:
                text = await resp.text(errors="replace")
                if resp.status != 200:
                    log.warning("%s: Logsite answered HTTP %d: %s", self._name, resp.status, text[:200])
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("%s: push failed: %s", self._name, exc)
            return None
