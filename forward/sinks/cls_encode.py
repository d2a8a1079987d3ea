"""One forwarded row → one serialised CLS `Log` message (time + key/value contents).

Contents, in this order: log, stream, level (name), tenant, service, container_id,
container_name, image, host, label.<name>…, attr.<name>…, and `truncated` when something was cut.

Encoded by hand rather than through protobuf objects: it is the hot loop of forwarding, and the
wire format of `Log` is three field kinds. Container metadata (the six fixed fields and labels)
is identical for every line of a container, so its bytes are built once and reused while rows of
that container keep coming. tests/forward/test_sink_cls.py decodes the output with the real
protobuf runtime (cls_pb2) to prove the bytes are right.

Limits per log: a value over max_value_bytes is cut at a character boundary and its key is
listed in `truncated`; the whole log stays under max_log_bytes (so it always fits a group and a
request): metadata and attrs that do not fit are dropped and `truncated` says "fields".
"""

import json
import operator
import re
from dataclasses import dataclass, field

from ingest.levels import NAME_BY_SEVERITY

# Names the service keeps for itself (as names and as prefixes), and the older rule that a key
# must not start with "_". Logsite's own keys are fixed words; user-controlled keys (labels,
# attrs) always get a "label."/"attr." prefix, so neither rule can be broken.
RESERVED_KEYS = ("__FILENAME__", "__TIMESTAMP__", "__LOGSETID__", "__TOPICID__")
# CLS field names for key-value indexes allow letters, digits and _ - . / @ [infer from the
# console's index rules]; anything else in a label or attr name becomes "_".
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-/@]")
TRUNCATED_KEY = "truncated"
META_FIELDS = ("tenant", "service", "container_id", "container_name", "image", "host")
# Room kept back in every log for the time field (≤ 11 bytes) and the `truncated` marker.
_RESERVED_BYTES = 11 + 80
# The marker's value; with its key and framing it stays within the 80 reserved bytes.
_MARKER_CHARS = 60
_MAX_CACHED_CONTAINERS = 4096
_meta_key = operator.attrgetter(*META_FIELDS)


