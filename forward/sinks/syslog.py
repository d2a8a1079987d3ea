"""syslog drain sink: RFC 5424 messages over TCP (RFC 6587 octet counting) or TLS (RFC 5425).

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG

APP-NAME is the service (else the container name), PROCID the container name (else the short
container id), MSGID the stream, TIMESTAMP the line's own time with microseconds, severity the
stored level (else err for stderr, info for stdout). Header fields allow only printable
US-ASCII without spaces; anything else becomes "_", and each is cut to its RFC length.

Delivery: syslog has no application-level acknowledgement. The sink therefore counts rows as
sent only once the peer's TCP stack has acknowledged every byte (the socket's unacknowledged
send queue, SIOCOUTQ, is empty) and the connection is still healthy. That is as close to an ack
as the protocol allows: a crash of the receiver after that point can still lose lines, which is
the drain's own durability. Writes go in chunks so a failure repeats at most one chunk.

One connection per drain, kept between sends (one sink per target per worker process), and
re-opened when the receiver closed it or a write failed.
"""

import contextlib
import fcntl
import os
import select
import socket
import ssl
import struct
import tempfile
import termios
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from forward.sinks.errors import SinkFinalError, SinkRetryableError

SCHEMES = {"tcp": False, "syslog": False, "tls": True, "syslog-tls": True}
CHUNK_BYTES = 256 * 1024
MIN_MESSAGE_BYTES = 480  # RFC 5424 §6.1: every receiver accepts this much
FACILITY_USER = 1
_PRINTUSASCII = bytes(range(33, 127))
_HEADER_TABLE = bytes(c if c in _PRINTUSASCII else ord("_") for c in range(256))


@dataclass(frozen=True)
class DrainAddress:
    tls: bool
    host: str
    port: int


def parse_drain_url(url: str) -> DrainAddress:
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError("the drain URL must start with tcp:// or tls://")
    try:
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad port in drain URL: {e}") from e
    if not parts.hostname or not port:
        raise ValueError("the drain URL needs a host and a port, e.g. tls://logs.example.com:6514")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError("the drain URL takes only scheme://host:port")
    return DrainAddress(SCHEMES[parts.scheme], parts.hostname, port)


def header_field(value: str, limit: int) -> bytes:
    if not value:
        return b"-"
    data = value.encode("utf-8", "replace").translate(_HEADER_TABLE)[:limit]
    return data or b"-"


def cut_utf8(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode()


class Rfc5424:
    """Rows → octet-counted RFC 5424 frames."""

    def __init__(self, facility: int = FACILITY_USER, max_bytes: int = 8192, hostname: str = "-"):
        if not 0 <= facility <= 23:
            raise ValueError("facility must be 0..23")
        self.facility = facility
        self.max_bytes = max(max_bytes, MIN_MESSAGE_BYTES)
        self.hostname = hostname
        self._second = -1
        self._stamp = ""
        self._heads: dict[tuple, bytes] = {}

    def timestamp(self, ts_ns: int) -> str:
        seconds, rest = divmod(ts_ns, 1_000_000_000)
        if seconds != self._second:
            self._second = seconds
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{self._stamp}.{rest // 1000:06d}Z"

    def _head(self, row) -> bytes:
        """Everything after the timestamp up to MSG; the same for every line of a container."""
        key = (row.host, row.service, row.container_name, row.container_id, row.stream)
        head = self._heads.get(key)
        if head is None:
            name = (row.container_name or "").lstrip("/")
            app = row.service or name
            procid = name if row.service else (row.container_id or "")[:12]
            head = b" ".join(
                [
                    b"",
                    header_field(row.host or self.hostname, 255),
                    header_field(app, 48),
                    header_field(procid, 128),
                    header_field(row.stream or "", 32),
                    b"-",
                    b"",
                ]
            )
            if len(self._heads) > 4096:
                self._heads.clear()
            self._heads[key] = head
        return head

    def message(self, row) -> bytes:
        severity = row.level if row.level is not None else (3 if row.stream == "stderr" else 6)
        line = row.line
        if isinstance(line, str):
            line = line.encode("utf-8", "replace")
        head = b"<%d>1 " % (self.facility * 8 + (severity & 7)) + self.timestamp(row.ts_ns).encode()
        head += self._head(row)
        return head + cut_utf8(line, self.max_bytes - len(head))

    def frame(self, row) -> bytes:
        msg = self.message(row)
        return b"%d %s" % (len(msg), msg)


def tls_context(
    ca_pem: str = "", verify: bool = True, cert_pem: str = "", key_pem: str = ""
) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cadata=ca_pem or None)
        if not ca_pem:
            ctx.load_default_certs()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert_pem:
            # load_cert_chain reads files only; the key exists on disk just for this call.
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "client.pem")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(cert_pem.strip() + "\n" + key_pem.strip() + "\n")
                ctx.load_cert_chain(path)
    except (ssl.SSLError, ValueError) as e:
        raise SinkFinalError(f"TLS settings are invalid: {e}") from e
    return ctx


