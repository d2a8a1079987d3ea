"""Joins the 16 KiB fragments dockerd makes of long lines back into whole lines.

dockerd's copier (one per stream) emits fragments of one line in order, all with the first
fragment's timestamp; the last one carries last=true and may be empty when the line length is a
multiple of 16 KiB. When a process exits mid-line the last fragment never comes, so idle groups
are flushed after a timeout, and every open group is flushed at EOF.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from driver.logentry import LogEntry


@dataclass(slots=True)
class Line:
    """One whole line, ready to be turned into a Logsite record."""

    source: str
    time_nano: int
    line: bytes
    # Original length when the joined line went over the cap and was cut.
    truncated_from: int | None = None
    # The group's last fragment never arrived (timeout, EOF or a new line on the same stream).
    incomplete: bool = False


@dataclass(slots=True)
class _Group:
    group_id: str
    source: str
    time_nano: int
    last_seen: float
    parts: list[tuple[int, bytes]] = field(default_factory=list)
    kept_bytes: int = 0
    total_bytes: int = 0


class PartialAssembler:
    def __init__(
        self,
        max_line_bytes: int,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_line_bytes
        self._timeout = timeout_s
        self._clock = clock
        # One open group per stream: the copier never interleaves two lines of one stream, so a
        # new line (or new group) on a stream means the open one will never be finished.
        self._open: dict[str, _Group] = {}

    def add(self, entry: LogEntry) -> list[Line]:
        source = entry.source
        out: list[Line] = []
        meta = entry.partial_log_metadata if entry.HasField("partial_log_metadata") else None
        group = self._open.get(source)
        if meta is None:
            if group is not None:
                out.append(self._close(self._open.pop(source), incomplete=True))
            # Without metadata (pre-18.06 dockerd) partial only meant "no trailing newline":
            # there is nothing to join, so the entry ships as it is.
            out.append(self._whole(source, entry.time_nano, entry.line))
            return out
        if group is not None and group.group_id != meta.id:
            out.append(self._close(self._open.pop(source), incomplete=True))
            group = None
        if group is None:
            group = _Group(meta.id, source, entry.time_nano, self._clock())
            self._open[source] = group
        self._append(group, meta.ordinal, entry.line)
        if meta.last:
            out.append(self._close(self._open.pop(source), incomplete=False))
        return out

    def expire(self) -> list[Line]:
        """Flush groups that have waited longer than the timeout for their next fragment."""
        now = self._clock()
        stale = [s for s, g in self._open.items() if now - g.last_seen >= self._timeout]
        return [self._close(self._open.pop(s), incomplete=True) for s in stale]

    def flush_all(self) -> list[Line]:
        lines = [self._close(g, incomplete=True) for g in self._open.values()]
        self._open.clear()
        return lines

    @property
    def open_groups(self) -> int:
        return len(self._open)

    def _whole(self, source: str, time_nano: int, data: bytes) -> Line:
        if len(data) > self._max:
            return Line(source, time_nano, data[: self._max], truncated_from=len(data))
        return Line(source, time_nano, data)

    def _append(self, group: _Group, ordinal: int, data: bytes) -> None:
        group.last_seen = self._clock()
        group.total_bytes += len(data)
        room = self._max - group.kept_bytes
        if room <= 0 or not data:
            return
        kept = data[:room]
        group.parts.append((ordinal, kept))
        group.kept_bytes += len(kept)

    def _close(self, group: _Group, incomplete: bool) -> Line:
        group.parts.sort(key=lambda p: p[0])
        joined = b"".join(p[1] for p in group.parts)
        truncated = group.total_bytes if group.total_bytes > len(joined) else None
        return Line(group.source, group.time_nano, joined, truncated_from=truncated, incomplete=incomplete)
