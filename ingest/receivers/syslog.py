"""Syslog (Docker's `syslog` log driver, `logger`, rsyslog forwarding): framing and parsing.

Wire facts: docs/PROTOCOLS.md §3.3. Accepted layouts, told apart per message:
- RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`), including Docker's
  `rfc5424micro` 6-digit fractions; structured data goes to attrs["sd"].
- RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`) and Docker's default format, which
  has no HOST (`<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`): when the first word after the time is
  already shaped like `TAG[PID]:` or `TAG:`, there is no host.
BSD timestamps have neither year nor zone and Docker stamps them at send time, so those
lines keep the receive time.

Severity becomes the level; severity ≤ 3 (err and worse) means stderr, the rest stdout,
which is exactly Docker's 3/6 for stderr/stdout. The tag (RFC 5424 APP-NAME, RFC 3164 TAG)
gives container identity only through the driver's tag template (see dockertag.py).
"""

import dataclasses
import re
import time

from ingest import driver_options
from ingest.native.load import native
from ingest.record import STDERR, STDOUT, Record

from .dockertag import DEFAULT_TEMPLATE as DEFAULT_TAG_TEMPLATE
from .dockertag import TagTemplate
from .errors import DecodeError
from .listen import READ_SIZE, SocketReceiver, check_options
from .text import ascii_or_clean, clean_str
from .times import rfc3339_bytes_to_ns, whole_second_ns

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
_DEFAULT_TAGS = TagTemplate()

_PRI = re.compile(rb"<(\d{1,3})>")
_BSD_TIME = re.compile(
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]\d \d\d:\d\d:\d\d(?: |\Z)"
)
_ISO_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\S+(?: |\Z)")
# `TAG[PID]:` or `TAG:` as one word. The tag may hold ':' and '/' (image names in templates).
_TAG_WORD = re.compile(rb"([^\s\[]+?)(?:\[([^\]\s]*)\])?:(?: |\Z)")
_SD_NAME = re.compile(rb'[^ ="\]]{1,32}')
# Possessive, so an unterminated value fails in linear time.
_SD_VALUE = re.compile(rb'((?:[^"\\]++|\\.)*+)"', re.DOTALL)
_SD_UNESCAPE = re.compile(rb'\\(["\\\]])')
_BOM = b"\xef\xbb\xbf"
# Docker's rfc5424 and rfc5424micro formats: no structured data, every header field present.
_DOCKER_5424 = re.compile(rb"<(\d{1,3})>1 (\S+) (\S+) (\S+) \S+ \S+ -(?: (.*))?\Z", re.DOTALL)


def parse_message(
    data: bytes, *, tags: TagTemplate = _DEFAULT_TAGS, received_ns: int | None = None
) -> Record:
    """One syslog message (without framing) → Record."""
    if data.endswith(b"\n"):
        data = data[:-1]
    return _docker_5424(data, tags, received_ns) or _parse(data, tags, received_ns)


def _docker_5424(data: bytes, tags: TagTemplate, received_ns: int | None) -> Record | None:
    """The hot case (a Docker host sending RFC 5424 with its tag) with one regex match and
    nothing else; None for anything that needs the general parser, which gives the same
    Record (tests/ingest/test_receiver_syslog.py checks both agree)."""
    m = _DOCKER_5424.match(data)
    if m is None:
        return None
    pri, stamp, host, app, message = m.groups()
    fields = tags.record_fields(app) if app != b"-" else None
    pri = int(pri)
    if fields is None or pri > 191:
        return None
    try:
        ts_ns = None if stamp == b"-" else rfc3339_bytes_to_ns(stamp)
    except DecodeError:
        return None
    severity = pri & 7
    message = message or b""
    return Record(
        line=message[3:] if message.startswith(_BOM) else message,
        ts_ns=ts_ns,
        received_ns=received_ns or time.time_ns(),
        host=_host_text(host),
        stream=STDERR if severity <= 3 else STDOUT,
        level=severity,
        **fields,
    )


_HOSTS: dict[bytes, str] = {b"-": ""}


def _host_text(host: bytes) -> str:
    # A sender has one host name, repeated on every message: decode it once.
    try:
        return _HOSTS[host]
    except KeyError:
        pass
    if len(_HOSTS) >= 1024:
        _HOSTS.clear()
        _HOSTS[b"-"] = ""
    text = _HOSTS[host] = "" if host == b"-" else ascii_or_clean(host)
    return text


