"""Multi-line grouping: continuation lines (stack traces) join the record before them.

A `Grouper` keeps at most one open group per container. For a container with a rule:
- a line matching the rule's start pattern closes the open group and opens a new one;
- any other line is appended to the open group (or opens one if there is none);
- a group is closed when it would exceed max_lines or max_bytes, when the stream changes
  (stdout lines never join a stderr record), when no line came for flush_timeout, or when the
  caller asks (see `feed(..., flush_after=True)` and docs/admin.md on acknowledgements).
Closed groups come out in the order their lines came in, per container, so nothing is lost or
reordered within a container: the grouper only ever delays a container's lines, and only its
newest ones.

Pure logic with no I/O and no clock of its own (callers pass `now`), so it is tested directly
(tests/ingest/test_multiline.py) as well as through a real ingest process.
"""

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.record import Record

# The start pattern sees only the head of a line: a rule written by an admin must not turn a
# hostile 1 MB line into seconds of regex backtracking.
MATCH_CHARS = 512


@dataclass(frozen=True, eq=False)
class Rule:
    id: int
    name: str
    start: re.Pattern
    max_lines: int
    max_bytes: int
    flush_timeout_s: float

    def starts(self, line: bytes | str) -> bool:
        head = line[:MATCH_CHARS]
        if isinstance(head, bytes):
            head = head.decode("utf-8", "replace")
        return self.start.match(head) is not None


def _size(line: bytes | str) -> int:
    return len(line) if isinstance(line, bytes) else len(line.encode("utf-8", "surrogatepass"))


@dataclass
class Group:
    rule: Rule
    records: list[Record]
    nbytes: int
    last_at: float
    stream: str = field(default="stdout")

    def fits(self, record: Record, size: int) -> bool:
        return (
            len(self.records) < self.rule.max_lines
            and self.nbytes + 1 + size <= self.rule.max_bytes
            and record.stream == self.stream
        )

    def merged(self) -> Record:
        if len(self.records) == 1:
            return self.records[0]
        lines = [r.line for r in self.records]
        if any(isinstance(x, bytes) for x in lines):
            joined = b"\n".join(
                x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in lines
            )
        else:
            joined = "\n".join(lines)
        first = self.records[0]
        attrs = dict(first.attrs or {}, _multiline_lines=len(self.records))
        return dataclasses.replace(first, line=joined, attrs=attrs)


def group_key(record: Record) -> tuple[str, str]:
    return (record.tenant, record.container_id or record.container_name or record.host)


class Grouper:
    def __init__(self, rule_for: Callable[[Record], Rule | None]):
        self.rule_for = rule_for
        self._open: dict[tuple[str, str], Group] = {}
        self.held = 0  # lines inside open groups
        self.merged_lines = 0  # lines that joined a record before them

    def feed(self, records: list[Record], now: float, flush_after: bool = False) -> list[Record]:
        """Records ready to be written, in order. With flush_after, nothing of `records` is held."""
        out: list[Record] = []
        # Insertion-ordered (a dict, not a set): flushed groups come out in the order their
        # containers were first fed, the same on every run, not in hash order.
        touched: dict[tuple[str, str], None] = {}
        for record in records:
            rule = self.rule_for(record)
            key = group_key(record)
            group = self._open.get(key)
            if rule is None:
                if group is not None:
                    out.append(self._close(key))
                out.append(record)
                continue
            size = _size(record.line)
            if group is not None and (
                group.rule.id != rule.id or rule.starts(record.line) or not group.fits(record, size)
            ):
                out.append(self._close(key))
                group = None
            if group is None:
                self._open[key] = Group(rule, [record], size, now, record.stream)
            else:
                group.records.append(record)
                group.nbytes += 1 + size
                group.last_at = now
                self.merged_lines += 1
            self.held += 1
            if flush_after:
                touched[key] = None
        for key in touched:
            if key in self._open:
                out.append(self._close(key))
        return out

    def expire(self, now: float) -> list[Record]:
        """Groups whose newest line is older than their rule's flush timeout."""
        due = [k for k, g in self._open.items() if now - g.last_at >= g.rule.flush_timeout_s]
        return [self._close(k) for k in due]

    def flush_all(self) -> list[Record]:
        return [self._close(k) for k in list(self._open)]

    def _close(self, key) -> Record:
        group = self._open.pop(key)
        self.held -= len(group.records)
        return group.merged()

    def open_groups(self) -> int:
        return len(self._open)
