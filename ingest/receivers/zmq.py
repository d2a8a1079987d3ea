"""zmq-logger (goodrain `zmqlog`) receiver: a SUB socket bound to the driver's address.

Two payload layouts arrive on the same port (PROTOCOLS.md §2):
- 3 frames: tenant_id, service_id, b"<cid12>: <line>"   (the 2016 zmqlog driver)
- 1 frame:  b"<cid12>,<service32><line>"               (streamlog payload, Rainbond zmq mode)
PUB/SUB cannot acknowledge, so the receiver never blocks: it drains the socket in batches and
offers the records; anything the pipeline cannot take is counted as dropped.
"""

import asyncio
import logging
import time
from functools import lru_cache

import zmq
from zmq.backend import Socket as _BackendSocket  # the Cython socket under zmq.Socket

from ingest.receivers.base import Receiver
from ingest.record import STDOUT, Record

log = logging.getLogger(__name__)

DRAIN_BATCH = 2000
# The libzmq default receive HWM (1000) drops ~6.5% at full speed (DESIGN.md); a deep queue
# plus batch draining loses nothing.
DEFAULT_RCVHWM = 1_000_000
_CID_CHARS = frozenset(b"0123456789abcdefABCDEF")
_NOBLOCK = int(zmq.NOBLOCK)
_recv = _BackendSocket.recv  # the Cython method, without the Python layer's wrapping
# Record's positional fields between container_id and driver_id (ingest/record.py): name,
# image, host, stream, level, attrs, labels. zmq-logger sends none of them.
_NO_NAME = ("", "", "", STDOUT, None, None, None)


class PayloadError(ValueError):
    pass


def _decode_ids(tenant_raw: bytes, service_raw: bytes) -> tuple[str, str]:
    try:
        tenant = tenant_raw.decode("utf-8").strip() or "default"
        service = service_raw.decode("utf-8").strip() or "default"
    except UnicodeDecodeError as e:
        raise PayloadError(f"tenant or service id is not UTF-8: {e}") from e
    if len(tenant) > 128 or len(service) > 128:
        raise PayloadError("tenant or service id longer than 128 characters")
    return tenant, service


# A host sends the same few (tenant, service) pairs on every line; only short pairs are
# cached so that padded frames cannot pin much memory.
_decode_ids_cached = lru_cache(maxsize=4096)(_decode_ids)


def _ids(tenant_raw: bytes, service_raw: bytes) -> tuple[str, str]:
    if len(tenant_raw) + len(service_raw) > 1024:
        return _decode_ids(tenant_raw, service_raw)
    return _decode_ids_cached(tenant_raw, service_raw)


def parse_frames(frames: list[bytes]) -> tuple[str | None, str, str, bytes]:
    """-> (tenant or None, service, container_id, line bytes). Raises PayloadError."""
    if len(frames) == 3:
        tenant_raw, service_raw, payload = frames
        cid, sep, line = payload.partition(b": ")
        if not sep:
            raise PayloadError("3-frame message without '<container_id>: ' in frame 3")
        if not cid or len(cid) > 64 or not _CID_CHARS.issuperset(cid):
            raise PayloadError("container id is not 1-64 hex characters")
        tenant, service = _ids(tenant_raw, service_raw)
        return tenant, service, cid.decode("ascii"), line
    if len(frames) == 1:
        payload = frames[0]
        if len(payload) < 45 or payload[12:13] != b",":
            raise PayloadError("1-frame message is not '<cid12>,<service32><line>'")
        cid = payload[:12]
        if not _CID_CHARS.issuperset(cid):
            raise PayloadError("container id is not 12 hex characters")
        try:
            service = payload[13:45].decode("ascii")
        except UnicodeDecodeError as e:
            raise PayloadError("service id is not ASCII") from e
        return None, service, cid.decode("ascii"), payload[45:]
    raise PayloadError(f"expected 1 or 3 frames, got {len(frames)}")


def recv_frames(sock: zmq.Socket) -> list[bytes]:
    """One whole message without blocking (raises zmq.Again when none is queued).

    recv_multipart asks the socket for RCVMORE after every frame, and that option lookup goes
    through an Enum: it was half of the receive cost. A frame received without copying knows
    whether more follow; its bytes are then copied out once.
    """
    frame = _recv(sock, _NOBLOCK, False)
    frames = [frame.bytes]
    while frame.more:
        frame = _recv(sock, _NOBLOCK, False)
        frames.append(frame.bytes)
    return frames


class ZmqReceiver(Receiver):
    kind = "zmq"

    def __init__(self, driver, pipeline):
        super().__init__(driver, pipeline)
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False

    async def start(self) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, int(self.driver.options.get("rcvhwm", DEFAULT_RCVHWM)))
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.bind(self.driver.bind)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        # zmq's FD is edge-triggered: after each wake-up, drain until EAGAIN (in slices, so
        # other receivers on this loop get their turn).
        self._loop.add_reader(sock.getsockopt(zmq.FD), self._schedule)
        self._schedule()

    @property
    def endpoint(self) -> str:
        return self._sock.getsockopt(zmq.LAST_ENDPOINT).decode() if self._sock else ""

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        sock = self._sock
        if sock is None:
            return
        records = []
        fixed_tenant = self.driver.tenant
        driver_id = self.driver.id
        now = time.time_ns()
        nbytes = 0
        for _ in range(DRAIN_BATCH):
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                break
            try:
                tenant, service, cid, line = parse_frames(frames)
            except PayloadError as e:
                self.malformed(str(e))
                continue
            nbytes += len(line)
            records.append(
                Record(
                    line, None, now, fixed_tenant or tenant or "default", service, cid, *_NO_NAME, driver_id
                )
            )
        else:
            self._schedule()
        if records:
            self.stats.received += len(records)
            self.stats.bytes += nbytes
            self.stats.dropped += self.pipeline.offer_many(records)
        if not self._scheduled and sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._schedule()

    async def stop(self) -> None:
        if self._sock is None:
            return
        self._loop.remove_reader(self._sock.getsockopt(zmq.FD))
        self._drain()  # take what already arrived before closing
        self._sock.close(linger=0)
        self._sock = None
