"""A small real HTTP server standing in for Logsite's push and read endpoints in unit tests.

It checks what Logsite checks on push (Bearer token, gzip, NDJSON or JSON array, `line` present)
and records every accepted batch. It can refuse connections (stopped), answer an error status,
or accept connections and never answer (hang), which is how a sick server looks to a client.
"""

import gzip
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from driver.timefmt import format_rfc3339_ns, parse_rfc3339_ns


class LogsitePeer:
    def __init__(self, token: str = "t0ken") -> None:
        self.token = token
        self.records: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []
        self.status: int | None = None  # answer every push with this status instead of 200
        self.page_size = 1000
        self.port = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()
        self.hang = False
        self.poison: str | None = None  # answer 400 to any batch with a line containing this

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                peer._push(self)

            def do_GET(self) -> None:
                peer._read(self)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listener: clients get connection refused from now on."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._release = threading.Event()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
        give_up = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > give_up:
                raise AssertionError(f"timed out waiting for {what}; have {len(self.records)} records")
            time.sleep(0.05)

    def lines(self, container_id: str | None = None) -> list[str]:
        with self._lock:
            return [
                r["line"]
                for r in self.records
                if (container_id is None or r.get("container_id") == container_id)
                and "logsite_dropped" not in r.get("attrs", {})
            ]

    def dropped_reported(self) -> int:
        with self._lock:
            return sum(r.get("attrs", {}).get("logsite_dropped", 0) for r in self.records)

    def _push(self, h: BaseHTTPRequestHandler) -> None:
        if self.hang:
            self._release.wait()
            return
        if urlsplit(h.path).path != "/api/v1/push":
            return self._answer(h, 404, {"error": "not found"})
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(h, 401, {"error": "wrong token"})
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        if h.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode()
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x]
        )
        for k, row in enumerate(rows):
            if not isinstance(row.get("line"), str):
                return self._answer(h, 400, {"error": "line is required", "line": k})
            if self.poison and self.poison in row["line"]:
                return self._answer(h, 400, {"error": "poisoned line", "line": k})
        if self.status is not None:
            return self._answer(h, self.status, {"error": "configured failure"})
        with self._lock:
            for row in rows:
                row["_id"] = len(self.records) + 1
                self.records.append(row)
            self.batches.append(rows)
        self._answer(h, 200, {"accepted": len(rows)})

    def _read(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        segs = parts.path.strip("/").split("/")
        if segs[:3] != ["api", "v1", "containers"] or len(segs) != 5 or segs[4] != "logs":
            return self._answer(h, 404, {"error": "not found"})
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(h, 401, {"error": "wrong token"})
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            rows = [
                r
                for r in self.records
                if r.get("container_id") == segs[3] and "logsite_dropped" not in r.get("attrs", {})
            ]
        if "since" in q:
            rows = [r for r in rows if r["ts_ns"] >= parse_rfc3339_ns(q["since"])]
        if "until" in q:
            rows = [r for r in rows if r["ts_ns"] <= parse_rfc3339_ns(q["until"])]
        if "after_id" in q:
            rows = [r for r in rows if r["_id"] > int(q["after_id"])]
        rows = rows[-int(q["tail"]) :] if "tail" in q else rows[: self.page_size]
        out = "".join(
            json.dumps(
                {
                    "id": r["_id"],
                    "ts": format_rfc3339_ns(r["ts_ns"]),
                    "stream": r["stream"],
                    "line": r["line"],
                }
            )
            + "\n"
            for r in rows
        )
        data = out.encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _answer(self, h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
