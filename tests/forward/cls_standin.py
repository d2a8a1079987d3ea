"""A local stand-in for Tencent Cloud CLS `POST /structuredlog`, for tests and benchmarks.

It checks what shared/CLS.md §5 says the real service checks, in this order: route and
topic_id, signature (§2, with the Host header as received), topic, content type, compression,
body size, protobuf, limits. Answers: 200 with an empty body, or a JSON error body that always
has both `errorcode` and `errormessage`; every answer carries `x-cls-requestid`.

Where CLS.md marks a detail as inference, the stand-in takes the stricter reading so a client
that passes here passes there: sizes are decimal MB (1 MB = 1,000,000 bytes); a body over 6 MB
gets 413, a group whose values pass 5 MB or a value over 1 MB gets 403 LogSizeExceed; too many
groups, an empty or oversized group and reserved keys get 400 InvalidParam; strings must be
valid UTF-8 (400 InvalidContent).

Raw LZ4 blocks carry no size, so they are decompressed into a bounded buffer (DECOMPRESS_BOUND,
a little above 6 MB so an oversized body is still told apart as 413; anything bigger cannot be
told from corrupt input and is 400 InvalidContent).

Test hooks: `received` (everything accepted, in order), `responses` (status and code of every
answer) with `answered_at` (monotonic times), `started` (requests begun), `inject(kind, n)`
for the next n requests (429 SpeedQuotaExceed, 500 InternalError, a slow answer, an answer
held until `release()` (or `seconds`), a dropped connection before or after storing),
`in_flight` / `max_in_flight` (requests being handled at once), and `down()` / `up()`, which close
and reopen the listening port so connections are refused meanwhile. `count_only=True`
(benchmarks) still checks signature, compression and protobuf, but only counts the logs.
"""

import contextlib
import hmac
import io
import json
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import lz4.block
import zstandard
from google.protobuf.message import DecodeError

from forward.sinks import cls_pb2, cls_sign

MB = 1_000_000
MAX_GROUPS = 10
MAX_LOGS_PER_GROUP = 10_000
MAX_VALUE_BYTES = 1 * MB
MAX_GROUP_VALUE_BYTES = 5 * MB
MAX_BODY_BYTES = 6 * MB
DECOMPRESS_BOUND = 8 * 1024 * 1024
# What the stand-in is willing to read off the socket at all.
MAX_WIRE_BYTES = 16 * 1024 * 1024
RESERVED_KEYS = ("__FILENAME__", "__TIMESTAMP__", "__LOGSETID__", "__TOPICID__")
AUTH_KEYS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)
FAULTS = ("429", "500", "sleep", "hold", "drop", "drop_after_store")


