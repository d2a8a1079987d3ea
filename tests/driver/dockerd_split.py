"""How dockerd's copier cuts a line into LogEntry fragments (PROTOCOLS.md §1.9), for tests."""

import secrets

from driver.logentry import LogEntry, PartialLogEntryMetadata

FRAGMENT = 16384


def entries_for_line(line: bytes, time_nano: int, source: str = "stdout") -> list[LogEntry]:
    """One entry when the line fits; otherwise 16 KiB fragments and a last one, maybe empty."""
    if len(line) < FRAGMENT:
        return [LogEntry(source=source, time_nano=time_nano, line=line)]
    group = secrets.token_hex(32)
    chunks = [line[i : i + FRAGMENT] for i in range(0, len(line), FRAGMENT)]
    if len(chunks[-1]) == FRAGMENT:
        chunks.append(b"")  # a multiple of 16 KiB ends with an empty last fragment
    return [
        LogEntry(
            source=source,
            time_nano=time_nano,
            line=chunk,
            partial=True,
            partial_log_metadata=PartialLogEntryMetadata(last=i == len(chunks), id=group, ordinal=i),
        )
        for i, chunk in enumerate(chunks, start=1)
    ]
