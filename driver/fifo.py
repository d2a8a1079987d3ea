"""dockerd's FIFO framing: a 4-byte big-endian length, then one serialized LogEntry.

The same framing carries ReadLogs answers back to dockerd, so encoding lives here too.
"""

import struct

from google.protobuf.message import DecodeError

from driver.logentry import LogEntry

# Real frames are at most ~16.4 KiB (a 16 KiB fragment plus a few fields). A length this large
# can only come from a corrupted stream, and without a separator there is no way to resync.
MAX_FRAME_BYTES = 1 << 20

_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    """The byte stream is no longer framed; nothing after this point can be trusted."""


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get whole LogEntry messages back.

    A frame whose body is not a valid LogEntry is skipped and counted (the framing is still in
    step, so the next frame is fine); a length above the cap raises FrameError.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes
        self.bad_records = 0

    def feed(self, data: bytes) -> list[LogEntry]:
        buf = self._buf
        buf += data
        entries: list[LogEntry] = []
        pos = 0
        end = len(buf)
        try:
            while end - pos >= 4:
                (size,) = _LENGTH.unpack_from(buf, pos)
                if size > self._max:
                    raise FrameError(f"frame length {size} exceeds {self._max} bytes: stream is corrupt")
                if end - pos - 4 < size:
                    break
                body = bytes(buf[pos + 4 : pos + 4 + size])
                pos += 4 + size
                entry = LogEntry()
                try:
                    entry.ParseFromString(body)
                except DecodeError:
                    self.bad_records += 1
                    continue
                entries.append(entry)
        finally:
            del buf[:pos]
        return entries

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished frame; non-zero at EOF means the writer stopped mid-frame."""
        return len(self._buf)


def encode_frame(entry: LogEntry) -> bytes:
    body = entry.SerializeToString()
    return _LENGTH.pack(len(body)) + body