def _parse(data: bytes, tags: TagTemplate, received_ns: int | None) -> Record:
    m = _PRI.match(data)
    if m is None:
        raise DecodeError("syslog: message does not start with <PRI>")
    pri = int(m.group(1))
    if pri > 191:
        raise DecodeError(f"syslog: PRI {pri} above 191")
    facility, severity = divmod(pri, 8)
    record = Record(
        line=b"",
        received_ns=received_ns or time.time_ns(),
        level=severity,
        stream=STDERR if severity <= 3 else STDOUT,
    )
    rest = data[m.end() :]
    header = _parse_5424(rest[2:], record) if rest.startswith(b"1 ") else _parse_3164(rest, record)
    header = {k: v for k, v in header.items() if v is not None}
    app = header.pop("app", None)
    from_tag = tags.parse(app) if app else None
    if from_tag is None:
        if app is not None:
            header["app"] = app
        header["facility"] = facility
    else:
        # The tag was Docker's: procid is dockerd's pid and msgid repeats the tag, noise per row.
        header.pop("procid", None)
        header.pop("msgid", None)
        for key in ("container_id", "container_name", "image"):
            if key in from_tag:
                setattr(record, key, from_tag[key])
    record.attrs = header or None
    return record


def _parse_5424(rest: bytes, record: Record) -> dict:
    parts = rest.split(b" ", 5)
    if len(parts) < 6:
        raise DecodeError("syslog: RFC 5424 header incomplete")
    stamp, host, app, procid, msgid, tail = parts
    header: dict = {"app": _nil(app), "procid": _nil(procid), "msgid": _nil(msgid)}
    if stamp != b"-":
        _set_time(record, stamp, header)
    record.host = _nil(host) or ""
    if tail.startswith(b"-"):
        message = tail[1:]
    elif tail.startswith(b"["):
        header["sd"], end = _parse_sd(tail)
        message = tail[end:]
    else:
        raise DecodeError("syslog: RFC 5424 structured data is neither '-' nor '[…]'")
    if message and not message.startswith(b" "):
        raise DecodeError("syslog: RFC 5424 structured data not followed by a space")
    message = message[1:]
    record.line = message[3:] if message.startswith(_BOM) else message
    return header


def _parse_3164(rest: bytes, record: Record) -> dict:
    header: dict = {}
    m = _BSD_TIME.match(rest) or _ISO_TIME.match(rest)
    if m is None:
        # No timestamp: RFC 3164 says the whole remainder is content.
        record.line = rest
        return header
    if m.re is _ISO_TIME:
        _set_time(record, m.group().rstrip(b" "), header)
    rest = rest[m.end() :]
    tag = _tag_word(rest)
    if tag is None:
        host, _, after = rest.partition(b" ")
        record.host = ascii_or_clean(host)
        rest = after
        tag = _tag_word(rest)
    if tag is not None:
        header["app"], header["procid"], end = tag
        rest = rest[end:]
    record.line = rest
    return header


def _tag_word(rest: bytes):
    m = _TAG_WORD.match(rest)
    if m is None:
        return None
    procid = ascii_or_clean(m.group(2)) if m.group(2) is not None else None
    return ascii_or_clean(m.group(1)), procid, m.end()


def _set_time(record: Record, stamp: bytes, header: dict) -> None:
    try:
        record.ts_ns = rfc3339_bytes_to_ns(stamp)
    except DecodeError:
        # A bad clock is no reason to lose the line: keep receive time and the text.
        header["timestamp"] = clean_str(stamp.decode("ascii", "replace"))


def _nil(field: bytes) -> str | None:
    return None if field == b"-" else ascii_or_clean(field)


def _parse_sd(buf: bytes) -> tuple[dict, int]:
    sd: dict = {}
    pos = 0
    while pos < len(buf) and buf[pos] == 0x5B:  # '['
        m = _SD_NAME.match(buf, pos + 1)
        if m is None:
            raise DecodeError("syslog: structured data element without an SD-ID")
        params: dict = {}
        sd[clean_str(m.group())] = params
        pos = m.end()
        while True:
            if buf[pos : pos + 1] == b"]":
                pos += 1
                break
            if buf[pos : pos + 1] != b" ":
                raise DecodeError("syslog: malformed structured data")
            m = _SD_NAME.match(buf, pos + 1)
            if m is None or buf[m.end() : m.end() + 2] != b'="':
                raise DecodeError("syslog: malformed structured data parameter")
            name = clean_str(m.group())
            v = _SD_VALUE.match(buf, m.end() + 2)
            if v is None:
                raise DecodeError("syslog: unterminated structured data value")
            value = clean_str(_SD_UNESCAPE.sub(rb"\1", v.group(1)))
            previous = params.get(name)
            if previous is None:
                params[name] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                params[name] = [previous, value]
            pos = v.end()
    return sd, pos


