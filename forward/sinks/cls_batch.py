"""Turn forwarded rows into CLS upload bodies (serialised `LogGroupList`s) within every limit.

Limits (shared/CLS.md §1.5), read as decimal megabytes because the docs do not say MiB and the
smaller reading is safe on both: ≤ 10 LogGroups per request, 1…10 000 logs per group, ≤ 1 MB per
value, ≤ 5 MB of values per group, ≤ 6 MB for the body before compression.

Sizes are computed exactly from the protobuf wire format while batching, so a request is closed
just before a limit would be crossed, never after serialising and finding out. Rows keep their
order: the concatenation of all requests is the input, which is what lets the caller move its
cursor by `ClsRequest.rows` after each acknowledged request.
"""

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from forward.sinks import cls_pb2
from ingest.levels import NAME_BY_SEVERITY

# Names the service keeps for itself (as names and as prefixes), and the older rule that a key
# must not start with "_". Logsite's own keys are fixed words; user-controlled keys (labels,
# attrs) always get a "label."/"attr." prefix, so neither rule can be broken.
RESERVED_KEYS = ("__FILENAME__", "__TIMESTAMP__", "__LOGSETID__", "__TOPICID__")
# CLS field names for key-value indexes allow letters, digits and _ - . / @ [infer from the
# console's index rules]; anything else in a label or attr name becomes "_".
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-/@]")
TRUNCATED_KEY = "truncated"
_ROW_FIELDS = ("tenant", "service", "container_id", "container_name", "image", "host")


@dataclass(frozen=True, slots=True)
class ClsLimits:
    max_groups_per_request: int = 10
    max_logs_per_group: int = 10_000
    max_value_bytes: int = 1_000_000
    max_group_value_bytes: int = 5_000_000
    max_body_bytes: int = 6_000_000
    # One log's serialised size. Smaller than a group's value budget and, with the group's own
    # metadata, than a body, so any single log always fits into an empty request.
    max_log_bytes: int = 4_900_000
    max_key_chars: int = 128
    # Group metadata (source + tags) repeats in every group; bounded so it cannot crowd out logs.
    max_group_meta_bytes: int = 64 * 1024


@dataclass(slots=True)
class EncodedLog:
    time_ms: int
    contents: list[tuple[str, str]]
    values_bytes: int
    # Serialised size of the `Log` message itself (without its tag and length in the group).
    size: int


@dataclass(slots=True)
class ClsRequest:
    body: bytes  # serialised LogGroupList, not yet compressed
    rows: int
    groups: int


