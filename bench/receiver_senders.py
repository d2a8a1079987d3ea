"""Senders for bench/receivers.py: each builds its whole payload first, then sends on a signal.

Every sender runs in its own process (multiprocessing, spawn) so that building and sending do
not share a CPU budget with the ingest process beyond what the machine imposes. The payloads
mimic what the real senders put on the wire: Docker's gelf/syslog/fluentd/splunk drivers,
systemd-journal-upload, zmq-logger, and the HTTP push API.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

CONTAINERS = 100
LINE_BYTES = 120
_FILLER = b"GET /api/v1/items?page=7&sort=desc HTTP/1.1 200 1532 0.004 upstream=app-7 request_id="


def container_id(i: int) -> str:
    return f"{i % CONTAINERS:012x}".rjust(12, "0") + "c" * 52


def line(i: int) -> bytes:
    head = b"%010d " % i
    body = _FILLER + b"r" * LINE_BYTES
    return (head + body)[:LINE_BYTES]


def syslog_rfc5424(i: int, stamp: str) -> bytes:
    """Docker's syslog driver, syslog-format=rfc5424, default tag {{.ID}}."""
    cid = container_id(i)[:12]
    return b"<30>1 %s bench-host %s 812 %s - %s\n" % (stamp.encode(), cid.encode(), cid.encode(), line(i))


def syslog_stream(n: int) -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return b"".join(syslog_rfc5424(i, stamp) for i in range(n))


def gelf_json(i: int, now: float) -> bytes:
    cid = container_id(i)
    return json.dumps(
        {
            "version": "1.1",
            "host": "bench-host",
            "short_message": line(i).decode(),
            "timestamp": round(now, 3),
            "level": 6,
            "_container_id": cid,
            "_container_name": f"web-{i % CONTAINERS}",
            "_image_name": "nginx:1.27",
            "_image_id": "sha256:" + "a" * 64,
            "_command": "nginx -g daemon off;",
            "_tag": cid[:12],
            "_created": "2026-01-01T00:00:00.000000000Z",
        },
        separators=(",", ":"),
    ).encode()


def fluentd_entry(i: int, now: int) -> list:
    cid = container_id(i)
    record = {"container_id": cid, "container_name": f"/web-{i % CONTAINERS}", "source": "stdout"}
    return [now, {**record, "log": line(i)}]


def splunk_event(i: int, now: float) -> bytes:
    return json.dumps(
        {
            "event": {"line": line(i).decode(), "source": "stdout", "tag": container_id(i)[:12]},
            "time": f"{now:.6f}",
            "host": "bench-host",
        },
        separators=(",", ":"),
    ).encode()


def journal_entry(i: int, boot: str, now_us: int) -> bytes:
    cid = container_id(i)
    fields = (
        f"__CURSOR=s={boot};i={i + 1:x};b={boot};m={i:x};t={now_us + i:x};x={i:x}\n"
        f"__REALTIME_TIMESTAMP={now_us + i}\n__MONOTONIC_TIMESTAMP={i}\n_BOOT_ID={boot}\n"
        f"PRIORITY=6\nCONTAINER_ID={cid[:12]}\nCONTAINER_ID_FULL={cid}\nCONTAINER_NAME=web-{i % CONTAINERS}\n"
        f"IMAGE_NAME=nginx:1.27\nSYSLOG_IDENTIFIER={cid[:12]}\n_HOSTNAME=bench-host\n"
    ).encode()
    return fields + b"MESSAGE=" + line(i) + b"\n\n"


def push_object(i: int) -> bytes:
    record = {"container_id": container_id(i), "container_name": f"web-{i % CONTAINERS}"}
    return json.dumps({"line": line(i).decode(), **record}, separators=(",", ":")).encode()


# --- senders: build(n, target) -> send() -----------------------------------------------------


def _tcp_stream(payload: bytes, address: tuple[str, int]) -> Callable[[], None]:
    conn = socket.create_connection(address)

    def send() -> None:
        view = memoryview(payload)
        for start in range(0, len(view), 256 * 1024):
            conn.sendall(view[start : start + 256 * 1024])
        conn.close()

    return send


