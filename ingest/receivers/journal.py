"""systemd Journal Export Format (`systemd-journal-upload`, Docker's `journald` driver fields).

Wire facts: docs/PROTOCOLS.md §3.5 and §4. `ExportParser` is incremental: the upload body is
a chunked stream that may stay open, so entries are handed out as soon as their closing
empty line arrives, whatever the chunk boundaries.

Size limits never fail an upload: the uploader re-sends a failed batch in full and forever,
so one huge field (a core dump) would wedge it. An over-long field keeps its first
`max_field_bytes` and the rest is skipped as it streams past; fields beyond `max_fields`, or
beyond `max_entry_bytes` per entry, are dropped. Both are counted and named in
attrs["truncated_fields"]. Only a broken structure (bad field name, missing newline after
binary data) is a DecodeError, after which the stream cannot be trusted.
"""

import asyncio
import re
import time
from dataclasses import dataclass, field

from aiohttp import web

from ingest import driver_options
from ingest.partials import PARTIAL, PartialAssembler
from ingest.pipeline import NotDurable, Overloaded
from ingest.record import DEDUP_ATTR, STDERR, STDOUT, Record

from .errors import DecodeError
from .http_push import bearer_token
from .listen import check_options
from .text import clean_str
from .times import rfc3339_to_ns
from .web import HttpReceiver, token_from_basic

# Attribute holding the key that makes a re-sent entry recognisable (boot id + cursor); the
# writer stores each key once (ingest/store/dedup.py).
DEDUP_KEY = DEDUP_ATTR
DEFAULT_MAX_FIELD_BYTES = 1024 * 1024
DEFAULT_MAX_ENTRY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_FIELDS = 1024  # systemd's own ENTRY_FIELD_COUNT_MAX
# journald's rule for field names (journal_field_valid): upper case, digits, '_', ≤ 64.
_FIELD_NAME = re.compile(rb"[A-Z_][A-Z0-9_]{0,63}\Z")
# A text line with no newline after this many bytes is streamed into its field instead of
# being buffered whole.
_STREAM_LINE_AFTER = 64 * 1024

_LINE, _BIN_LEN, _BIN_DATA, _BIN_END, _LONG_TEXT = range(5)


@dataclass(slots=True)
class Entry:
    fields: dict[str, list[bytes]] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)

    def first(self, name: str) -> bytes | None:
        values = self.fields.get(name)
        return values[0] if values else None