class Reject(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass
class ReceivedLog:
    time: int
    contents: list[tuple[str, str]]

    @property
    def fields(self) -> dict[str, str]:
        return dict(self.contents)

    @property
    def time_ms(self) -> int:
        # Clients send s, ms or µs; guess the unit from the magnitude.
        if abs(self.time) < 10**11:
            return self.time * 1000
        if abs(self.time) < 10**14:
            return self.time
        return self.time // 1000


@dataclass
class ReceivedGroup:
    logs: list[ReceivedLog]
    source: str | None = None
    filename: str | None = None
    context_flow: str | None = None
    tags: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Received:
    topic_id: str
    groups: list[ReceivedGroup]
    count: int
    request_id: str
    compress: str
    hashkey: str | None = None
    token: str | None = None
    host: str | None = None

    @property
    def logs(self) -> list[ReceivedLog]:
        return [log for group in self.groups for log in group.logs]


def parse_authorization(value: str) -> dict[str, str]:
    parts = {}
    for item in value.split("&"):
        key, sep, val = item.partition("=")
        if not sep or key in parts:
            raise Reject(
                400, "InvalidAuthorization", "authorization is not a list of distinct key=value pairs"
            )
        parts[key] = val
    missing = [k for k in AUTH_KEYS if k not in parts]
    if missing:
        raise Reject(400, "InvalidAuthorization", "authorization lacks " + ", ".join(missing))
    if parts["q-sign-algorithm"] != "sha1":
        raise Reject(400, "InvalidAuthorization", "q-sign-algorithm must be sha1")
    for key in ("q-sign-time", "q-key-time"):
        start, sep, end = parts[key].partition(";")
        if not (sep and start.isdigit() and end.isdigit()):
            raise Reject(400, "InvalidAuthorization", f"{key} must be <start>;<end> in Unix seconds")
    sig = parts["q-signature"]
    if len(sig) != 40 or any(c not in "0123456789abcdef" for c in sig):
        raise Reject(400, "InvalidAuthorization", "q-signature must be 40 lower-case hex digits")
    return parts


class Checker:
    """The request rules, apart from the HTTP plumbing, so they can be driven directly."""

    def __init__(
        self,
        credentials: dict[str, str],
        topics: dict[str, str],
        *,
        clock=time.time,
        skew_s: int = 5,
        strict: bool = True,
        refuse_replay: bool = False,
        tokens: set[str] | None = None,
        count_only: bool = False,
    ):
        self.credentials = credentials
        self.topics = topics  # topic id → "open" | "closed"
        self.clock = clock
        self.skew_s = skew_s
        self.strict = strict
        self.refuse_replay = refuse_replay
        self.tokens = tokens
        # For benchmarks: check everything down to a well-formed LogGroupList, then only count
        # the logs, so the stand-in's Python loops do not dominate the client's figure.
        self.count_only = count_only
        self._used_signatures: set[str] = set()
        self._lock = threading.Lock()

    def check(self, method: str, target: str, headers, body: bytes, request_id: str) -> Received:
        parts = urlsplit(target)
        if method != "POST" or parts.path != "/structuredlog":
            raise Reject(400, "InvalidParam", f"no such API: {method} {parts.path}")
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        topic_id = query.get("topic_id", "")
        if not topic_id:
            raise Reject(400, "InvalidParam", "topic_id is required")
        self.verify_signature(method, parts.path, query, headers)
        token = headers.get("x-cls-token")
        if self.tokens is not None and token not in self.tokens:
            raise Reject(401, "Unauthorized", "invalid security token")
        state = self.topics.get(topic_id)
        if state is None:
            raise Reject(404, "TopicNotExist", f"topic {topic_id} does not exist")
        if state == "closed":
            raise Reject(400, "TopicClosed", f"topic {topic_id} is closed")
        content_type = headers.get("content-type")
        if not content_type:
            raise Reject(400, "MissingContentType", "Content-Type is required")
        if content_type.split(";")[0].strip().lower() != "application/x-protobuf":
            raise Reject(400, "InvalidContentType", "Content-Type must be application/x-protobuf")
        if not body:
            raise Reject(400, "MissingContent", "request body is empty")
        compress = (headers.get("x-cls-compress-type") or "").strip().lower()
        raw = decompress(compress, body)
        if len(raw) > MAX_BODY_BYTES:
            raise Reject(
                413, "LogSizeExceed", f"request body is {len(raw)} bytes before compression, over 6 MB"
            )
        if self.count_only:
            count, groups = count_logs(raw), []
        else:
            groups = parse_groups(raw, strict=self.strict)
            count = sum(len(g.logs) for g in groups)
        return Received(
            count=count,
            topic_id=topic_id,
            groups=groups,
            request_id=request_id,
            compress=compress or "none",
            hashkey=headers.get("x-cls-hashkey"),
            token=token,
            host=headers.get("host"),
        )

    def verify_signature(self, method: str, path: str, query: dict[str, str], headers) -> None:
        value = headers.get("authorization")
        if not value:
            if headers.get("x-cls-auth-mode"):
                raise Reject(401, "Unauthorized", "weak authentication is not enabled")
            raise Reject(400, "MissingAuthorization", "Authorization header is required")
        auth = parse_authorization(value)
        secret_key = self.credentials.get(auth["q-ak"])
        if secret_key is None:
            raise Reject(401, "Unauthorized", "unknown SecretId")
        if auth["q-key-time"] != auth["q-sign-time"]:
            raise Reject(401, "Unauthorized", "q-key-time differs from q-sign-time")
        start, end = (int(x) for x in auth["q-sign-time"].split(";"))
        now = self.clock()
        if end <= start or not (start - self.skew_s <= now <= end + self.skew_s):
            raise Reject(401, "Unauthorized", "signature time is expired or not yet valid")
        header_names = [h for h in auth["q-header-list"].split(";") if h]
        param_names = [p for p in auth["q-url-param-list"].split(";") if p]
        if self.strict and ("host" not in header_names or "topic_id" not in param_names):
            raise Reject(401, "Unauthorized", "host and topic_id must be signed")
        signed_headers = {}
        for name in header_names:
            if headers.get(name) is None:
                raise Reject(401, "Unauthorized", f"signed header {name} is not in the request")
            signed_headers[name] = headers.get(name)
        signed_params = {}
        for name in param_names:
            if name not in query:
                raise Reject(401, "Unauthorized", f"signed parameter {name} is not in the request")
            signed_params[name] = query[name]
        expected = cls_sign.signature(
            secret_key, auth["q-sign-time"], method, path, signed_params, signed_headers
        )
        if not hmac.compare_digest(expected, auth["q-signature"]):
            raise Reject(401, "Unauthorized", "signature mismatch")
        if self.refuse_replay:
            with self._lock:
                if auth["q-signature"] in self._used_signatures:
                    raise Reject(401, "Unauthorized", "signature already used")
                self._used_signatures.add(auth["q-signature"])


def decompress(compress: str, body: bytes) -> bytes:
    try:
        if compress == "":
            return body
        if compress == "lz4":
            return lz4.block.decompress(body, uncompressed_size=DECOMPRESS_BOUND)
        if compress == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body))
            raw = reader.read(DECOMPRESS_BOUND + 1)
            if len(raw) > DECOMPRESS_BOUND:
                raise Reject(400, "InvalidContent", "zstd body expands beyond the limit")
            return raw
        if compress == "deflate":
            d = zlib.decompressobj(-15)
            raw = d.decompress(body, DECOMPRESS_BOUND + 1)
            if len(raw) > DECOMPRESS_BOUND or not d.eof:
                raise Reject(400, "InvalidContent", "deflate body is truncated or expands beyond the limit")
            return raw
    except (lz4.block.LZ4BlockError, zstandard.ZstdError, zlib.error) as e:
        raise Reject(400, "InvalidContent", f"cannot decompress {compress} body: {e}") from e
    raise Reject(400, "InvalidCompressType", f"unsupported x-cls-compress-type {compress!r}")