class StreamFramer:
    """Syslog over TCP: octet counting (`LEN SP MSG`) or newline-terminated, chosen per message.

    A message can only start with '<', so a leading digit means a length prefix (RFC 6587).
    Oversize messages are skipped and counted; a broken length prefix is counted and the
    bytes up to the next newline are skipped, which is where the stream can pick up again.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._max = max_message_bytes
        self._buf = bytearray()
        self._pos = 0
        self._skip_bytes = 0  # rest of an oversize counted message
        self._skip_line = False  # rest of an oversize or malformed newline message
        self._scanned = 0
        self.oversize = 0
        self.malformed = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        if not (self._skip_bytes or self._skip_line) and self._buf[:1] == b"<":
            frames = self._newline_framed()
            if frames is not None:
                return frames
        frames = []
        buf = self._buf
        pos = 0
        while pos < len(buf):
            if native is not None and not (self._skip_bytes or self._skip_line):
                # The well-formed octet-counted run in C (ingest/native/syslog_framing.c); this
                # loop goes on with whatever it left (it takes nothing this loop would not).
                pos = native.octet_frames(buf, pos, self._max, frames)
                if pos >= len(buf):
                    break
            if self._skip_bytes:
                step = min(self._skip_bytes, len(buf) - pos)
                self._skip_bytes -= step
                pos += step
                continue
            if self._skip_line:
                end = buf.find(b"\n", pos)
                if end < 0:
                    pos = len(buf)
                    break
                self._skip_line = False
                pos = end + 1
                continue
            first = buf[pos]
            if first in b"\r\n\x00":  # stray separators between messages
                pos += 1
                continue
            if 0x30 <= first <= 0x39:
                space = buf.find(b" ", pos, pos + 11)
                if space < 0:
                    if len(buf) - pos < 11:
                        break  # the length may still be arriving
                    self.malformed += 1
                    self._skip_line = True
                    continue
                digits = bytes(buf[pos:space])
                if not digits.isdigit():
                    self.malformed += 1
                    self._skip_line = True
                    continue
                length = int(digits)
                if length > self._max:
                    self.oversize += 1
                    self._skip_bytes = length
                    pos = space + 1
                    continue
                if len(buf) - (space + 1) < length:
                    break
                frames.append(bytes(buf[space + 1 : space + 1 + length]))
                pos = space + 1 + length
                continue
            end = buf.find(b"\n", max(pos, self._scanned))
            if end < 0:
                if len(buf) - pos > self._max:
                    self.oversize += 1
                    self._skip_line = True
                    continue
                self._scanned = len(buf)
                break
            if end - pos > self._max:
                self.oversize += 1
            else:
                frames.append(bytes(buf[pos:end]))
            pos = end + 1
        del buf[:pos]
        self._scanned = max(0, self._scanned - pos)
        return frames

    def _newline_framed(self) -> list[bytes] | None:
        """The usual stream (Docker, rsyslog: newline-framed messages) split in one go; None
        when anything in it needs the message-by-message loop below."""
        buf = self._buf
        end = buf.rfind(b"\n")
        if end < 0:
            return None
        frames = bytes(buf[:end]).split(b"\n")
        if not all(frame[:1] == b"<" for frame in frames) or max(map(len, frames)) > self._max:
            return None
        del buf[: end + 1]
        self._scanned = len(buf)  # what is left holds no newline
        return frames

    def finish(self) -> bytes | None:
        """At end of stream: a last newline-framed message the sender did not terminate."""
        rest = bytes(self._buf).strip(b"\r\n\x00")
        complete = rest and not self._skip_line and not self._skip_bytes and rest[:1] == b"<"
        self._buf.clear()
        self._scanned = 0
        return rest if complete else None


# --- transport ----------------------------------------------------------------------------


def _positional_tail() -> tuple[str, ...] | None:
    """Record's fields after (line, ts_ns, received_ns), in order, for building Records
    positionally (measurably cheaper than keywords in the hot loop); None, and the general
    path, if Record ever stops starting so or gains a field without a plain default."""
    fields = dataclasses.fields(Record)
    if [f.name for f in fields[:3]] != ["line", "ts_ns", "received_ns"]:
        return None
    if any(f.default is dataclasses.MISSING for f in fields[3:]):
        return None
    return tuple(f.name for f in fields[3:])


_TAIL = _positional_tail()
_HEADS_KEPT = 4096


class _Heads(dict):
    """Per peer: b"<PRI> <host> <tag>" of Docker's RFC 5424 (none holds a space) → Record's
    remaining fields, positionally; None when the general parser must handle such messages (a
    tag not of the template). Shared by the Python loop and the C decoder."""

    def of(self, peer: str) -> dict[bytes, tuple | None]:
        heads = self.get(peer)
        if heads is None:
            if len(self) >= _HEADS_KEPT:
                self.clear()
            heads = self[peer] = {}
        return heads

    @staticmethod
    def add(heads: dict, key: bytes, pri, host, app, peer, tags, tenant, driver_id) -> tuple | None:
        fields = tags.record_fields(app) if app != b"-" else None
        number = int(pri)
        tail = None
        if fields is not None and number <= 191 and _TAIL is not None:
            severity = number & 7
            values = {
                **fields,
                "host": _host_text(host) or peer,
                "stream": STDERR if severity <= 3 else STDOUT,
                "level": severity,
                "tenant": tenant,
                "driver_id": driver_id,
            }
            defaults = {f.name: f.default for f in dataclasses.fields(Record)}
            tail = tuple(values[name] if name in values else defaults[name] for name in _TAIL)
        if len(heads) >= _HEADS_KEPT:
            heads.clear()
        heads[key] = tail
        return tail


class SyslogReceiver(SocketReceiver):
    """UDP (one message per datagram) and TCP (newline or octet-counted). No acks: offered."""

    kind = "syslog"
    # One option table for the admin form and the receiver (ingest/driver_options.py).
    OPTIONS = frozenset(driver_options.specs("syslog"))

    def __init__(self, driver, pipeline):
        super().__init__(driver, pipeline)
        check_options(driver.options, self.OPTIONS)
        self.tags = TagTemplate(driver.options.get("tag_template", DEFAULT_TAG_TEMPLATE))
        self.max_message_bytes = int(driver.options.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
        self._heads = _Heads()

    def _decode(self, frames: list[bytes], peer: str, received_ns: int) -> list[Record]:
        if native is not None and type(frames) is list:
            return self._decode_native(frames, peer, received_ns)
        return self._decode_python(frames, peer, received_ns)

    def _decode_native(self, frames: list[bytes], peer: str, received_ns: int) -> list[Record]:
        """Docker's RFC 5424 in C (ingest/native/syslog5424.c), every other frame through
        _decode_python, in order: the same Records."""
        records: list[Record] = []
        owner = (self.tags, self.driver.tenant or "default", self.driver.id)
        heads = self._heads.of(peer)

        def add_head(key, pri, host, app):
            return _Heads.add(heads, key, pri, host, app, peer, *owner)

        def general(frame):
            records.extend(self._decode_python([frame], peer, received_ns))

        stamps = (whole_second_ns, rfc3339_bytes_to_ns, DecodeError)
        native.docker_5424(frames, received_ns, heads, add_head, general, records, *stamps)
        return records

    def _decode_python(self, frames: list[bytes], peer: str, received_ns: int) -> list[Record]:
        records = []
        tags, tenant, driver_id = self.tags, self.driver.tenant or "default", self.driver.id
        match, heads, append = _DOCKER_5424.match, self._heads.of(peer), records.append
        for frame in frames:
            # Docker's RFC 5424 from one container: everything but the time and the message
            # repeats, so the rest of the Record is built once per (PRI, host, tag) and the
            # line costs a regex match and a positional Record (see _Heads).
            m = match(frame[:-1] if frame.endswith(b"\n") else frame)
            if m is not None:
                pri, stamp, host, app, message = m.groups()
                key = b" ".join((pri, host, app))
                try:
                    tail = heads[key]
                except KeyError:
                    tail = _Heads.add(heads, key, pri, host, app, peer, tags, tenant, driver_id)
                if tail is not None:
                    try:
                        ts_ns = None if stamp == b"-" else rfc3339_bytes_to_ns(stamp)
                    except DecodeError:
                        ts_ns = False
                    if ts_ns is not False:
                        if message is None:
                            message = b""
                        elif message.startswith(_BOM):
                            message = message[3:]
                        append(Record(message, ts_ns, received_ns, *tail))
                        continue
            try:
                record = parse_message(frame, tags=tags, received_ns=received_ns)
            except DecodeError as exc:
                self.malformed(str(exc))
                continue
            # Docker's default format has no HOSTNAME; the sender's address is the best we have.
            record.host = record.host or peer
            record.tenant, record.driver_id = tenant, driver_id  # owned_by(), inlined: hot loop
            records.append(record)
        return records

    def datagram(self, data: bytes, peer: str) -> None:
        if len(data) > self.max_message_bytes:
            self.malformed(f"syslog: datagram over {self.max_message_bytes} bytes")
            return
        self.offer(self._decode([data], peer, time.time_ns()), len(data))

    async def stream(self, reader, writer, peer: str) -> None:
        framer = StreamFramer(self.max_message_bytes)
        seen_bad = 0
        while True:
            data = await reader.read(READ_SIZE)
            frames = framer.feed(data) if data else [f for f in [framer.finish()] if f]
            await self.offer_waiting(self._decode(frames, peer, time.time_ns()), sum(map(len, frames)))
            bad = framer.oversize + framer.malformed
            for _ in range(bad - seen_bad):
                self.malformed("syslog: oversize message or broken length prefix skipped")
            seen_bad = bad
            if not data:
                return
