"""The bounded on-disk buffer that holds a container's records while Logsite is unreachable.

Records are kept in segment files of NDJSON, each named by the sequence number of its first
record and its record count, so the oldest is found by name and a dropped segment's line count
is known without reading it. When a new segment would go over the cap, the oldest segments are
deleted and their lines counted as dropped: keeping the newest lines is the useful choice when
an outage outlasts the buffer, and dropping (instead of waiting) keeps the container running.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

_SEGMENT = re.compile(r"^(\d{20})-(\d+)\.ndjson$")


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    first_seq: int
    count: int
    size: int
    path: Path


class DiskBuffer:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: list[Segment] = []
        for path in directory.iterdir():
            m = _SEGMENT.match(path.name)
            if m:
                self._segments.append(Segment(int(m.group(1)), int(m.group(2)), path.stat().st_size, path))
            elif path.name.endswith(".tmp"):
                path.unlink()  # an append interrupted before its rename never held a complete segment
        self._segments.sort()
        self._bytes = sum(s.size for s in self._segments)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def lines(self) -> int:
        return sum(s.count for s in self._segments)

    @property
    def next_seq(self) -> int:
        """One past the newest stored sequence number, so a resumed sender keeps the order."""
        return max((s.first_seq + s.count for s in self._segments), default=0)

    def __len__(self) -> int:
        return len(self._segments)

    def append(self, first_seq: int, records: list[bytes]) -> int:
        """Store records as one segment; returns how many older lines were dropped for room.

        Raises OSError when the disk write fails; the caller counts those records as dropped.
        """
        payload = b"\n".join(records) + b"\n"
        dropped = 0
        while self._segments and self._bytes + len(payload) > self.max_bytes:
            victim = self._segments[0]
            if victim.first_seq > first_seq:
                # A failed batch coming back can be older than everything stored: then it is
                # the oldest, and it is what gets dropped.
                return dropped + len(records)
            self.remove(victim)
            dropped += victim.count
        path = self.directory / f"{first_seq:020d}-{len(records)}.ndjson"
        tmp = path.with_name(path.name + ".tmp")
        # No fsync: this runs on the FIFO reader's path and must stay fast; the buffer exists for
        # Logsite outages, not for surviving a power cut of the Docker host.
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
        segment = Segment(first_seq, len(records), len(payload), path)
        # Sorted insert: a failed in-flight batch comes back with older numbers than later spills.
        self._segments.append(segment)
        self._segments.sort()
        self._bytes += segment.size
        return dropped

    def fits(self, records: list[bytes]) -> bool:
        """Whether records can be stored without dropping anything."""
        return self._bytes + sum(len(r) + 1 for r in records) <= self.max_bytes

    def oldest(self) -> Segment | None:
        return self._segments[0] if self._segments else None

    def read(self, segment: Segment) -> list[bytes]:
        return segment.path.read_bytes().splitlines()

    def remove(self, segment: Segment) -> None:
        if segment in self._segments:
            self._segments.remove(segment)
            self._bytes -= segment.size
        segment.path.unlink(missing_ok=True)