def _tcp_streams(payload: bytes, addresses: list[tuple[str, int]]) -> Callable[[], None]:
    """The stream cut at line ends into one part per address, sent at once (many containers)."""
    parts, start = [], 0
    for i in range(1, len(addresses) + 1):
        end = (
            len(payload)
            if i == len(addresses)
            else payload.index(b"\n", len(payload) * i // len(addresses)) + 1
        )
        parts.append(payload[start:end])
        start = end
    sends = [_tcp_stream(part, address) for part, address in zip(parts, addresses, strict=True)]

    def send() -> None:
        threads = [threading.Thread(target=one) for one in sends]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return send


def _udp(datagrams: list[bytes], address: tuple[str, int]) -> Callable[[], None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(address)

    def send() -> None:
        for datagram in datagrams:
            # ENOBUFS/ECONNREFUSED: the datagram is lost, as it would be for a real sender.
            with contextlib.suppress(OSError):
                sock.send(datagram)
        sock.close()

    return send


def _concurrently(requests: list, workers: int, one: Callable) -> Callable[[], None]:
    local = threading.local()

    def send() -> None:
        with ThreadPoolExecutor(workers) as pool:
            for failed in pool.map(lambda r: one(local, r), requests):
                if failed:
                    raise RuntimeError(failed)

    return send


def _http_post(address, path: str, headers: dict) -> Callable:
    def one(local, body: bytes) -> str | None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(*address, timeout=120)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        return None if response.status == 200 else f"{response.status} {answer[:200]!r}"

    return one


def _batches(n: int, size: int, encode: Callable[[int], bytes], separator: bytes) -> list[bytes]:
    return [separator.join(encode(i) for i in range(s, min(s + size, n))) for s in range(0, n, size)]


def build(kind: str, n: int, address: tuple[str, int], token: str, workers: int) -> Callable[[], None]:
    now = time.time()
    if kind == "syslog-tcp":
        if isinstance(address[0], list | tuple):  # several receiving processes
            return _tcp_streams(syslog_stream(n), [tuple(a) for a in address])
        return _tcp_stream(syslog_stream(n), address)
    if kind == "syslog-udp":
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        return _udp([syslog_rfc5424(i, stamp) for i in range(n)], address)
    if kind == "gelf-udp":
        # Docker's default: gzip at level 1, one datagram per line (no chunking at this size).
        return _udp([gzip.compress(gelf_json(i, now), 1) for i in range(n)], address)
    if kind == "gelf-tcp":
        return _tcp_stream(b"".join(gelf_json(i, now) + b"\0" for i in range(n)), address)
    if kind == "fluentd":
        return _fluentd(n, address, workers)
    if kind == "splunk":
        bodies = _batches(n, 1000, lambda i: splunk_event(i, now), b"")
        headers = {"Authorization": f"Splunk {token}"}
        return _concurrently(bodies, workers, _http_post(address, "/services/collector/event/1.0", headers))
    if kind == "http":
        bodies = _batches(n, 1000, push_object, b"\n")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        return _concurrently(bodies, workers, _http_post(address, "/api/v1/push", headers))
    if kind == "journal":
        return _journal(n, address, token)
    if kind == "zmq":
        return _zmq(n, address)
    raise ValueError(f"unknown sender {kind}")


def _fluentd(n: int, address, workers: int) -> Callable[[], None]:
    """PackedForward chunks of 2000 events with an ack each, as fluent-bit and out_forward send."""
    import msgpack

    now = int(time.time())
    chunks = []
    for start in range(0, n, 2000):
        packed = b"".join(msgpack.packb(fluentd_entry(i, now)) for i in range(start, min(start + 2000, n)))
        chunk = base64.b64encode(secrets.token_bytes(16)).decode()
        option = {"size": min(2000, n - start), "chunk": chunk}
        chunks.append((msgpack.packb(["docker.bench", packed, option], use_bin_type=True), chunk))

    def one(local, item) -> str | None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = socket.create_connection(address)
            local.unpacker = msgpack.Unpacker()
        data, chunk = item
        conn.sendall(data)
        while (reply := next(local.unpacker, None)) is None:
            received = conn.recv(4096)
            if not received:
                return "connection closed before the ack"
            local.unpacker.feed(received)
        return None if reply == {"ack": chunk} else f"wrong ack {reply!r}"

    return _concurrently(chunks, workers, one)


def _journal(n: int, address, token: str) -> Callable[[], None]:
    """One chunked POST carrying every entry, as systemd-journal-upload sends a backlog."""
    boot = secrets.token_hex(16)
    now_us = time.time_ns() // 1000
    body = b"".join(journal_entry(i, boot, now_us) for i in range(n))
    auth = base64.b64encode(f"logsite:{token}".encode()).decode()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    def send() -> None:
        conn = http.client.HTTPConnection(*address, timeout=600)
        headers = {"Content-Type": "application/vnd.fdo.journal", "Authorization": f"Basic {auth}"}
        conn.request("POST", "/upload", body=pieces(), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"journal upload answered {response.status} {response.read()[:200]!r}")

    return send


def _zmq(n: int, address) -> Callable[[], None]:
    import zmq

    sock = zmq.Context.instance().socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 0)  # never drop on our side: what is lost is lost at the receiver
    sock.connect(f"tcp://{address[0]}:{address[1]}")
    messages = [(b"bench", b"svc", container_id(i)[:12].encode() + b": " + line(i)) for i in range(n)]
    time.sleep(1)  # PUB/SUB: the subscription must reach us before the first message counts

    def send() -> None:
        for frames in messages:
            sock.send_multipart(frames)
        sock.close(linger=-1)

    return send


def run(kind: str, n: int, address, token: str, workers: int, ready, go, results) -> None:
    """Process entry point: build, report ready, wait for go, send, report the sending time."""
    try:
        send = build(kind, n, tuple(address), token, workers)
        ready.set()
        go.wait()
        started = time.perf_counter()
        send()
        results.put((os.getpid(), "ok", time.perf_counter() - started))
    except BaseException as exc:
        ready.set()
        results.put((os.getpid(), "error", f"{type(exc).__name__}: {exc}"))
        raise
