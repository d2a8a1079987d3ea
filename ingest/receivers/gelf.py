"""GELF (Docker's `gelf` log driver): UDP chunk reassembly, TCP NUL framing, JSON → Record.

Wire facts: docs/PROTOCOLS.md §3.1. This part is pure (no sockets); the transport feeds
datagrams to `ChunkReassembler`, TCP bytes to `tcp_framer()`, and payloads to `decode_payload`.
"""

import json
import time
from collections import OrderedDict
from dataclasses import dataclass

from ingest import driver_options
from ingest.record import STDERR, STDOUT, Record

from .errors import DecodeError
from .framing import DelimitedFramer
from .inflate import decompress_detected
from .listen import READ_SIZE, SocketReceiver, check_options
from .text import clean_str, clean_value, line_value
from .times import decimal_seconds_to_ns, float_seconds_to_ns

MAGIC = b"\x1e\x0f"
HEADER_LEN = 12
MAX_CHUNKS = 128
# Docker never sends more than 128 * 1408 bytes; other senders use up to 8 KiB per chunk.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024

# GELF keys (after the leading "_") that Docker fills from the container.
_CONTAINER_FIELDS = {
    "container_id": "container_id",
    "container_name": "container_name",
    "image_name": "image",
}
_STANDARD = {"version", "host", "short_message", "timestamp", "level"}


@dataclass(slots=True)
class _PendingSet:
    count: int
    chunks: dict[int, bytes]
    size: int
    started: float


class ChunkReassembler:
    """Collects chunked datagrams into whole payloads.

    Sets that stay incomplete for `timeout_s` are dropped and counted in `expired` (the GELF
    spec's 5 s); when pending chunks hold more than `max_pending_bytes`, the oldest sets are
    dropped and counted in `evicted`, so a flood of first chunks cannot exhaust memory.
    """

    def __init__(self, *, timeout_s: float = 5.0, max_pending_bytes: int = 32 * 1024 * 1024):
        self.timeout_s = timeout_s
        self.max_pending_bytes = max_pending_bytes
        self._sets: OrderedDict[bytes, _PendingSet] = OrderedDict()
        self._pending_bytes = 0
        self.expired = 0
        self.evicted = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._sets)

    def feed(self, datagram: bytes, now: float) -> bytes | None:
        """The whole payload once complete; None while chunks are missing."""
        if not datagram.startswith(MAGIC):
            return datagram
        if len(datagram) < HEADER_LEN:
            raise DecodeError("gelf: chunk shorter than its 12-byte header")
        message_id, seq, count = datagram[2:10], datagram[10], datagram[11]
        if not 1 <= count <= MAX_CHUNKS:
            raise DecodeError(f"gelf: chunk count {count} outside 1..{MAX_CHUNKS}")
        if seq >= count:
            raise DecodeError(f"gelf: chunk number {seq} not below chunk count {count}")
        payload = datagram[HEADER_LEN:]
        if count == 1:
            return payload
        self.expire(now)
        pending = self._sets.get(message_id)
        if pending is None:
            pending = _PendingSet(count=count, chunks={}, size=0, started=now)
            self._sets[message_id] = pending
        elif pending.count != count:
            self._drop(message_id)
            raise DecodeError("gelf: chunk count changed within one message")
        if seq in pending.chunks:
            self.duplicates += 1
            return None
        pending.chunks[seq] = payload
        pending.size += len(payload)
        self._pending_bytes += len(payload)
        if len(pending.chunks) == count:
            self._drop(message_id)
            return b"".join(pending.chunks[i] for i in range(count))
        while self._pending_bytes > self.max_pending_bytes and self._sets:
            oldest = next(iter(self._sets))
            self._drop(oldest)
            self.evicted += 1
        return None

    def _drop(self, message_id: bytes) -> None:
        dropped = self._sets.pop(message_id)
        self._pending_bytes -= dropped.size

    def expire(self, now: float) -> int:
        """Drop sets older than the timeout; returns how many were dropped now."""
        dropped = 0
        while self._sets:
            message_id, pending = next(iter(self._sets.items()))
            if pending.started + self.timeout_s > now:
                break
            self._drop(message_id)
            dropped += 1
        self.expired += dropped
        return dropped


