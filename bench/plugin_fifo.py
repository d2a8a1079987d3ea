"""Throughput of the Logsite logging plugin alone, without dockerd: FIFO in, HTTP push out.

    python bench/plugin_fifo.py [--lines 200000] [--width 100]

Prints lines/s from the FIFO into a local push sink (a minimal HTTP server that only counts
lines, so the figure is the plugin's, not Logsite's), and the write rate into the FIFO while
the push target refuses connections (it must not fall: the container never waits for Logsite).
bench/plugin.py measures the same under a real dockerd, next to json-file, into a real Logsite.
"""

import argparse
import gzip
import http.client
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from driver.fifo import encode_frame  # noqa: E402
from driver.logentry import LogEntry  # noqa: E402


class CountingSink:
    def __init__(self) -> None:
        self.lines = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = gzip.decompress(self.rfile.read(int(self.headers["Content-Length"])))
                sink.lines += body.count(b"\n")
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def call(sock_path: Path, method: str, body: dict) -> dict:
    raw = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock_path))
        head = f"POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nContent-Length: {len(raw)}\r\n\r\n"
        s.sendall(head.encode() + raw)
        resp = http.client.HTTPResponse(s, method="POST")
        resp.begin()
        return json.loads(resp.read())


def start_plugin(work: Path, url: str) -> tuple[subprocess.Popen, Path]:
    sock = work / "p.sock"
    env = {**os.environ, "LOGSITE_PLUGIN_SOCKET": str(sock), "LOGSITE_STATE_DIR": str(work / "state")}
    env.update(LOGSITE_URL=url, LOGSITE_TOKEN="bench", LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "driver"], cwd=REPO, env=env)
    while not sock.exists():
        time.sleep(0.05)
    return proc, sock


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def run(lines: int, width: int, url: str, work: Path, opts: dict) -> tuple[float, int, subprocess.Popen]:
    """Write `lines` frames into a FIFO the plugin reads; returns the write time and size."""
    proc, sock = start_plugin(work, url)
    fifo = work / secrets.token_hex(32)
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    info = {"ContainerID": secrets.token_hex(32), "ContainerName": "/bench", "Config": opts}
    assert call(sock, "LogDriver.StartLogging", {"File": str(fifo), "Info": info}) == {"Err": ""}
    payload = b"x" * width
    data = b"".join(encode_frame(LogEntry(source="stdout", time_nano=i, line=payload)) for i in range(lines))
    start = time.perf_counter()
    write_all(fd, data)
    wrote = time.perf_counter() - start
    call(sock, "LogDriver.StopLogging", {"File": str(fifo)})
    os.close(fd)
    return wrote, len(data), proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--width", type=int, default=100)
    args = parser.parse_args()

    sink = CountingSink()
    with tempfile.TemporaryDirectory(prefix="lsb") as tmp:
        start = time.perf_counter()
        _, size, proc = run(args.lines, args.width, sink.url, Path(tmp), {})
        while sink.lines < args.lines:
            time.sleep(0.01)
        took = time.perf_counter() - start
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        rate = f"{args.lines / took:,.0f} lines/s, {size / took / 1e6:.1f} MB/s"
        print(f"fifo -> push: {rate} ({args.width}-byte lines)")

    with tempfile.TemporaryDirectory(prefix="lsb") as tmp:
        refused = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused
        wrote, size, proc = run(args.lines, args.width, refused, Path(tmp), {"buffer-size": "1g"})
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        rate = f"{args.lines / wrote:,.0f} lines/s, {size / wrote / 1e6:.1f} MB/s"
        print(f"container write rate while the push target refuses connections: {rate}")


if __name__ == "__main__":
    main()
