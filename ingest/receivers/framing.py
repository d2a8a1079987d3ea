"""Splitting a TCP byte stream into messages that end with one delimiter byte.

Used for GELF over TCP (NUL) and syslog's non-transparent framing (newline). A frame that
grows beyond the limit is skipped up to its delimiter and counted, and the stream goes on:
one huge message must not cost the sender its connection or us our memory.
"""


class DelimitedFramer:
    def __init__(self, delimiter: bytes, max_frame: int):
        if len(delimiter) != 1:
            raise ValueError("delimiter must be one byte")
        self._delimiter = delimiter
        self._max = max_frame
        self._buf = bytearray()
        # Bytes of _buf already known to hold no delimiter, so a long frame arriving in small
        # reads is scanned once, not once per read.
        self._scanned = 0
        self._skipping = False
        self.oversize = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        self._buf += data
        start = 0
        while True:
            end = self._buf.find(self._delimiter, max(start, self._scanned))
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif end - start > self._max:
                self.oversize += 1
            else:
                frames.append(bytes(self._buf[start:end]))
            start = end + 1
            self._scanned = start
        del self._buf[:start]
        self._scanned = len(self._buf)
        if len(self._buf) > self._max:
            if not self._skipping:
                self.oversize += 1
                self._skipping = True
            self._buf.clear()
            self._scanned = 0
        return frames

    def finish(self) -> bytes | None:
        """At end of stream: the last message if the sender did not terminate it."""
        rest = None if self._skipping or not self._buf else bytes(self._buf)
        self._buf.clear()
        self._scanned = 0
        self._skipping = False
        return rest

    @property
    def pending(self) -> int:
        return len(self._buf)
