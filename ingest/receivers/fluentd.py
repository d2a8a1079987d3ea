"""Fluentd Forward protocol (Docker's `fluentd` log driver, Fluent Bit, fluentd out_forward).

Wire facts: docs/PROTOCOLS.md §3.2. `ForwardDecoder` is pure: the transport feeds it TCP
bytes, stores the records of each `ForwardMessage` (after `PartialAssembler`, since Docker
marks fragments of long lines), and only then writes `ack_reply(message.chunk)` back when a
chunk was given: that reply is the sender's signal that it may forget the data.
"""

import asyncio
import contextlib
import json
import logging
import math
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass

import msgpack

from ingest import driver_options
from ingest.partials import PARTIAL, PartialAssembler
from ingest.pipeline import NotDurable, Overloaded
from ingest.record import STDERR, STDOUT, Record

from .dockertag import DEFAULT_TEMPLATE as DEFAULT_TAG_TEMPLATE
from .dockertag import TagTemplate
from .errors import DecodeError
from .inflate import gunzip
from .listen import READ_SIZE, SocketReceiver, check_options
from .text import clean_key, clean_str, clean_value, line_value
from .times import float_seconds_to_ns

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# in_forward allows 256 MiB of decompressed data; one ingest process should not.
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
# Chunks already stored whose re-sends are answered without storing again (about 100 bytes each).
ACKED_CHUNKS_KEPT = 100_000
# Messages of one connection read ahead of storing (each at most max_message_bytes).
INBOX_MESSAGES = 4
# msgpack allocates a container's slots from its header before the elements arrive, so the
# header counts must be bounded well below the byte limit.
_MAX_ARRAY_LEN = 256 * 1024
_MAX_MAP_LEN = 64 * 1024
_STREAMS = {STDOUT, STDERR}
_PARTIAL_KEYS = ("partial_message", "partial_id", "partial_ordinal", "partial_last")
_MSGPACK_ERRORS = (ValueError, TypeError, msgpack.StackError, msgpack.FormatError)


@dataclass(slots=True, frozen=True)
class EventTime:
    """Forward protocol's ext type 0: seconds and nanoseconds, big-endian u32 each."""

    ns: int


def _ext_hook(code: int, data: bytes):
    if code == 0 and len(data) == 8:
        seconds, nanos = struct.unpack(">II", data)
        return EventTime(seconds * 1_000_000_000 + nanos)
    return msgpack.ExtType(code, data)


@dataclass(slots=True)
class ForwardMessage:
    tag: str
    records: list[Record]
    # Set when the sender asked for an ack; answer ack_reply(chunk) once the records are durable.
    chunk: str | None


def ack_reply(chunk: str) -> bytes:
    return msgpack.packb({"ack": chunk})


def _unpacker(max_bytes: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        # surrogateescape: invalid UTF-8 in `log` survives as bytes instead of failing the stream.
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        ext_hook=_ext_hook,
        max_buffer_size=max_bytes,
        max_array_len=_MAX_ARRAY_LEN,
        max_map_len=_MAX_MAP_LEN,
    )


