"""Socket plumbing shared by the UDP/TCP receivers (gelf, syslog, fluentd).

A driver's bind is `udp://host:port`, `tcp://host:port`, or `host:port` for both on the same
port (the usual setup for GELF and syslog). Subclasses only say what to do with a datagram
and with a connection's byte stream; start/stop, address parsing and stamping records with
the driver's tenant live here.
"""

import asyncio
import contextlib
import logging
import time

from ingest.receivers.base import Receiver
from ingest.record import Record

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
TICK_S = 1.0
ROOM_POLL_S = 0.005


def parse_bind(bind: str, allowed: frozenset[str]) -> tuple[set[str], str, int]:
    """-> (transports, host, port). A bare address means every allowed transport."""
    scheme, sep, address = bind.rpartition("://")
    if sep and scheme not in allowed:
        raise ValueError(f"bind {bind!r}: scheme must be one of {sorted(allowed)}")
    host, colon, port = address.rpartition(":")
    if not colon:
        raise ValueError(f"bind address {bind!r} has no port")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"bind address {bind!r} has a bad port") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"bind address {bind!r} has a bad port")
    return ({scheme} if sep else set(allowed)), (host.strip("[]") or "0.0.0.0"), number


def owned_by(record: Record, driver) -> Record:
    """Stamp a decoded record with the driver it came through and that driver's tenant."""
    record.tenant = driver.tenant or "default"
    record.driver_id = driver.id
    return record


def check_options(options: dict, known: set[str]) -> None:
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"unknown driver options {sorted(unknown)}; known: {sorted(known)}")


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, handle):
        self._handle = handle

    def datagram_received(self, data: bytes, addr) -> None:
        self._handle(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp receive error: %s", exc)


class SocketReceiver(Receiver):
    transports: frozenset[str] = frozenset({"udp", "tcp"})

    def __init__(self, driver, pipeline):
        super().__init__(driver, pipeline)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None
        self.addresses: dict[str, tuple] = {}

    # --- for subclasses ----------------------------------------------------------------------
    def datagram(self, data: bytes, peer: str) -> None:
        raise NotImplementedError

    async def stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Called every TICK_S seconds (expire reassembly state)."""

    def own(self, record: Record) -> Record:
        return owned_by(record, self.driver)

    def offer(self, records: list[Record], nbytes: int) -> None:
        """Hand records on without waiting; what the queue cannot take is counted as dropped."""
        if records:
            self.stats.received += len(records)
            self.stats.bytes += nbytes
            self.stats.dropped += self.pipeline.offer_many(records)

    async def offer_waiting(self, records: list[Record], nbytes: int) -> None:
        """For a TCP stream: while the queue has no room, stop reading instead of dropping.

        The sender cannot be acknowledged, but it can be slowed down: TCP flow control holds it
        back (Docker's syslog and gelf drivers then block or buffer, as they do for any slow
        server) and nothing is lost. A datagram cannot wait, so UDP keeps offer()."""
        step = max(self.pipeline.queue_limit // 2, 1)  # one read may hold more than the queue
        for start in range(0, len(records), step):
            part = records[start : start + step]
            while not self.pipeline.has_room(len(part)) and not self.pipeline.closed:
                await asyncio.sleep(ROOM_POLL_S)
            self.offer(part, nbytes if start == 0 else 0)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        transports, host, port = parse_bind(self.driver.bind, self.transports)
        loop = asyncio.get_running_loop()
        try:
            if "tcp" in transports:
                self._tcp = await asyncio.start_server(
                    self._accept, host, port, reuse_address=True, reuse_port=self.reuse_port or None
                )
                port = port or self._tcp.sockets[0].getsockname()[1]
                self.addresses["tcp"] = self._tcp.sockets[0].getsockname()
            if "udp" in transports:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self._datagram), local_addr=(host, port)
                )
                self.addresses["udp"] = self._udp.get_extra_info("sockname")
        except BaseException:
            await self.stop()
            raise
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.tick(time.monotonic())
            except Exception:
                log.exception("driver %s: periodic work failed", self.driver.name)

    def _datagram(self, data: bytes, addr) -> None:
        try:
            self.datagram(data, addr[0] if addr else "")
        except Exception:
            # A bug must not take the listener down with it; it shows in the log and counters.
            log.exception("driver %s: datagram handling failed", self.driver.name)
            self.malformed("internal error handling a datagram")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self.stream(reader, writer, peer[0] if peer else "")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("driver %s: connection handling failed", self.driver.name)
            self.malformed("internal error handling a connection")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
