"""Split forwarded rows into CLS upload bodies (serialised `LogGroupList`s) within every limit.

Limits (shared/CLS.md §1.5), read as decimal megabytes because the docs do not say MiB and the
smaller reading is safe on both: ≤ 10 LogGroups per request, 1…10 000 logs per group, ≤ 1 MB per
value, ≤ 5 MB of values per group, ≤ 6 MB for the body before compression.

Sizes are known exactly while batching (each log is already serialised by cls_encode), so a
request is closed just before a limit would be crossed, never after serialising and finding out.
Rows keep their order: the concatenation of all requests is the input, which is what lets the
caller move its cursor by `ClsRequest.rows` after each acknowledged request.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from forward.sinks.cls_encode import EncodedLog, LogLimits, RowEncoder, framed, framed_len, varint


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
class ClsRequest:
    body: bytes  # serialised LogGroupList, not yet compressed
    rows: int
    groups: int


class ClsBatcher:
    """Splits rows into upload requests; `source` and `tags` are set on every LogGroup."""

    def __init__(self, limits: ClsLimits | None = None, source: str = "", tags: dict[str, str] | None = None):
        self.limits = limits or ClsLimits()
        self.source = source
        self.tags = dict(tags or {})
        # Group metadata, serialised once: LogGroup.source (4) and LogGroup.logTags (5).
        meta = framed(b"\x22", source.encode()) if source else b""
        for key, value in self.tags.items():
            meta += framed(b"\x2a", framed(b"\x0a", key.encode()) + framed(b"\x12", value.encode()))
        if len(meta) > self.limits.max_group_meta_bytes:
            raise ValueError(
                f"CLS group source and tags take {len(meta)} bytes, over {self.limits.max_group_meta_bytes}"
            )
        self._meta = meta
        self._meta_size = len(meta)
        worst = framed_len(self._meta_size + framed_len(self.limits.max_log_bytes))
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
        encoder = RowEncoder(LogLimits(lim.max_value_bytes, lim.max_log_bytes, lim.max_key_chars))
        for row in rows:
            log = encoder.encode(row)
            entry = len(log.entry)
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
        parts = []
        for logs in groups:
            # A LogGroup: its LogGroup.logs entries, then the shared source/tags; one join in
            # the end, so every log's bytes are copied once.
            entries = [log.entry for log in logs]
            parts.append(b"\x0a")
            parts.append(varint(sum(map(len, entries)) + self._meta_size))
            parts.extend(entries)
            parts.append(self._meta)
        return ClsRequest(body=b"".join(parts), rows=sum(len(g) for g in groups), groups=len(groups))
