"""Durable on-disk spool for batches that could not be committed (Postgres unreachable).

Append-only segment files of frames: [u32 length][u32 crc32][msgpack payload]. A batch is
acknowledged to senders only after its frame is fsynced. Replay applies frames in order and
records each frame's reference (the batch's ref, given before its first commit attempt, or
segment:offset for older frames) in the same transaction as its rows (log_batches.spool_ref),
so neither a crash during replay nor a first COMMIT whose answer was lost stores a batch twice.
A torn frame at the end of a segment (crash while appending) was never acknowledged and is
discarded. Details and the failure analysis: docs/write-path.md.
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
    return msgpack.packb([metas, batch.rows, batch.keys, batch.ref], use_bin_type=True)


def unpack_batch(payload: bytes) -> Batch:
    # Frames written before de-duplication keys (two elements) or batch refs (three) existed
    # are read as they were written.
    metas, rows, *rest = msgpack.unpackb(payload, raw=False, use_list=True)
    keys = rest[0] if rest else []
    ref = rest[1] if len(rest) > 1 else None
    return Batch([ContainerMeta(*m) for m in metas], [tuple(r) for r in rows], [tuple(k) for k in keys], ref)


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
        try:
            _write_all(self._fd, frame)
            os.fsync(self._fd)
        except OSError:
            self._drop_partial_frame()
            raise
        self._size += len(frame)

    def _drop_partial_frame(self) -> None:
        """After a failed append: no torn frame may sit in front of later (acknowledged) ones."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            # The torn bytes stay at the end of this segment, where replay discards them; later
            # appends go to a fresh segment behind it.
            log.exception("spool %s: cannot cut a failed append; starting a new segment", self._segment)
            self.close()

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
            try:
                for offset, payload in _frames(segment):
                    batch = _unpack(segment, offset, payload)
                    apply(batch, batch.ref or f"{segment.name}:{offset}")
                    applied += 1
            except CorruptSegment as e:
                # Acknowledged batches follow the damage: keep the file for recovery rather than
                # deleting them with it, and carry on so one bad file cannot stop ingest.
                kept = segment.with_suffix(".corrupt")
                segment.rename(kept)
                log.error("%s; kept as %s, later frames of that file were not replayed", e, kept)
                continue
            segment.unlink()
        return applied


class CorruptSegment(Exception):
    pass


def batches_in(segment: Path) -> Iterator[Batch]:
    """The good batches of one segment file, in order (raises CorruptSegment on damage)."""
    for offset, payload in _frames(segment):
        yield _unpack(segment, offset, payload)


def _unpack(segment: Path, offset: int, payload: bytes) -> Batch:
    try:
        return unpack_batch(payload)
    except Exception as e:
        raise CorruptSegment(f"spool {segment}: frame at {offset} does not decode: {e}") from e


def _write_all(fd: int, data: bytes) -> None:
    # A regular file takes a write whole or refuses it, except at a size limit or a full disk,
    # where the kernel writes what fits and returns the count: the rest must not be dropped.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _frames(segment: Path) -> Iterator[tuple[int, bytes]]:
    """Good frames in order. A bad frame at the end is a torn append (never acknowledged) and is
    dropped; a bad frame with data after it is damage, raised as CorruptSegment."""
    data = segment.read_bytes()
    offset = 0
    while offset < len(data):
        end = offset + _FRAME.size
        if end <= len(data):
            length, crc = _FRAME.unpack_from(data, offset)
            end += length
            # No frame is empty (a batch packs to a few bytes at least); length 0 is the crc of
            # nothing, as read from a file whose tail never reached the disk (zeros).
            if length and end <= len(data) and zlib.crc32(data[offset + _FRAME.size : end]) == crc:
                yield offset, data[offset + _FRAME.size : end]
                offset = end
                continue
        if end >= len(data) or data.count(0, offset) == len(data) - offset:
            log.warning("spool %s: torn frame at %d discarded (never acknowledged)", segment, offset)
            return
        raise CorruptSegment(f"spool {segment}: damaged frame at {offset}, {len(data) - end} bytes after it")