class SyslogSink:
    def __init__(
        self,
        url: str,
        *,
        formatter: Rfc5424 | None = None,
        context: ssl.SSLContext | None = None,
        server_name: str = "",
        connect_timeout: float = 10.0,
        write_timeout: float = 30.0,
        chunk_bytes: int = CHUNK_BYTES,
    ):
        self.address = parse_drain_url(url)
        self.formatter = formatter or Rfc5424()
        self.context = context or (tls_context() if self.address.tls else None)
        self.server_name = server_name or self.address.host
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.chunk_bytes = chunk_bytes
        self._sock: socket.socket | None = None
        self.connects = 0

    # --- connection --------------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        addr = self.address
        try:
            sock = socket.create_connection((addr.host, addr.port), timeout=self.connect_timeout)
        except OSError as e:
            raise SinkRetryableError(f"cannot connect to {addr.host}:{addr.port}: {e}") from e
        if addr.tls:
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.server_name)
            except ssl.SSLCertVerificationError as e:
                sock.close()
                raise SinkFinalError(f"TLS certificate of {addr.host}:{addr.port} refused: {e}") from e
            except (ssl.SSLError, OSError) as e:
                sock.close()
                raise SinkRetryableError(f"TLS handshake with {addr.host}:{addr.port} failed: {e}") from e
        sock.settimeout(self.write_timeout)
        self.connects += 1
        return sock

    def _peer_gone(self, sock: socket.socket) -> bool:
        """True when the receiver closed the connection (or reset it) since we last wrote."""
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
        if not pending and not select.select([sock], [], [], 0)[0]:
            return False
        try:
            sock.setblocking(False)
            # Syslog receivers send nothing; TLS 1.3 session tickets are consumed here too.
            return sock.recv(4096) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self.write_timeout)

    def connection(self) -> socket.socket:
        if self._sock is not None and self._peer_gone(self._sock):
            self.close()
        if self._sock is None:
            self._sock = self._connect()
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _wait_acked(self, sock: socket.socket) -> None:
        deadline = time.monotonic() + self.write_timeout
        buf = bytearray(4)
        delay = 0.0005
        while True:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
            if struct.unpack("i", buf)[0] == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the receiver did not acknowledge the data in time")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error or self._peer_gone(sock):
            raise ConnectionResetError(error, "the receiver closed the connection")

    # --- sending -----------------------------------------------------------------------------
    def send(self, rows) -> int:
        sent = 0
        frames: list[bytes] = []
        size = 0
        try:
            for row in rows:
                frame = self.formatter.frame(row)
                frames.append(frame)
                size += len(frame)
                if size >= self.chunk_bytes:
                    self._write(frames)
                    sent += len(frames)
                    frames, size = [], 0
            if frames:
                self._write(frames)
                sent += len(frames)
        except SinkRetryableError as e:
            e.rows_sent = sent
            raise
        except SinkFinalError as e:
            e.rows_sent = sent
            raise
        return sent

    def _write(self, frames: list[bytes]) -> None:
        sock = self.connection()
        try:
            sock.sendall(b"".join(frames))
            self._wait_acked(sock)
        except (OSError, ssl.SSLError) as e:
            self.close()
            addr = self.address
            raise SinkRetryableError(f"writing to {addr.host}:{addr.port} failed: {e}") from e
