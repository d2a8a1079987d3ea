"""Putting back together log lines that a driver delivered in fragments.

Docker splits lines longer than 16 KiB and marks the pieces (fluentd `partial_*` keys,
journald `CONTAINER_PARTIAL_*` fields, the plugin's partial metadata). A decoder marks a
fragment by putting `attrs["partial"] = {"id": …, "ordinal": n, "last": bool}` on its Record
and runs its records through a `PartialAssembler`, which returns whole lines only.

Nothing is dropped: a group whose last piece never comes (the process exited mid-line) is
emitted once no piece came for `timeout_s`, as it stands, and a group larger than `max_line_bytes` is emitted
in pieces of at most that size. Either way `attrs["partial"]` then says "incomplete" or
"split", so the reader knows the row is not a whole line.

An empty partial id means the old journald marking (Docker < 20.10): only
`CONTAINER_PARTIAL_MESSAGE=true` on the leading pieces and nothing on the final one, so the
next unmarked record of the same container and stream ends the group.
"""

import dataclasses
from collections import OrderedDict

from .record import Record

PARTIAL = "partial"
INCOMPLETE = "incomplete"
SPLIT = "split"


@dataclasses.dataclass(slots=True)
class _Group:
    first: Record
    parts: list[tuple[int, bytes]]
    size: int
    touched: float


def _as_bytes(line: bytes | str) -> bytes:
    return line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")


def fragment_mark(record: Record) -> dict | None:
    mark = record.attrs.get(PARTIAL) if record.attrs else None
    return mark if isinstance(mark, dict) else None


class PartialAssembler:
    def __init__(self, *, timeout_s: float = 5.0, max_line_bytes: int = 256 * 1024, max_groups: int = 10_000):
        self.timeout_s = timeout_s
        self.max_line_bytes = max_line_bytes
        self.max_groups = max_groups
        # Kept in order of last activity, so expiry only ever looks at the front.
        self._groups: OrderedDict[tuple, _Group] = OrderedDict()
        self.completed = 0
        self.expired = 0
        self.evicted = 0
        self.split = 0

    def __len__(self) -> int:
        return len(self._groups)

    @staticmethod
    def _stream_key(record: Record) -> tuple:
        return (record.tenant, record.host, record.container_id or record.container_name, record.stream)

    def feed(self, record: Record, now: float) -> list[Record]:
        """Whole lines ready to store, in order; fragments are held back until their group ends."""
        out = self.expire(now)
        mark = fragment_mark(record)
        stream = self._stream_key(record)
        if mark is None:
            legacy = self._groups.pop((stream, ""), None)
            if legacy is None:
                out.append(record)
                return out
            self._append(legacy, 1 << 30, _as_bytes(record.line), out)
            self.completed += 1
            out.append(self._emit(legacy, None))
            return out

        key = (stream, str(mark.get("id", "")))
        group = self._groups.get(key)
        if group is None:
            while len(self._groups) >= self.max_groups:
                _, oldest = self._groups.popitem(last=False)
                self.evicted += 1
                out.append(self._emit(oldest, INCOMPLETE))
            group = _Group(first=record, parts=[], size=0, touched=now)
            self._groups[key] = group
        else:
            group.touched = now
            self._groups.move_to_end(key)
        ordinal = mark.get("ordinal")
        if not isinstance(ordinal, int):
            ordinal = len(group.parts) + 1
        self._append(group, ordinal, _as_bytes(record.line), out)
        if mark.get("last") is True:
            del self._groups[key]
            self.completed += 1
            out.append(self._emit(group, None))
        return out

    def _append(self, group: _Group, ordinal: int, piece: bytes, out: list[Record]) -> None:
        if group.parts and group.size + len(piece) > self.max_line_bytes:
            self.split += 1
            out.append(self._emit(group, SPLIT))
            group.parts, group.size = [], 0
        group.parts.append((ordinal, piece))
        group.size += len(piece)

    def expire(self, now: float) -> list[Record]:
        out: list[Record] = []
        while self._groups:
            key, group = next(iter(self._groups.items()))
            if group.touched + self.timeout_s > now:
                break
            del self._groups[key]
            self.expired += 1
            out.append(self._emit(group, INCOMPLETE))
        return out

    def flush(self) -> list[Record]:
        """Everything still open, e.g. at shutdown."""
        out = [self._emit(group, INCOMPLETE) for group in self._groups.values()]
        self.expired += len(out)
        self._groups.clear()
        return out

    @staticmethod
    def _emit(group: _Group, state: str | None) -> Record:
        # Fragments of one group arrive in order on a stream; sorting covers the rest.
        line = b"".join(piece for _, piece in sorted(group.parts, key=lambda p: p[0]))
        attrs = {k: v for k, v in (group.first.attrs or {}).items() if k != PARTIAL}
        if state is not None:
            attrs[PARTIAL] = state
        return dataclasses.replace(group.first, line=line, attrs=attrs or None)