class ExportParser:
    def __init__(
        self,
        *,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
        max_fields: int = DEFAULT_MAX_FIELDS,
    ):
        self.max_field_bytes = max_field_bytes
        self.max_entry_bytes = max_entry_bytes
        self.max_fields = max_fields
        self._buf = bytearray()
        self._scanned = 0
        self._state = _LINE
        self._remaining = 0
        self._failed = False
        self._entry = Entry()
        self._entry_bytes = 0
        self._entry_fields = 0
        self._name = ""
        self._value = bytearray()
        self._value_cut = False
        self.entries = 0
        self.truncated_fields = 0

    @property
    def in_entry(self) -> bool:
        """True while an entry has begun and not ended (at EOF that is a truncated upload)."""
        return bool(self._buf) or self._state != _LINE or self._entry_fields > 0

    def feed(self, data: bytes, into: list[Entry] | None = None) -> list[Entry]:
        """Entries completed by `data`, appended to `into` if given, which keeps the entries
        that were whole before a DecodeError later in the same data."""
        if self._failed:
            raise DecodeError("journal: stream already failed")
        self._buf += data
        out: list[Entry] = [] if into is None else into
        pos = 0
        try:
            pos = self._run(out)
        except DecodeError:
            self._failed = True
            raise
        finally:
            del self._buf[:pos]
            self._scanned = max(0, self._scanned - pos)
        return out

    def finish(self) -> None:
        if self.in_entry:
            pending = len(self._buf) + len(self._value)
            raise DecodeError(f"journal: premature end of data, {pending} bytes of an unfinished entry")

    def _run(self, out: list[Entry]) -> int:
        buf = self._buf
        pos = 0
        while pos < len(buf):
            state = self._state
            if state == _LINE:
                end = buf.find(b"\n", max(pos, self._scanned))
                if end < 0:
                    if len(buf) - pos > _STREAM_LINE_AFTER:
                        pos = self._start_long_text(pos)
                        continue
                    self._scanned = len(buf)
                    break
                line = bytes(buf[pos:end])
                pos = end + 1
                self._line(line, out)
            elif state == _BIN_LEN:
                if len(buf) - pos < 8:
                    break
                self._remaining = int.from_bytes(buf[pos : pos + 8], "little")
                pos += 8
                self._state = _BIN_DATA if self._remaining else _BIN_END
            elif state == _BIN_DATA:
                take = min(self._remaining, len(buf) - pos)
                self._add_value(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _BIN_END
            elif state == _BIN_END:
                if buf[pos] != 0x0A:
                    raise DecodeError(f"journal: binary field {self._name} not followed by a newline")
                pos += 1
                self._end_field()
            else:  # _LONG_TEXT
                end = buf.find(b"\n", pos)
                if end < 0:
                    self._add_value(buf[pos:])
                    pos = len(buf)
                    break
                self._add_value(buf[pos:end])
                pos = end + 1
                self._end_field()
        return pos

    def _line(self, line: bytes, out: list[Entry]) -> None:
        if not line:
            if self._entry_fields:
                out.append(self._entry)
                self.entries += 1
            self._entry = Entry()
            self._entry_bytes = self._entry_fields = 0
            return
        name, eq, value = line.partition(b"=")
        self._begin_field(name)
        if eq:
            self._add_value(value)
            self._end_field()
        else:
            self._state = _BIN_LEN

    def _start_long_text(self, pos: int) -> int:
        eq = self._buf.find(b"=", pos, pos + 66)
        if eq < 0:
            raise DecodeError("journal: line too long for a field name")
        self._begin_field(bytes(self._buf[pos:eq]))
        self._add_value(self._buf[eq + 1 :])
        self._state = _LONG_TEXT
        return len(self._buf)

    def _begin_field(self, name: bytes) -> None:
        if _FIELD_NAME.match(name) is None:
            raise DecodeError(f"journal: invalid field name {clean_str(name[:70])!r}")
        self._name = name.decode("ascii")
        self._value.clear()
        self._value_cut = False

    def _add_value(self, piece) -> None:
        room = min(self.max_field_bytes, self.max_entry_bytes - self._entry_bytes) - len(self._value)
        if len(piece) > room:
            self._value_cut = True
            piece = piece[: max(room, 0)]
        self._value += piece

    def _end_field(self) -> None:
        self._state = _LINE
        entry = self._entry
        if self._entry_fields >= self.max_fields or (self._value_cut and not self._value):
            entry.truncated.append(self._name)
            self.truncated_fields += 1
        else:
            if self._value_cut:
                entry.truncated.append(self._name)
                self.truncated_fields += 1
            entry.fields.setdefault(self._name, []).append(bytes(self._value))
            self._entry_bytes += len(self._value)
        self._entry_fields += 1
        self._value.clear()


# --- Entry → Record -----------------------------------------------------------------------

_CONTAINER_CONSUMED = {
    "CONTAINER_ID",
    "CONTAINER_ID_FULL",
    "CONTAINER_NAME",
    "IMAGE_NAME",
    "CONTAINER_TAG",
    "SYSLOG_IDENTIFIER",
    "SYSLOG_TIMESTAMP",
    "CONTAINER_LOG_EPOCH",
    "CONTAINER_LOG_ORDINAL",
    "CONTAINER_PARTIAL_ID",
    "CONTAINER_PARTIAL_ORDINAL",
    "CONTAINER_PARTIAL_LAST",
    "CONTAINER_PARTIAL_MESSAGE",
}
_CONSUMED = {
    "MESSAGE",
    "PRIORITY",
    "_HOSTNAME",
    "_BOOT_ID",
    "_SOURCE_REALTIME_TIMESTAMP",
    "_SOURCE_MONOTONIC_TIMESTAMP",
}


def _text(value: bytes | None) -> str:
    return "" if value is None else clean_str(value)


def _us_to_ns(value: bytes | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    return int(value) * 1000


def entry_to_record(entry: Entry, *, received_ns: int | None = None) -> Record:
    get = entry.first
    record = Record(line=get("MESSAGE") or b"", received_ns=received_ns or time.time_ns())
    priority = get("PRIORITY")
    if priority is not None and len(priority) == 1 and 0x30 <= priority[0] <= 0x37:
        record.level = priority[0] - 0x30
        record.stream = STDERR if record.level <= 3 else STDOUT
    record.host = _text(get("_HOSTNAME"))
    record.container_id = _text(get("CONTAINER_ID_FULL") or get("CONTAINER_ID"))
    is_container = bool(record.container_id)
    record.container_name = _text(get("CONTAINER_NAME")).lstrip("/")
    record.image = _text(get("IMAGE_NAME"))

    record.ts_ns = _line_time(entry)
    attrs: dict = {}
    cursor, boot_id = get("__CURSOR"), get("_BOOT_ID")
    if cursor:
        attrs[DEDUP_KEY] = f"journal:{_text(boot_id)}:{_text(cursor)}"
    if is_container:
        tag = _text(get("CONTAINER_TAG"))
        if tag and tag != record.container_id[:12]:
            attrs["tag"] = tag
        mark = _partial_mark(entry)
        if mark is not None:
            attrs[PARTIAL] = mark
    for name, values in entry.fields.items():
        if name.startswith("__") or name in _CONSUMED:
            continue
        # A container entry's trusted fields (_PID, _COMM, _SYSTEMD_UNIT …) describe dockerd,
        # not the container, and would repeat on every row.
        if is_container and (name.startswith("_") or name in _CONTAINER_CONSUMED):
            continue
        texts = [clean_str(v) for v in values]
        attrs[name] = texts[0] if len(texts) == 1 else texts
    if entry.truncated:
        attrs["truncated_fields"] = entry.truncated
    record.attrs = attrs or None
    return record


def _line_time(entry: Entry) -> int | None:
    syslog_ts = entry.first("SYSLOG_TIMESTAMP")
    if syslog_ts and syslog_ts[:1].isdigit():
        # Docker's journald driver writes the line's time here, RFC 3339 with ns; classic syslog
        # messages carry a BSD stamp, which has no year and is ignored.
        try:
            return rfc3339_to_ns(syslog_ts.decode("ascii", "replace").strip())
        except DecodeError:
            pass
    source_time = _us_to_ns(entry.first("_SOURCE_REALTIME_TIMESTAMP"))
    return source_time or _us_to_ns(entry.first("__REALTIME_TIMESTAMP"))


def _partial_mark(entry: Entry) -> dict | None:
    partial_id = entry.first("CONTAINER_PARTIAL_ID")
    if partial_id:
        ordinal = entry.first("CONTAINER_PARTIAL_ORDINAL") or b""
        return {
            "id": _text(partial_id),
            "ordinal": int(ordinal) if ordinal.isdigit() and len(ordinal) < 10 else None,
            "last": entry.first("CONTAINER_PARTIAL_LAST") == b"true",
        }
    if entry.first("CONTAINER_PARTIAL_MESSAGE") == b"true":
        # Docker before 20.10: no id, and the final piece carries no marker at all.
        return {"id": "", "ordinal": None, "last": False}
    return None


# --- transport ----------------------------------------------------------------------------

CONTENT_TYPE = "application/vnd.fdo.journal"
# Records are committed in batches of this many, or sooner once the uploader pauses, so a
# request that stays open still gets its entries stored as they arrive.
STORE_BATCH = 2000
PAUSE_S = 0.2


class JournalReceiver(HttpReceiver):
    """`POST /upload` from systemd-journal-upload; 200 only after every entry is stored.

    The token travels as the password of the upload URL (`http://logsite:TOKEN@host:port`,
    which curl sends as Basic auth) or as a Bearer header; option auth="none" turns the check
    off for uploaders that can send neither.
    """

    kind = "journal"
    # One option table for the admin form and the receiver (ingest/driver_options.py).
    OPTIONS = frozenset(driver_options.specs("journal"))

    def __init__(self, driver, pipeline, max_body_bytes: int, max_line_bytes: int = 256 * 1024):
        super().__init__(driver, pipeline, max_body_bytes)
        options = driver.options
        check_options(options, self.OPTIONS)
        if options.get("auth", "token") not in ("token", "none"):
            raise ValueError("option auth must be 'token' or 'none'")
        self.require_token = options.get("auth", "token") == "token"
        self.max_field_bytes = int(options.get("max_field_bytes", DEFAULT_MAX_FIELD_BYTES))
        self.max_entry_bytes = int(options.get("max_entry_bytes", DEFAULT_MAX_ENTRY_BYTES))
        self.partial_timeout_s = float(options.get("partial_timeout_s", 5.0))
        self.max_line_bytes = max_line_bytes

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/upload", self.handle_upload)
        return app

    def _authorized(self, request: web.Request) -> bool:
        if not self.require_token:
            return True
        header = request.headers.get("Authorization", "")
        token = token_from_basic(header) or bearer_token(request)
        return bool(token) and self.token_ok(token)

    async def handle_upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(
                status=401, text="Wrong or missing token.\n", headers={"WWW-Authenticate": "Basic"}
            )
        if request.content_type != CONTENT_TYPE:
            return web.Response(status=415, text=f"Content-Type must be {CONTENT_TYPE}.\n")
        if request.headers.get("Content-Encoding", "identity").strip().lower() not in ("identity", ""):
            # We never offer compression (no Accept-Encoding in our answers).
            return web.Response(status=415, text="Content-Encoding is not supported.\n")
        parser = ExportParser(
            max_field_bytes=self.max_field_bytes,
            max_entry_bytes=self.max_entry_bytes,
            max_fields=DEFAULT_MAX_FIELDS,
        )
        # Per request: whatever is still open when the body ends is stored before the answer,
        # because the 2xx tells the uploader to forget it.
        partials = PartialAssembler(timeout_s=self.partial_timeout_s, max_line_bytes=self.max_line_bytes)
        batch: list[Record] = []
        error: web.Response | None = None
        content = request.content
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(content.readany(), timeout=PAUSE_S if batch else None)
                except TimeoutError:
                    await self._store(batch)
                    batch = []
                    continue
                if not chunk:
                    parser.finish()
                    break
                self.stats.bytes += len(chunk)
                entries: list[Entry] = []
                try:
                    parser.feed(chunk, into=entries)
                finally:
                    now, received = time.monotonic(), time.time_ns()
                    for entry in entries:
                        record = self.own(entry_to_record(entry, received_ns=received))
                        batch.extend(partials.feed(record, now))
                if len(batch) >= STORE_BATCH:
                    await self._store(batch)
                    batch = []
        except DecodeError as exc:
            self.malformed(str(exc))
            status = 417 if "premature end" in str(exc) else 400
            error = web.Response(status=status, text=f"{exc}\n")
        except _NotStored as exc:
            return web.Response(status=503, text=f"Not stored, retry later: {exc}\n")
        batch.extend(partials.flush())
        try:
            await self._store(batch)
        except _NotStored as exc:
            return web.Response(status=503, text=f"Not stored, retry later: {exc}\n")
        if error is not None:
            return error
        return web.Response(status=200, text="OK.\n")

    async def _store(self, records: list[Record]) -> None:
        # Re-sent entries are submitted too: the writer drops them by key, in the transaction
        # that would store them, which no lookup made here beforehand could do race-free.
        if not records:
            return
        try:
            await self.pipeline.submit(records)
        except (Overloaded, NotDurable) as exc:
            raise _NotStored(str(exc)) from exc
        self.stats.received += len(records)


class _NotStored(Exception):
    pass