def _varint_bytes(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [_varint_bytes(i) for i in range(1 << 14)]


def varint(n: int) -> bytes:
    return _SMALL_VARINTS[n] if 0 <= n < 16384 else _varint_bytes(n)


def varint_len(n: int) -> int:
    if 0 <= n < 128:
        return 1
    if n < 0:
        return 10
    return (n.bit_length() + 6) // 7


def framed_len(n: int) -> int:
    """Size of a length-delimited field (tag byte + length + payload) for a payload of n bytes."""
    return 1 + varint_len(n) + n


def framed(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


_key_heads: dict[str, bytes] = {}
# Log.time's tag with the first varint byte (continuation bit set), for each low 7 bits.
_TIME_LOW = [bytes((0x08, i | 0x80)) for i in range(128)]


def _key_head(key: str) -> bytes:
    """`Content.key` field plus the tag of `Content.value`, cached per key."""
    head = _key_heads.get(key)
    if head is None:
        head = framed(b"\x0a", key.encode()) + b"\x12"
        if len(_key_heads) < 10_000:
            _key_heads[key] = head
    return head


_LOG_HEAD = framed(b"\x0a", b"log") + b"\x12"  # Content.key "log" + the tag of Content.value
_LOG_HEAD_LEN = len(_LOG_HEAD)


def safe_key(prefix: str, name, max_chars: int) -> str:
    return prefix + _UNSAFE_KEY_CHARS.sub("_", str(name))[:max_chars]


def as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def truncation_marker(items: list[str], max_chars: int = _MARKER_CHARS) -> str:
    """`fields,log,label.x` — whole names only; `+N` says how many more did not fit."""
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        tail = f",+{rest}" if rest else ""
        if len(",".join([*shown, item])) + len(tail) > max_chars:
            return ",".join([*shown, f"+{len(items) - i}"])
        shown.append(item)
    return ",".join(shown)


@dataclass(frozen=True, slots=True)
class LogLimits:
    max_value_bytes: int = 1_000_000
    max_log_bytes: int = 4_900_000
    max_key_chars: int = 128


@dataclass(slots=True)
class EncodedLog:
    """One log, already framed as a `LogGroup.logs` entry (tag, length, `Log` message), so a
    group is the plain concatenation of its entries."""

    entry: bytes
    values_bytes: int

    @property
    def data(self) -> bytes:
        """The serialised `Log` message alone."""
        return self.entry[_entry_header_len(self.entry) :]


def _entry_header_len(entry: bytes) -> int:
    n = 2
    while entry[n - 1] & 0x80:
        n += 1
    return n


def entry_of(data: bytes, values_bytes: int) -> EncodedLog:
    return EncodedLog(b"\x0a" + varint(len(data)) + data, values_bytes)


class _Contents:
    """Serialised `Log.contents` entries collected under a byte budget."""

    __slots__ = ("dropped", "max_value", "parts", "size", "truncated", "values")

    def __init__(self, max_value: int):
        self.max_value = max_value
        self.parts: list[bytes] = []
        self.size = 0
        self.values = 0
        self.truncated: list[str] = []
        self.dropped = False

    def add(self, key: str, value: str, budget: int) -> None:
        try:
            data = value.encode()
        except UnicodeEncodeError:  # lone surrogates, e.g. from surrogateescape decoding
            data = value.encode("utf-8", "replace")
        n = len(data)
        if n > self.max_value:
            # Cutting bytes may split a character; drop the partial tail rather than corrupt it.
            data = data[: self.max_value].decode("utf-8", "ignore").encode()
            n = len(data)
            self.truncated.append(key)
        head = _key_head(key)
        inner = len(head) + varint_len(n) + n
        entry = b"\x12" + varint(inner) + head + varint(n) + data
        if self.size + len(entry) > budget:
            self.dropped = True
            return
        self.parts.append(entry)
        self.size += len(entry)
        self.values += n


@dataclass(slots=True)
class _Piece:
    """Pre-encoded contents shared by many rows (stream + level; a container's metadata)."""

    data: bytes
    values: int
    truncated: list[str]
    dropped: bool
    labels: dict | None = None
    clean: bool = field(init=False)  # nothing cut or dropped: the fast path may use it as is

    def __post_init__(self):
        self.clean = not (self.truncated or self.dropped)

    @classmethod
    def of(cls, c: _Contents, labels: dict | None = None) -> "_Piece":
        return cls(b"".join(c.parts), c.values, c.truncated, c.dropped, labels)


class RowEncoder:
    """Encodes rows one by one, reusing container metadata bytes between rows."""

    def __init__(self, limits: LogLimits | None = None):
        self.limits = limits or LogLimits()
        self.budget = self.limits.max_log_bytes - _RESERVED_BYTES
        # The line (one max value + ≤ 16 bytes of framing) plus stream and level (≤ 64 bytes)
        # always fit beside the metadata.
        self.meta_budget = self.budget - self.limits.max_value_bytes - 16 - 64
        if self.meta_budget < 0:
            raise ValueError("max_log_bytes must leave room for a full-size line")
        self._meta: dict[tuple, _Piece] = {}
        self._stream_level: dict[tuple, _Piece] = {}
        self._time_hi = -1
        self._time_tail = b""

    def _time_field(self, ts_ns: int) -> bytes:
        """`Log.time` (ms). Rows come in time order, so all but the low 7 bits of the varint
        are usually the same as the previous row's and are reused."""
        time_ms = ts_ns // 1_000_000
        if time_ms < 128:
            return b"\x08" + varint(time_ms)
        hi = time_ms >> 7
        if hi != self._time_hi:
            self._time_hi = hi
            self._time_tail = varint(hi)
        return _TIME_LOW[time_ms & 0x7F] + self._time_tail

    def encode(self, row) -> EncodedLog:
        """The common case (a str line within the value limit, no attrs, metadata that fit)
        is built directly, entry header and all, in one join; everything else goes through
        the general path."""
        line = row.line
        if type(line) is str and not row.attrs:
            try:
                data = line.encode()
            except UnicodeEncodeError:
                return self._encode_general(row)
            n = len(data)
            if n <= self.limits.max_value_bytes:
                sl = self._stream_level.get((row.stream, row.level)) or self._stream_level_piece(
                    row.stream, row.level
                )
                meta = self._container_meta(row)
                if sl.clean and meta.clean:
                    # Fits by construction: meta_budget leaves room for a full-size line.
                    time_ms = row.ts_ns // 1_000_000
                    if time_ms >= 128 and time_ms >> 7 == self._time_hi:
                        time_head, time_tail = _TIME_LOW[time_ms & 0x7F], self._time_tail
                    else:
                        time_head, time_tail = self._time_field(row.ts_ns), b""
                    n_len = varint(n)
                    inner = varint(_LOG_HEAD_LEN + len(n_len) + n)
                    size = (
                        len(time_head)
                        + len(time_tail)
                        + 1
                        + len(inner)
                        + _LOG_HEAD_LEN
                        + len(n_len)
                        + n
                        + len(sl.data)
                        + len(meta.data)
                    )
                    return EncodedLog(
                        b"".join(
                            (
                                b"\x0a",
                                varint(size),
                                time_head,
                                time_tail,
                                b"\x12",
                                inner,
                                _LOG_HEAD,
                                n_len,
                                data,
                                sl.data,
                                meta.data,
                            )
                        ),
                        n + sl.values + meta.values,
                    )
        return self._encode_general(row)

    def _encode_general(self, row) -> EncodedLog:
        limits = self.limits
        c = _Contents(limits.max_value_bytes)
        line = row.line
        c.add("log", line if isinstance(line, str) else as_text(line), self.budget)
        for piece in (self._stream_level_piece(row.stream, row.level), self._container_meta(row)):
            if c.size + len(piece.data) <= self.budget:
                c.parts.append(piece.data)
                c.size += len(piece.data)
                c.values += piece.values
                c.truncated.extend(piece.truncated)
                c.dropped = c.dropped or piece.dropped
            else:
                c.dropped = True
        if row.attrs:
            for name, value in row.attrs.items():
                if value is not None and value != "":
                    c.add(safe_key("attr.", name, limits.max_key_chars), as_text(value), self.budget)
        if c.dropped or c.truncated:
            marker = truncation_marker((["fields"] if c.dropped else []) + c.truncated)
            c.add(TRUNCATED_KEY, marker, self.budget + _RESERVED_BYTES)
        return entry_of(self._time_field(row.ts_ns) + b"".join(c.parts), c.values)

    def _stream_level_piece(self, stream: str, level: int | None) -> _Piece:
        piece = self._stream_level.get((stream, level))
        if piece is None:
            c = _Contents(self.limits.max_value_bytes)
            # These 64 bytes are kept out of meta_budget, so stream and level always fit.
            c.add("stream", stream or "stdout", 64)
            if level is not None:
                c.add("level", NAME_BY_SEVERITY.get(level, str(level)), 64)
            piece = _Piece.of(c)
            if len(self._stream_level) < 64:
                self._stream_level[(stream, level)] = piece
        return piece

    def _container_meta(self, row) -> _Piece:
        key = _meta_key(row)
        labels = row.labels or None
        meta = self._meta.get(key)
        if meta is not None and meta.labels == labels:
            return meta
        c = _Contents(self.limits.max_value_bytes)
        for name, value in zip(META_FIELDS, key, strict=True):
            if value:
                c.add(name, as_text(value), self.meta_budget)
        for name, value in (labels or {}).items():
            if value is not None and value != "":
                c.add(safe_key("label.", name, self.limits.max_key_chars), as_text(value), self.meta_budget)
        meta = _Piece.of(c, dict(labels) if labels else None)
        if len(self._meta) >= _MAX_CACHED_CONTAINERS:
            self._meta.clear()
        self._meta[key] = meta
        return meta


def encode_row(row, limits: LogLimits | None = None) -> EncodedLog:
    return RowEncoder(limits).encode(row)