def tcp_framer(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> DelimitedFramer:
    """GELF over TCP: uncompressed JSON, each message ended by one NUL byte."""
    return DelimitedFramer(b"\x00", max_message_bytes)


def decode_payload(
    payload: bytes, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, received_ns: int | None = None
) -> Record:
    """One reassembled GELF payload (gzip, zlib or plain JSON) → Record."""
    data = decompress_detected(payload, max_message_bytes)
    # surrogateescape keeps invalid UTF-8 from non-Go senders as bytes in the line instead of
    # rejecting the message; json.loads sees ordinary (if odd) str.
    try:
        message = json.loads(data.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as exc:
        raise DecodeError("gelf: payload is not JSON") from exc
    return message_to_record(message, received_ns=received_ns)


def message_to_record(message, *, received_ns: int | None = None) -> Record:
    if not isinstance(message, dict):
        raise DecodeError("gelf: message is not a JSON object")
    short = message.get("short_message")
    if not isinstance(short, str):
        raise DecodeError("gelf: short_message missing or not a string")
    record = Record(line=line_value(short), received_ns=received_ns or time.time_ns())

    host = message.get("host")
    if host is not None:
        if not isinstance(host, str):
            raise DecodeError("gelf: host is not a string")
        record.host = clean_str(host)

    stamp = message.get("timestamp")
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, int | float | str):
            raise DecodeError("gelf: timestamp is not a number")
        record.ts_ns = decimal_seconds_to_ns(stamp) if isinstance(stamp, str) else float_seconds_to_ns(stamp)

    level = message.get("level")
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 7:
            raise DecodeError("gelf: level is not a syslog severity 0..7")
        record.level = level
        # Docker sends 6 for stdout and 3 for stderr; other senders' errors go with stderr.
        record.stream = STDERR if level <= 3 else STDOUT

    attrs = {}
    for key, value in message.items():
        if key in _STANDARD:
            continue
        name = key[1:] if key.startswith("_") else key
        if name in _CONTAINER_FIELDS and isinstance(value, str):
            setattr(record, _CONTAINER_FIELDS[name], clean_str(value))
        else:
            # _image_id, _tag, _command, _created and the --log-opt labels/env selections.
            attrs[clean_str(name)] = clean_value(value)
    record.container_name = record.container_name.lstrip("/")
    record.attrs = attrs or None
    return record


# --- transport ----------------------------------------------------------------------------


class GelfReceiver(SocketReceiver):
    """UDP (chunked, compressed) and TCP (NUL-framed). GELF has no acks: records are offered."""

    kind = "gelf"
    # One option table for the admin form and the receiver (ingest/driver_options.py).
    OPTIONS = frozenset(driver_options.specs("gelf"))

    def __init__(self, driver, pipeline):
        super().__init__(driver, pipeline)
        options = driver.options
        check_options(options, self.OPTIONS)
        self.max_message_bytes = int(options.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
        self.chunks = ChunkReassembler(
            timeout_s=float(options.get("chunk_timeout_s", 5.0)),
            max_pending_bytes=int(options.get("max_pending_bytes", 32 * 1024 * 1024)),
        )
        self._lost_sets = 0

    def _decode(self, payload: bytes) -> Record | None:
        try:
            return self.own(decode_payload(payload, max_message_bytes=self.max_message_bytes))
        except DecodeError as exc:
            self.malformed(str(exc))
            return None

    def datagram(self, data: bytes, peer: str) -> None:
        try:
            payload = self.chunks.feed(data, time.monotonic())
        except DecodeError as exc:
            self.malformed(str(exc))
            return
        self._count_lost_sets()
        if payload is not None:
            record = self._decode(payload)
            if record is not None:
                self.offer([record], len(payload))

    def tick(self, now: float) -> None:
        self.chunks.expire(now)
        self._count_lost_sets()

    def _count_lost_sets(self) -> None:
        lost = self.chunks.expired + self.chunks.evicted
        if lost != self._lost_sets:
            self.stats.dropped += lost - self._lost_sets
            self._lost_sets = lost

    async def stream(self, reader, writer, peer: str) -> None:
        framer = tcp_framer(self.max_message_bytes)
        oversize = 0
        while True:
            data = await reader.read(READ_SIZE)
            frames = framer.feed(data) if data else [f for f in [framer.finish()] if f]
            records = [r for r in map(self._decode, frames) if r is not None]
            await self.offer_waiting(records, sum(map(len, frames)))
            for _ in range(framer.oversize - oversize):
                self.malformed(f"gelf: message over {self.max_message_bytes} bytes skipped")
            oversize = framer.oversize
            if not data:
                return
