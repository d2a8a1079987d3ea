"""The syslog drain sink: RFC 5424 framing (hypothesis), and the sink over real TCP and TLS
sockets: delivery, reconnect after the receiver closed, refusal, certificate checks."""

import contextlib
import socket
import ssl
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forward.sinks.errors import SinkFinalError, SinkRetryableError
from forward.sinks.syslog import Rfc5424, SyslogSink, parse_drain_url, tls_context
from tests.forward.support import make_row
from tests.support.rsyslog import make_certificates

HEADER_LIMITS = (255, 48, 128, 32)  # HOSTNAME, APP-NAME, PROCID, MSGID


def split_message(msg: bytes) -> tuple[list[bytes], bytes]:
    """(the header fields PRI+VERSION … STRUCTURED-DATA, MSG) of one RFC 5424 message."""
    parts = msg.split(b" ", 7)
    return parts[:7], parts[7] if len(parts) > 7 else b""


def test_it_formats_rfc5424_with_the_lines_own_time():
    row = make_row(3, line="disk full", stream="stderr", level=None, host="node-1", service="api")
    msg = Rfc5424().message(row)
    assert msg == b"<11>1 2023-11-14T22:13:20.123456Z node-1 api web-1 stderr - disk full"


def test_it_names_the_app_after_the_container_without_a_service():
    row = make_row(0, service="", container_name="/worker-2", container_id="abcdef0123456789", level=6)
    fields, _ = split_message(Rfc5424().message(row))
    assert fields[0] == b"<14>1"
    assert fields[3:5] == [b"worker-2", b"abcdef012345"]


@settings(max_examples=300, deadline=None)
@given(
    line=st.text(max_size=3000),
    host=st.text(max_size=300),
    service=st.text(max_size=100),
    name=st.text(max_size=200),
    stream=st.text(max_size=50),
    level=st.one_of(st.none(), st.integers(0, 7)),
    max_bytes=st.integers(480, 4096),
)
def test_frames_are_well_formed_whatever_the_input(line, host, service, name, stream, level, max_bytes):
    row = make_row(0, line=line, host=host, service=service, container_name=name, stream=stream, level=level)
    frame = Rfc5424(max_bytes=max_bytes).frame(row)
    length, _, msg = frame.partition(b" ")
    assert int(length) == len(msg)
    assert len(msg) <= max_bytes
    fields, body = split_message(msg)
    for value, limit in zip(fields[2:6], HEADER_LIMITS, strict=True):
        assert 1 <= len(value) <= limit
        assert all(33 <= c <= 126 for c in value)
    assert fields[6] == b"-"
    text = body.decode("utf-8")  # cut at a character boundary, never inside one
    encoded = line.encode("utf-8", "replace").decode("utf-8")
    assert encoded.startswith(text)


@pytest.mark.parametrize(
    "url",
    ["udp://h:514", "tcp://h", "tcp://:514", "http://h:514", "tcp://h:514/x", "tcp://h:99999", "tcp://u@h:5"],
)
def test_it_refuses_bad_drain_urls(url):
    with pytest.raises(ValueError, match="drain URL"):
        parse_drain_url(url)


class Receiver:
    """A TCP (or TLS) server collecting octet-counted frames; can drop its connections."""

    def __init__(self, context: ssl.SSLContext | None = None):
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames: list[bytes] = []
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.context is not None:
                try:
                    conn = self.context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b" " in buf:
                length, _, rest = buf.partition(b" ")
                if len(rest) < int(length):
                    break
                with self.lock:
                    self.frames.append(rest[: int(length)])
                buf = rest[int(length) :]

    def drop_connections(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            # shutdown() sends the FIN even while the reader thread sits in recv().
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self):
        self.listener.close()
        self.drop_connections()

    def wait(self, n: int, timeout: float = 10) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.frames) >= n:
                    return list(self.frames)
            time.sleep(0.01)
        raise AssertionError(f"{len(self.frames)} of {n} frames arrived")


def lines_of(frames: list[bytes]) -> list[str]:
    return [split_message(f)[1].decode() for f in frames]


def test_it_delivers_in_order_over_one_connection():
    receiver = Receiver()
    sink = SyslogSink(f"tcp://127.0.0.1:{receiver.port}", chunk_bytes=4096)
    try:
        rows = [make_row(i, line=f"line {i}") for i in range(2000)]
        assert sink.send(rows[:1000]) == 1000
        assert sink.send(rows[1000:]) == 1000
        assert lines_of(receiver.wait(2000)) == [f"line {i}" for i in range(2000)]
        assert receiver.accepted == 1
    finally:
        sink.close()
        receiver.close()


def test_it_reconnects_when_the_receiver_closed_the_connection():
    receiver = Receiver()
    sink = SyslogSink(f"tcp://127.0.0.1:{receiver.port}")
    try:
        sink.send([make_row(i, line=f"a {i}") for i in range(10)])
        receiver.wait(10)
        receiver.drop_connections()
        time.sleep(0.2)  # the FIN reaches the sink's socket
        assert sink.send([make_row(i, line=f"b {i}") for i in range(10)]) == 10
        frames = receiver.wait(20)
        assert lines_of(frames) == [f"a {i}" for i in range(10)] + [f"b {i}" for i in range(10)]
        assert sink.connects == 2
    finally:
        sink.close()
        receiver.close()


def test_a_refused_connection_is_retryable_and_sends_nothing():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    sink = SyslogSink(f"tcp://127.0.0.1:{port}")
    with pytest.raises(SinkRetryableError) as info:
        sink.send([make_row(0)])
    assert info.value.rows_sent == 0


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def server_context(certs) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["server.pem"], certs["server.key"])
    return ctx


def test_it_delivers_over_tls_with_the_given_ca(certs):
    receiver = Receiver(server_context(certs))
    ctx = tls_context(certs["ca.pem"].read_text())
    sink = SyslogSink(f"tls://127.0.0.1:{receiver.port}", context=ctx)
    try:
        assert sink.send([make_row(i, line=f"secret {i}") for i in range(100)]) == 100
        assert lines_of(receiver.wait(100)) == [f"secret {i}" for i in range(100)]
    finally:
        sink.close()
        receiver.close()


def test_an_untrusted_certificate_is_a_final_error(certs):
    receiver = Receiver(server_context(certs))
    sink = SyslogSink(f"tls://127.0.0.1:{receiver.port}", context=tls_context())  # system CAs only
    try:
        with pytest.raises(SinkFinalError) as info:
            sink.send([make_row(0)])
        assert "certificate" in str(info.value)
        assert receiver.frames == []
    finally:
        receiver.close()


def test_bad_tls_settings_are_a_final_error():
    with pytest.raises(SinkFinalError):
        tls_context("not a certificate")