def varint_len(n: int) -> int:
    if n < 0:
        return 10  # negative int64 values always take ten bytes on the wire
    return max(1, (n.bit_length() + 6) // 7)


def framed_len(n: int) -> int:
    """Size of a length-delimited field (tag byte + length + payload) for a payload of n bytes."""
    return 1 + varint_len(n) + n


def _clean(text: str) -> tuple[str, bytes | None, int]:
    """Text that protobuf accepts, its UTF-8 bytes when not ASCII, and its byte length."""
    if text.isascii():
        return text, None, len(text)
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates, e.g. from surrogateescape decoding
        data = text.encode("utf-8", "replace")
        text = data.decode()
    return text, data, len(data)


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def safe_key(prefix: str, name: str, limits: ClsLimits) -> str:
    return prefix + _UNSAFE_KEY_CHARS.sub("_", str(name))[: limits.max_key_chars]


def _truncate(value: str, data: bytes | None, limit: int) -> tuple[str, int]:
    data = (data if data is not None else value.encode())[:limit]
    # Cutting bytes may split a character; drop the partial tail rather than corrupt it.
    value = data.decode("utf-8", "ignore")
    return value, len(value.encode())


def _content_entry_len(key_len: int, value_len: int) -> int:
    """Bytes one Content adds to a Log: tag+len of the Content, and its key and value fields."""
    # Written out for the common small sizes: this runs for every field of every line.
    inner = key_len + value_len + 2
    inner += 1 if key_len < 128 else varint_len(key_len)
    inner += 1 if value_len < 128 else varint_len(value_len)
    return inner + 1 + (1 if inner < 128 else varint_len(inner))


def encode_row(row, limits: ClsLimits) -> EncodedLog:
    """One row as CLS key/value contents; time is the row's own timestamp in milliseconds."""
    line = row.line
    pairs = [("log", line if isinstance(line, str) else _as_text(line)), ("stream", row.stream or "stdout")]
    if row.level is not None:
        pairs.append(("level", NAME_BY_SEVERITY.get(row.level, str(row.level))))
    for key in _ROW_FIELDS:
        value = getattr(row, key, "")
        if value:
            pairs.append((key, value if isinstance(value, str) else _as_text(value)))
    # Labels and attrs are optional context: if a pathological row carries megabytes of them,
    # what fits in one log is kept and the rest is dropped and marked, so the row stays sendable.
    for prefix, mapping in (("label.", row.labels), ("attr.", row.attrs)):
        if mapping:
            pairs.extend(
                (safe_key(prefix, name, limits), _as_text(value))
                for name, value in mapping.items()
                if value is not None and value != ""
            )
    # Room for the time field and the "truncated" marker is kept back, so the finished log is
    # never over max_log_bytes. The line comes first and always fits (1 MB cap < budget).
    budget = limits.max_log_bytes - 11 - 80
    max_value = limits.max_value_bytes
    contents = []
    truncated = []
    dropped = False
    values = size = 0
    for key, value in pairs:
        if value.isascii():
            n = len(value)
            if n > max_value:
                value, n = _truncate(value, None, max_value)
                truncated.append(key)
        else:
            value, data, n = _clean(value)
            if n > max_value:
                value, n = _truncate(value, data, max_value)
                truncated.append(key)
        # Keys are ASCII: fixed words, or safe_key() output. Short fields (the usual case)
        # take 6 framing bytes; the general formula is only needed for long ones.
        entry = len(key) + n + 6
        if entry > 129:
            entry = _content_entry_len(len(key), n)
        if size + entry > budget:
            dropped = True
            continue
        contents.append((key, value))
        values += n
        size += entry
    if dropped:
        truncated.append("fields")
    if truncated:
        marker = ",".join(truncated)[:48]
        contents.append((TRUNCATED_KEY, marker))
        values += len(marker)
        size += _content_entry_len(len(TRUNCATED_KEY), len(marker))
    time_ms = row.ts_ns // 1_000_000
    return EncodedLog(
        time_ms=time_ms, contents=contents, values_bytes=values, size=1 + varint_len(time_ms) + size
    )


class ClsBatcher:
    """Splits rows into upload requests; `source` and `tags` are set on every LogGroup."""

    def __init__(self, limits: ClsLimits | None = None, source: str = "", tags: dict[str, str] | None = None):
        self.limits = limits or ClsLimits()
        self.source = source
        self.tags = dict(tags or {})
        meta = framed_len(len(source.encode())) if source else 0
        for key, value in self.tags.items():
            meta += framed_len(framed_len(len(key.encode())) + framed_len(len(value.encode())))
        if meta > self.limits.max_group_meta_bytes:
            raise ValueError(
                f"CLS group source and tags take {meta} bytes, over {self.limits.max_group_meta_bytes}"
            )
        self._meta_size = meta
        worst = framed_len(meta + framed_len(self.limits.max_log_bytes))
        if (
            worst > self.limits.max_body_bytes
            or self.limits.max_log_bytes > self.limits.max_group_value_bytes
        ):
            raise ValueError("CLS limits leave no room for one log per request")

    def requests(self, rows: Iterable) -> Iterator[ClsRequest]:
        lim = self.limits
        groups: list[list[EncodedLog]] = []
        closed_bytes = 0  # serialised size of the closed groups of the request being filled
        group: list[EncodedLog] = []
        group_size = self._meta_size
        group_values = 0
        for row in rows:
            log = encode_row(row, lim)
            entry = framed_len(log.size)
            if group and (
                len(group) >= lim.max_logs_per_group
                or group_values + log.values_bytes > lim.max_group_value_bytes
                or closed_bytes + framed_len(group_size + entry) > lim.max_body_bytes
            ):
                groups.append(group)
                closed_bytes += framed_len(group_size)
                group, group_size, group_values = [], self._meta_size, 0
                if (
                    len(groups) >= lim.max_groups_per_request
                    or closed_bytes + framed_len(group_size + entry) > lim.max_body_bytes
                ):
                    yield self._request(groups)
                    groups, closed_bytes = [], 0
            group.append(log)
            group_size += entry
            group_values += log.values_bytes
        if group:
            groups.append(group)
        if groups:
            yield self._request(groups)

    def _request(self, groups: list[list[EncodedLog]]) -> ClsRequest:
        message = cls_pb2.LogGroupList()
        tags = [{"key": k, "value": v} for k, v in self.tags.items()]
        rows = 0
        for logs in groups:
            group = message.logGroupList.add()
            if self.source:
                group.source = self.source
            if tags:
                group.logTags.extend(cls_pb2.LogTag(**t) for t in tags)
            add = group.logs.add
            for log in logs:
                add(time=log.time_ms, contents=[{"key": k, "value": v} for k, v in log.contents])
            rows += len(logs)
        return ClsRequest(body=message.SerializeToString(), rows=rows, groups=len(groups))
