"""Durable on-disk spool for batches that could not be committed (Postgres unreachable).

Append-only segment files of frames: [u32 length][u32 crc32][msgpack payload]. A batch is
acknowledged to senders only after its frame is fsynced. Replay applies frames in order and
records each frame's reference (segment:offset) in the same transaction as its rows
(log_batches.spool_ref), so a crash during replay never stores a frame twice. A torn frame at
the end of a segment (crash while appending) was never acknowledged and is discarded.
Details and the failure analysis: docs/spool.md.
"""

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack

from ingest.normalize import Batch, ContainerMeta

log = logging.getLogger(__name__)

_FRAME = struct.Struct(">II")
SEGMENT_BYTES = 64 * 1024 * 1024


def pack_batch(batch: Batch) -> bytes:
    metas = [
        [m.tenant, m.container_id, m.service, m.name, m.image, m.host, m.labels_json, m.driver_id]
        for m in batch.metas
    ]
    return msgpack.packb([metas, batch.rows, batch.keys], use_bin_type=True)


def unpack_batch(payload: bytes) -> Batch:
    # Frames written before de-duplication keys existed have two elements.
    metas, rows, *keys = msgpack.unpackb(payload, raw=False, use_list=True)
    return Batch(
        [ContainerMeta(*m) for m in metas], [tuple(r) for r in rows], [tuple(k) for k in (keys or [[]])[0]]
    )


class Spool:
    def __init__(self, directory: Path, writer_name: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.writer_name = writer_name
        self._fd: int | None = None
        self._segment: Path | None = None
        self._size = 0

    # --- appending -------------------------------------------------------------------------
    def append(self, batch: Batch) -> None:
        payload = pack_batch(batch)
        if self._fd is None or self._size >= SEGMENT_BYTES:
            self._open_segment()
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        os.write(self._fd, frame)
        os.fsync(self._fd)
        self._size += len(frame)

    def _open_segment(self) -> None:
        self.close()
        # Names sort in creation order across restarts and writers.
        name = f"{time.time_ns():020d}-{self.writer_name}.spool"
        self._segment = self.directory / name
        self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's directory entry must survive a crash too
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._segment = None

    # --- replaying -------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.spool"))

    def depth_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments())

    def has_pending(self) -> bool:
        return bool(self.segments())

    def replay(self, apply: Callable[[Batch, str], None]) -> int:
        """Calls apply(batch, ref) for each frame in order; deletes fully applied segments.

        apply must commit the batch together with `ref` and skip refs already committed; if
        it raises, replay stops and the remaining frames stay for the next attempt.
        """
        self.close()  # new batches go to a fresh segment after this one
        applied = 0
        for segment in self.segments():
            for offset, payload in _frames(segment):
                apply(unpack_batch(payload), f"{segment.name}:{offset}")
                applied += 1
            segment.unlink()
        return applied


def _frames(segment: Path) -> Iterator[tuple[int, bytes]]:
    data = segment.read_bytes()
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            log.warning(
                "spool %s: torn or corrupt frame at %d discarded (never acknowledged)", segment, offset
            )
            return
        yield offset, payload
        offset = start + length
