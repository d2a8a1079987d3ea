"""Plays dockerd's side of the logging-plugin protocol, byte for byte where it matters.

Requests are written by hand as Go's net/http client sends them: HTTP/1.1 on the unix socket,
Host plugin.moby.localhost, the plugin Accept header, no Content-Type, a JSON body ending in a
newline (Go's json.Encoder) or an empty body with Content-Length 0. FIFOs are made with mkfifo
and opened read-write non-blocking, as dockerd opens them.
"""

import errno
import http.client
import json
import os
import secrets
import select
import socket
import struct
import time
from pathlib import Path
from typing import Any

from driver.fifo import encode_frame
from driver.logentry import LogEntry
from tests.driver.dockerd_split import entries_for_line

ACCEPT = "application/vnd.docker.plugins.v1.2+json"


class WriterBlocked(AssertionError):
    pass


def request(
    socket_path: Path, method: str, body: Any = None, timeout: float = 30
) -> http.client.HTTPResponse:
    raw = b"" if body is None else json.dumps(body).encode() + b"\n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(socket_path))
    head = (
        f"POST /{method} HTTP/1.1\r\n"
        "Host: plugin.moby.localhost\r\n"
        "User-Agent: Go-http-client/1.1\r\n"
        f"Content-Length: {len(raw)}\r\n"
        f"Accept: {ACCEPT}\r\n"
        "Accept-Encoding: gzip\r\n"
        "\r\n"
    )
    sock.sendall(head.encode() + raw)
    resp = http.client.HTTPResponse(sock, method="POST")
    resp.begin()
    return resp


def call(socket_path: Path, method: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    resp = request(socket_path, method, body)
    try:
        return resp.status, json.loads(resp.read())
    finally:
        resp.close()


def read_frames(resp: http.client.HTTPResponse, limit: int | None = None) -> list[LogEntry]:
    """Frames of a ReadLogs answer, until EOF or `limit` entries."""
    out: list[LogEntry] = []
    while limit is None or len(out) < limit:
        head = resp.read(4)
        if not head:
            break
        (size,) = struct.unpack(">I", head)
        entry = LogEntry()
        entry.ParseFromString(resp.read(size))
        out.append(entry)
    return out


def info(container_id: str | None = None, opts: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "Config": opts or {},
        "ContainerID": container_id or secrets.token_hex(32),
        "ContainerName": "/web-1",
        "ContainerEntrypoint": "/bin/sh",
        "ContainerArgs": ["-c", "echo hi"],
        "ContainerImageID": "sha256:" + "a" * 64,
        "ContainerImageName": "busybox:latest",
        "ContainerCreated": "2026-01-02T03:04:05.123456789Z",
        "ContainerEnv": ["PATH=/bin"],
        "ContainerLabels": {},
        "LogPath": "",
        "DaemonName": "docker",
        **extra,
    }


class DockerdFifo:
    def __init__(self, directory: Path) -> None:
        self.path = directory / secrets.token_hex(32)
        os.mkfifo(self.path, 0o600)
        self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def write(self, data: bytes, deadline_s: float = 120) -> None:
        """Write all of data. Fails if the reader leaves the pipe full for deadline_s: that is a
        container blocked on its stdout, the thing the plugin must never cause."""
        assert self.fd is not None
        view = memoryview(data)
        give_up = time.monotonic() + deadline_s
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                left = give_up - time.monotonic()
                if left <= 0:
                    raise WriterBlocked(
                        f"pipe stayed full for {deadline_s}s: the container would block"
                    ) from None
                select.select([], [self.fd], [], min(left, 1.0))
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    raise

    def entry(self, line: bytes, time_nano: int | None = None, source: str = "stdout") -> None:
        ts = time.time_ns() if time_nano is None else time_nano
        self.write(b"".join(encode_frame(e) for e in entries_for_line(line, ts, source)))

    def close(self) -> None:
        """What dockerd does after StopLogging returns: close its end and unlink the file."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.path.unlink(missing_ok=True)