class ForwardDecoder:
    """One per TCP connection. `feed` returns the messages completed by the new bytes.

    After a DecodeError the stream cannot be resynchronised (msgpack has no frame marker),
    so the transport closes the connection.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        tags: TagTemplate | None = None,
    ):
        self._max = max_message_bytes
        self._max_decompressed = max_decompressed_bytes
        self._tags = tags or TagTemplate()
        self._unpacker = _unpacker(max_message_bytes)
        self._fed = 0
        # Stream offset where the message being decoded began. msgpack's own tell() moves
        # through a half-decoded array, so it cannot say how large the current message is.
        self._message_start = 0
        self.heartbeats = 0

    @property
    def pending(self) -> int:
        """Bytes of a message not yet complete (non-zero at EOF means a truncated message)."""
        return self._fed - self._message_start

    def feed(self, data: bytes, received_ns: int | None = None) -> list[ForwardMessage]:
        received_ns = received_ns or time.time_ns()
        out: list[ForwardMessage] = []
        view = memoryview(data)
        while view:
            # Feeding only what fits keeps the rule simple and memory bounded: a message over the
            # limit is an error, never a large read that merely arrived at a bad moment.
            room = self._max - self.pending
            if room <= 0:
                raise DecodeError(f"fluentd: message larger than {self._max} bytes")
            piece = view[:room]
            self._unpacker.feed(piece)
            self._fed += len(piece)
            view = view[len(piece) :]
            for obj in self._drain():
                if obj is None:
                    self.heartbeats += 1
                else:
                    out.append(self._message(obj, received_ns))
        return out

    def _drain(self):
        while True:
            try:
                obj = self._unpacker.unpack()
            except msgpack.OutOfData:
                return
            except _MSGPACK_ERRORS as exc:
                raise DecodeError(f"fluentd: invalid msgpack ({exc.__class__.__name__})") from exc
            self._message_start = self._unpacker.tell()
            yield obj

    def _message(self, obj, received_ns: int) -> ForwardMessage:
        if not isinstance(obj, list) or not 2 <= len(obj) <= 4:
            raise DecodeError("fluentd: message is not an array of 2 to 4 elements")
        tag = obj[0]
        if not isinstance(tag, str):
            raise DecodeError("fluentd: tag is not a string")
        tag = clean_str(tag)
        second = obj[1]
        if isinstance(second, list):  # Forward mode: [tag, [[time, record], …], option]
            option = _option(obj, 2)
            entries = second
        elif isinstance(second, bytes | str) and len(obj) <= 3:  # (Compressed)PackedForward
            option = _option(obj, 2)
            entries = self._unpack_entries(second, option)
        else:  # Message mode: [tag, time, record, option]
            if len(obj) < 3:
                raise DecodeError("fluentd: message mode needs tag, time and record")
            option = _option(obj, 3)
            entries = [[second, obj[2]]]
        records = []
        for entry in entries:
            if not isinstance(entry, list) or len(entry) != 2:
                raise DecodeError("fluentd: entry is not a [time, record] pair")
            records.append(self._record(tag, entry[0], entry[1], received_ns))
        chunk = option.get("chunk")
        if chunk is not None and not isinstance(chunk, str):
            raise DecodeError("fluentd: option chunk is not a string")
        return ForwardMessage(tag=tag, records=records, chunk=chunk)

    def _unpack_entries(self, packed: bytes | str, option: dict) -> list:
        if isinstance(packed, str):  # old clients send the packed stream as str
            packed = packed.encode("utf-8", "surrogateescape")
        compressed = option.get("compressed", "text")
        if compressed == "gzip":
            packed = gunzip(packed, self._max_decompressed)
        elif compressed != "text":
            raise DecodeError(f"fluentd: unsupported compression {clean_str(str(compressed))[:20]!r}")
        unpacker = _unpacker(max(len(packed), 1))
        unpacker.feed(packed)
        entries, end = [], 0
        while True:
            try:
                entries.append(unpacker.unpack())
            except msgpack.OutOfData:
                break
            except _MSGPACK_ERRORS as exc:
                raise DecodeError("fluentd: invalid msgpack in packed entries") from exc
            end = unpacker.tell()
        if end != len(packed):
            raise DecodeError("fluentd: packed entries end in the middle of an entry")
        return entries

    def _record(self, tag: str, stamp, body, received_ns: int) -> Record:
        if not isinstance(body, dict):
            raise DecodeError("fluentd: record is not a map")
        fields = {clean_key(k): v for k, v in body.items()}
        record = Record(line=b"", ts_ns=_time_ns(stamp), received_ns=received_ns)
        if "log" in fields:
            record.line = _line(fields.pop("log"))
        elif "message" in fields:
            record.line = _line(fields.pop("message"))
        else:
            # No line field (a structured event from another sender): keep the event itself.
            record.line = json.dumps(clean_value(fields), ensure_ascii=False, separators=(",", ":"))
            fields = {}
        source = fields.pop("source", None)
        if source in _STREAMS:
            record.stream = source
        elif source is not None:
            fields["source"] = source
        for key in ("container_id", "container_name"):
            value = fields.get(key)
            if isinstance(value, str | bytes):
                setattr(record, key, clean_str(fields.pop(key)))
        record.container_name = record.container_name.lstrip("/")
        mark = _partial_mark(fields)
        from_tag = self._tags.parse(tag)
        if from_tag is None:
            fields["tag"] = tag
        else:
            for key, value in from_tag.items():
                if key in ("container_id", "container_name", "image") and not getattr(record, key):
                    setattr(record, key, value)
        attrs = clean_value(fields)
        if mark is not None:
            attrs[PARTIAL] = mark
        record.attrs = attrs or None
        return record


def _option(obj: list, index: int) -> dict:
    option = obj[index] if len(obj) > index else None
    if option is None:
        return {}
    if not isinstance(option, dict):
        raise DecodeError("fluentd: option is not a map")
    return option


def _time_ns(stamp) -> int:
    if isinstance(stamp, EventTime):
        return stamp.ns
    if isinstance(stamp, msgpack.Timestamp):
        return stamp.to_unix_nano()
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | list):
        raise DecodeError("fluentd: time is not an integer, float or EventTime")
    if isinstance(stamp, list):
        # Fluent Bit's v2 events: [[time, metadata], record].
        if len(stamp) != 2 or isinstance(stamp[0], list):
            raise DecodeError("fluentd: time is not an integer, float or EventTime")
        return _time_ns(stamp[0])
    return float_seconds_to_ns(stamp)


def _line(value) -> str | bytes:
    if isinstance(value, str):
        return line_value(value)
    if isinstance(value, bytes):
        return value
    return json.dumps(clean_value(value), ensure_ascii=False, separators=(",", ":"))


def _partial_mark(fields: dict) -> dict | None:
    """Docker's partial keys → the assembler's mark; they are removed from the fields."""
    found = {key: fields.pop(key) for key in _PARTIAL_KEYS if key in fields}
    if found.get("partial_message") != "true":
        return None
    ordinal = found.get("partial_ordinal")
    if not (isinstance(ordinal, str) and ordinal.isascii() and ordinal.isdigit() and len(ordinal) < 10):
        ordinal = None
    return {
        "id": clean_str(found.get("partial_id") or ""),
        "ordinal": None if ordinal is None else int(ordinal),
        "last": found.get("partial_last") == "true",
    }


# --- transport ----------------------------------------------------------------------------


class FluentdReceiver(SocketReceiver):
    """Forward protocol over TCP.

    Without `chunk` the sender learns nothing, so records are offered (never blocking) and
    Docker's 16 KiB fragments are joined by one assembler shared by all connections (Docker
    reconnects mid-line at will). With `chunk` (fluentd-request-ack) the ack is written only
    once the message's records are committed or spooled. Such a sender waits for each ack
    before sending the next fragment, so a fragment cannot wait in memory for its siblings
    without either breaking that promise or stalling the sender: acked fragments are stored
    as they come, each keeping attrs["partial"] = {"id", "ordinal", "last"} so the whole line
    can be put back together by id. A re-sent chunk (same `chunk` id) is acked without being
    stored twice, as long as this process remembers it (the last ACKED_CHUNKS_KEPT chunks).

    Docker 20.10's client (fluent-logger-golang 1.6) shares one connection between a
    container's stdout and stderr copiers and reads each ack with a fresh buffered reader, so
    when two acks arrive together the first reader takes both and drops the second: the other
    copier then waits for an ack that never comes (there is no read timeout) until dockerd
    closes the logger, 10 s after the container exits, and drops the rest of its lines. A
    message of the other stream than the last acked one, or one that arrived before our last
    ack was written, comes from such a second writer; its ack is therefore written at least
    `ack_gap_ms` after the previous one, and the connection is marked shared. A shared
    connection that stays silent for `shared_idle_close_s` is closed, so a copier still
    waiting for an ack its neighbour read (the gap is a heuristic: a starved client may read
    late) gets EOF, re-sends, and is answered at once from `_chunks`. A single writer of one
    stream, which waits for each ack before sending again, never meets either rule.
    """

    kind = "fluentd"
    transports = frozenset({"tcp"})
    # One option table for the admin form and the receiver (ingest/driver_options.py).
    OPTIONS = frozenset(driver_options.specs("fluentd"))

    def __init__(self, driver, pipeline, max_line_bytes: int = 256 * 1024):
        super().__init__(driver, pipeline)
        options = driver.options
        check_options(options, self.OPTIONS)
        self.tags = TagTemplate(options.get("tag_template", DEFAULT_TAG_TEMPLATE))
        self.max_message_bytes = int(options.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
        self.max_decompressed_bytes = int(
            options.get("max_decompressed_bytes", DEFAULT_MAX_DECOMPRESSED_BYTES)
        )
        self.partials = PartialAssembler(
            timeout_s=float(options.get("partial_timeout_s", 5.0)), max_line_bytes=max_line_bytes
        )
        self.ack_gap_s = int(options.get("ack_gap_ms", 50)) / 1000
        self.shared_idle_close_s = float(options.get("shared_idle_close_s", 2.0))
        self.shared_closed = 0  # shared connections closed for silence (see the class doc)
        # chunk -> the submit storing it (while in flight), then True once it is stored.
        self._chunks: OrderedDict[str, asyncio.Future | bool] = OrderedDict()
        self.duplicates = 0

    def tick(self, now: float) -> None:
        self.offer(self.partials.expire(now), 0)

    async def store_once(self, chunk: str, records: list[Record]) -> bool:
        """Stores a chunk's records unless that chunk is already stored or being stored;
        True when this call stored them, False for a re-sent chunk.

        A sender that got no ack, or the wrong one, re-sends the same chunk on a new
        connection. Docker 20.10's client (fluent-logger-golang 1.6) even lets the stdout and
        stderr copiers write on one connection at once and read each other's acks, then closes
        and re-sends both; without this every such re-send would be stored again.
        Raises Overloaded/NotDurable when not stored (no ack then).
        """
        known = self._chunks.get(chunk)
        if known is True:
            self.duplicates += 1
            return False
        fresh = known is None
        if fresh:
            known = asyncio.ensure_future(self.pipeline.submit(records))
            self._chunks[chunk] = known
            known.add_done_callback(lambda done: self._settle(chunk, done))
        else:
            self.duplicates += 1
        await asyncio.shield(known)
        return fresh

    def _settle(self, chunk: str, done: asyncio.Future) -> None:
        if done.cancelled() or done.exception() is not None:
            self._chunks.pop(chunk, None)  # not stored: a re-send must try again
            return
        self._chunks[chunk] = True
        while len(self._chunks) > ACKED_CHUNKS_KEPT:
            oldest, state = next(iter(self._chunks.items()))
            if state is not True:
                break
            del self._chunks[oldest]

    async def stop(self) -> None:
        await super().stop()
        # Fragments still waiting were never acknowledged to anyone, but they did arrive.
        self.offer(self.partials.flush(), 0)

    async def stream(self, reader, writer, peer: str) -> None:
        # Reading runs ahead of storing, so that each message carries the time it arrived (it
        # tells a second writer apart, see the class doc) and so that messages which arrived
        # before the sender hung up are still stored (their re-sends are then acked at once).
        inbox: asyncio.Queue = asyncio.Queue(maxsize=INBOX_MESSAGES)
        reading = asyncio.create_task(self._read(reader, inbox))
        try:
            await self._answer(writer, inbox)
        finally:
            reading.cancel()

    async def _read(self, reader, inbox: asyncio.Queue) -> None:
        decoder = ForwardDecoder(
            max_message_bytes=self.max_message_bytes,
            max_decompressed_bytes=self.max_decompressed_bytes,
            tags=self.tags,
        )
        try:
            while data := await reader.read(READ_SIZE):
                arrived = time.monotonic()
                self.stats.bytes += len(data)
                for message in decoder.feed(data):
                    await inbox.put((arrived, message))
            if decoder.pending:
                self.malformed(f"fluentd: connection closed inside a message ({decoder.pending} bytes)")
        except DecodeError as exc:
            # msgpack cannot be resynchronised: drop the connection, the sender reconnects.
            self.malformed(str(exc))
        except ConnectionError:
            pass
        except Exception:
            # A bug must not leave the answering side waiting for ever.
            log.exception("driver %s: reading a connection failed", self.driver.name)
            self.malformed("internal error reading a connection")
        await inbox.put(None)

    async def _answer(self, writer, inbox: asyncio.Queue) -> None:
        acked_at = -math.inf  # when this connection's last ack was written (monotonic)
        last_writer = None  # the stream (Docker copier) of the last acked message
        shared = False
        while True:
            try:
                item = await asyncio.wait_for(inbox.get(), self.shared_idle_close_s if shared else None)
            except TimeoutError:
                self.shared_closed += 1
                return
            if item is None:
                return
            arrived, message = item
            records = [self.own(r) for r in message.records]
            if message.chunk is None:
                now = time.monotonic()
                self.offer([whole for r in records for whole in self.partials.feed(r, now)], 0)
                continue
            try:
                fresh = await self.store_once(message.chunk, records)
            except (Overloaded, NotDurable) as exc:
                # No ack: the sender re-sends this message on a new connection.
                self.stats.last_error = f"fluentd: not stored, no ack sent: {exc}"[:500]
                return
            if fresh:
                self.stats.received += len(records)
            if writer.is_closing():
                continue  # the sender hung up: store what it sent, it re-sends for the acks
            writer_key = records[0].stream if records else None
            # Another stream's copier, or sent before its writer could have read our last ack:
            # a second writer, which may be reading when the first has not read yet.
            if arrived < acked_at or (last_writer is not None and writer_key != last_writer):
                shared = True
                await asyncio.sleep(acked_at + self.ack_gap_s - time.monotonic())
            last_writer = writer_key
            writer.write(ack_reply(message.chunk))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            acked_at = time.monotonic()
