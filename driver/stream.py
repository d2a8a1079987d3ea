"""One container's log stream: FIFO → frames → whole lines → records → sender.

The reader runs in event-loop callbacks and never awaits anything, so however long the sender
waits for Logsite, dockerd's pipe keeps being emptied and the container never blocks on it.

Each stream has a directory named after its FIFO holding `start.json` (the StartLogging body)
and the disk buffer, so a restarted plugin can re-attach to a FIFO that still exists and deliver
what it had buffered (dockerd does not call StartLogging again after a plugin restart).
"""

import asyncio
import json
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from driver.buffer import DiskBuffer
from driver.container import ContainerInfo
from driver.fifo import FrameDecoder, FrameError
from driver.options import Options
from driver.partials import Line, PartialAssembler
from driver.records import RecordBuilder
from driver.sender import Sender

log = logging.getLogger(__name__)


class StreamError(Exception):
    pass


class _FifoProtocol(asyncio.Protocol):
    def __init__(self, stream: "Stream") -> None:
        self._stream = stream

    def data_received(self, data: bytes) -> None:
        self._stream.on_data(data)

    def eof_received(self) -> bool:
        self._stream.on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stream.on_eof()


class Stream:
    def __init__(
        self,
        file: str,
        info: ContainerInfo,
        options: Options,
        directory: Path,
        retry_max_s: float,
    ) -> None:
        self.file = file
        self.info = info
        self.directory = directory
        self.name = f"{info.name or info.short_id}[{info.short_id}]"
        self._decoder = FrameDecoder()
        self._partials = PartialAssembler(options.max_line_bytes, options.partial_timeout_s)
        self._partial_timeout = options.partial_timeout_s
        self._builder = RecordBuilder(info, options)
        self.sender = Sender(
            name=self.name,
            push_url=options.push_url,
            token=options.token,
            buffer=DiskBuffer(directory / "buffer", options.buffer_bytes),
            batch_bytes=options.batch_bytes,
            batch_wait_s=options.batch_wait_s,
            retry_max_s=retry_max_s,
            drop_report=lambda n: self._builder.drop_report(n, options.buffer_bytes),
        )
        self._transport: asyncio.ReadTransport | None = None
        self._corrupt = False
        self._eof = False
        self.stop_requested = False
        self._tasks: list[asyncio.Task[None]] = []
        self.done = asyncio.Event()

    @staticmethod
    def save_start(directory: Path, body: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "start.json.tmp"
        # The log options may hold the token: only the plugin (root) may read this file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
        os.replace(tmp, directory / "start.json")

    async def attach(self) -> None:
        """Start reading the FIFO. dockerd already holds the write end, so opening cannot hang."""
        try:
            if not stat.S_ISFIFO(os.stat(self.file).st_mode):
                raise StreamError(f"{self.file} is not a FIFO")
            fd = os.open(self.file, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise StreamError(f"cannot open {self.file}: {exc.strerror}") from None
        pipe = os.fdopen(fd, "rb", buffering=0)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.connect_read_pipe(lambda: _FifoProtocol(self), pipe)
        self._tasks.append(asyncio.create_task(self._expire_partials()))
        self.start_sender()

    def start_sender(self) -> None:
        self._tasks.append(asyncio.create_task(self._run_sender()))

    def drain_only(self) -> None:
        """Resumed stream whose FIFO is gone: only deliver what the buffer holds."""
        self._eof = True
        self.sender.finish()
        self.start_sender()

    # -- reader callbacks: must never block ---------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self._corrupt:
            return  # keep draining so the container never blocks; nothing here can be trusted
        try:
            entries = self._decoder.feed(data)
        except FrameError as exc:
            self._corrupt = True
            log.error("%s: %s; discarding the rest of this stream", self.name, exc)
            return
        for entry in entries:
            for line in self._partials.add(entry):
                self._ship(line)

    def on_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        for line in self._partials.flush_all():
            self._ship(line)
        if self._decoder.pending_bytes and not self._corrupt:
            log.warning(
                "%s: FIFO closed inside a frame; %d bytes lost", self.name, self._decoder.pending_bytes
            )
        if self._decoder.bad_records:
            log.warning("%s: skipped %d undecodable records", self.name, self._decoder.bad_records)
        self.sender.finish()

    def _ship(self, line: Line) -> None:
        record = self._builder.build(line)
        if record is not None:
            self.sender.offer(record)

    async def _expire_partials(self) -> None:
        period = min(1.0, self._partial_timeout / 2)
        while not self._eof:
            await asyncio.sleep(period)
            for line in self._partials.expire():
                self._ship(line)

    async def _run_sender(self) -> None:
        while True:
            try:
                await self.sender.run()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: sender failed; restarting it", self.name)
                await asyncio.sleep(1)
        shutil.rmtree(self.directory, ignore_errors=True)
        log.info("%s: stream finished, %d lines sent", self.name, self.sender.sent)
        self.done.set()

    async def shutdown(self) -> None:
        """Plugin exit: stop reading, keep everything unsent on disk for the next start."""
        if self._transport is not None:
            self._transport.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sender.shutdown_spill()