def _text(value, what: str) -> str:
    # Proto2 strings are not UTF-8 checked by the parser; upb hands back bytes when invalid.
    if isinstance(value, bytes):
        raise Reject(400, "InvalidContent", f"{what} is not valid UTF-8")
    return value


def _check_key(key: str, strict: bool) -> None:
    if not key:
        raise Reject(400, "InvalidParam", "empty content key")
    if any(key.startswith(r) for r in RESERVED_KEYS) or (strict and key.startswith("_")):
        raise Reject(400, "InvalidParam", f"reserved content key {key!r}")


def _parse(raw: bytes):
    message = cls_pb2.LogGroupList()
    try:
        message.ParseFromString(raw)
    except DecodeError as e:
        raise Reject(400, "InvalidContent", f"body is not a LogGroupList: {e}") from e
    # upb does not enforce proto2 `required` while parsing.
    if not message.IsInitialized():
        raise Reject(
            400, "InvalidContent", "required fields missing: " + ", ".join(message.FindInitializationErrors())
        )
    if not message.logGroupList:
        raise Reject(400, "InvalidParam", "no log groups")
    if len(message.logGroupList) > MAX_GROUPS:
        raise Reject(400, "InvalidParam", f"{len(message.logGroupList)} log groups, at most {MAX_GROUPS}")
    for group in message.logGroupList:
        if not 1 <= len(group.logs) <= MAX_LOGS_PER_GROUP:
            raise Reject(
                400, "InvalidParam", f"{len(group.logs)} logs in a group, 1 to {MAX_LOGS_PER_GROUP} allowed"
            )
    return message


def count_logs(raw: bytes) -> int:
    return sum(len(group.logs) for group in _parse(raw).logGroupList)


def parse_groups(raw: bytes, *, strict: bool = True) -> list[ReceivedGroup]:
    """Decode and check a LogGroupList; unknown fields (Go's hostname=6, collectTime=3) pass."""
    message = _parse(raw)
    groups = []
    for group in message.logGroupList:
        values = 0
        logs = []
        for log in group.logs:
            contents = []
            for content in log.contents:
                key = _text(content.key, "content key")
                value = _text(content.value, "content value")
                _check_key(key, strict)
                size = len(value.encode())
                if size > MAX_VALUE_BYTES:
                    raise Reject(403, "LogSizeExceed", f"value of {key!r} is {size} bytes, over 1 MB")
                values += size
                contents.append((key, value))
            logs.append(ReceivedLog(time=log.time, contents=contents))
        if values > MAX_GROUP_VALUE_BYTES:
            raise Reject(403, "LogSizeExceed", f"log group values total {values} bytes, over 5 MB")
        groups.append(
            ReceivedGroup(
                logs=logs,
                source=_text(group.source, "source") if group.HasField("source") else None,
                filename=_text(group.filename, "filename") if group.HasField("filename") else None,
                context_flow=_text(group.contextFlow, "contextFlow")
                if group.HasField("contextFlow")
                else None,
                tags=[(_text(t.key, "tag key"), _text(t.value, "tag value")) for t in group.logTags],
            )
        )
    return groups


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service and requests' pool use
    server_version = "cls-standin"
    standin: "ClsStandIn"

    def log_message(self, format, *args):
        pass

    def setup(self):
        super().setup()
        self.standin._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.standin._track(self.connection, False)

    def _handle(self):
        self.standin._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle


class ClsStandIn:
    def __init__(
        self,
        credentials: dict[str, str] | None = None,
        topics: dict[str, str] | list[str] | None = None,
        **checker_options,
    ):
        credentials = credentials or {"AKIDstandin": "standin-secret-key"}
        topics = topics or ["topic-1"]
        if not isinstance(topics, dict):
            topics = dict.fromkeys(topics, "open")
        self.checker = Checker(credentials, topics, **checker_options)
        self.received: list[Received] = []
        self.responses: list[tuple[int, str | None]] = []
        self.answered_at: list[float] = []  # time.monotonic() of each answer, as `responses`
        self.started = 0  # requests whose handling began (a test can act while one is in flight)
        self.in_flight = 0
        self.max_in_flight = 0
        self._released = threading.Event()
        self._faults: list[tuple[str, float] | None] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "ClsStandIn":
        handler = type("Handler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def down(self) -> None:
        """Stop listening and cut open connections: clients get 'connection refused'."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    def __enter__(self) -> "ClsStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials(self) -> tuple[str, str]:
        return next(iter(self.checker.credentials.items()))

    # -- test hooks --------------------------------------------------------------------------

    def inject(self, kind: str, n: int = 1, seconds: float = 0.0, after: int = 0) -> None:
        """Answer the next n requests (after letting `after` requests through) with a fault."""
        if kind not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        with self._lock:
            self._faults.extend([None] * after + [(kind, seconds)] * n)

    def release(self) -> None:
        """Let every request held by a "hold" fault (now or later) be answered."""
        self._released.set()

    def count(self, topic_id: str | None = None) -> int:
        with self._lock:
            return sum(r.count for r in self.received if topic_id in (None, r.topic_id))

    def logs(self, topic_id: str | None = None) -> list[ReceivedLog]:
        with self._lock:
            return [log for r in self.received if topic_id in (None, r.topic_id) for log in r.logs]

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for status, _ in self.responses]

    # -- request handling --------------------------------------------------------------------

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _next_fault(self) -> tuple[str, float] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _handle(self, req: _Handler) -> None:
        with self._lock:
            self.started += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._handle_one(req)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handle_one(self, req: _Handler) -> None:
        request_id = uuid.uuid4().hex
        fault = self._next_fault()
        try:
            body = self._read_body(req)
        except Reject as e:
            req.close_connection = True  # the unread body would be taken for the next request
            self._answer(req, request_id, e.status, e.code, e.message)
            return
        kind = fault[0] if fault else None
        if kind == "drop":
            req.close_connection = True
            self._record(0, "dropped")
            return
        if kind == "429":
            self._answer(req, request_id, 429, "SpeedQuotaExceed", "speed quota exceeded (injected)")
            return
        if kind == "500":
            self._answer(req, request_id, 500, "InternalError", "internal error (injected)")
            return
        if kind == "sleep":
            self._stopping.wait(fault[1])
        if kind == "hold":
            self._released.wait(fault[1])
        try:
            received = self.checker.check(req.command, req.path, req.headers, body, request_id)
        except Reject as e:
            self._answer(req, request_id, e.status, e.code, e.message)
            return
        with self._lock:
            self.received.append(received)
        if kind == "drop_after_store":
            req.close_connection = True
            self._record(0, "dropped")
            return
        self._answer(req, request_id, 200, None, None)

    def _read_body(self, req: _Handler) -> bytes:
        if req.headers.get("transfer-encoding"):
            raise Reject(411, "InvalidParam", "chunked bodies are not accepted; send Content-Length")
        try:
            length = int(req.headers.get("content-length") or 0)
        except ValueError as e:
            raise Reject(400, "InvalidParam", "bad Content-Length") from e
        if length < 0:
            raise Reject(400, "InvalidParam", "bad Content-Length")
        if length > MAX_WIRE_BYTES:
            raise Reject(413, "LogSizeExceed", f"request body of {length} bytes is too large")
        return req.rfile.read(length) if length else b""

    def _record(self, status: int, code: str | None) -> None:
        with self._lock:
            self.responses.append((status, code))
            self.answered_at.append(time.monotonic())

    def _answer(
        self, req: _Handler, request_id: str, status: int, code: str | None, message: str | None
    ) -> None:
        self._record(status, code)
        body = b"" if status == 200 else json.dumps({"errorcode": code, "errormessage": message}).encode()
        try:
            req.send_response(status)
            req.send_header("x-cls-requestid", request_id)
            if body:
                req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(body)))
            if req.close_connection:
                req.send_header("Connection", "close")
            req.end_headers()
            req.wfile.write(body)
        except OSError:
            pass  # the client went away (or down() cut it); nothing to tell it
