"""HTTP push receiver: JSON array or NDJSON of records, bearer token bound to the driver.

Served by the ingest process (aiohttp), not by the web process: only the writer commits log
rows. The answer is 200 only after every record is committed or fsynced to the spool.
Schema of a record: README.md, section "HTTP push".
"""

import json
import logging
import math
import time
import zlib

import orjson
from aiohttp import web

from ingest.levels import severity_from_name
from ingest.models import hash_token
from ingest.pipeline import NotDurable, Overloaded
from ingest.receivers import jsonload
from ingest.receivers.base import Receiver
from ingest.record import STDERR, STDOUT, Record
from ingest.timeparse import rfc3339_to_ns, seconds_to_ns

log = logging.getLogger(__name__)

PUSH_PATHS = ("/api/v1/push", "/push")
# On shutdown aiohttp stops reading from open connections and then waits this long for the
# handlers in progress (its default is 60 s). A handler waiting for the writer finishes in well
# under this; one waiting for the rest of a body never will, and must not hold the exit past a
# container runtime's stop grace period (10 s by default). Its sender got no answer and retries.
SHUTDOWN_GRACE_S = 5.0
_METADATA_FIELDS = ("container_id", "container_name", "image", "host", "service")


class BadRecord(ValueError):
    def __init__(self, line: int, reason: str):
        super().__init__(f"record {line}: {reason}")
        self.line = line
        self.reason = reason


class BodyTooLarge(ValueError):
    pass


def _not_json(token: str):
    raise ValueError(f"{token} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _loads(data: bytes):
    # The stdlib accepts NaN/Infinity (and turns 1e999 into infinity): none of them is JSON,
    # and jsonb refuses them. Deep nesting exhausts the recursion limit: a client error too.
    try:
        return jsonload.loads(data, fallback=_strict_json)
    except RecursionError as e:
        raise ValueError("JSON nested too deeply") from e


def _strict_json(data: bytes):
    return json.loads(data, parse_constant=_not_json, parse_float=_finite_float)


def decode_body(body: bytes) -> list[tuple[int, object]]:
    """-> [(line number, parsed object)]: a JSON array (line 1 + index) or NDJSON (1-based line)."""
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        try:
            items = _loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRecord(getattr(e, "lineno", 1), f"invalid JSON: {e}") from e
        if not isinstance(items, list):
            raise BadRecord(1, "body is neither a JSON array nor NDJSON")
        return [(i + 1, item) for i, item in enumerate(items)]
    lines = body.split(b"\n")
    fast = _ndjson_fast(lines)
    if fast is not None:
        return fast
    out = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            out.append((number, _loads(raw)))
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRecord(number, f"invalid JSON: {e}") from e
    return out


def _ndjson_fast(lines: list[bytes]) -> list[tuple[int, object]] | None:
    """The common body (no blank lines inside, every line valid, no integer that orjson might
    read as a float) decoded at orjson's speed; None sends the body to the careful path, which
    decides every other case exactly as before and names the bad line."""
    if lines and not lines[-1].strip():
        lines = lines[:-1]
    if not lines:
        return None
    try:
        values = list(map(orjson.loads, lines))
    except (orjson.JSONDecodeError, RecursionError):
        return None
    if not jsonload.no_huge_float(values):
        return None
    return list(enumerate(values, 1))


def record_from_object(number: int, obj, driver, now_ns: int) -> Record:
    # Called once per pushed line: plain gets and type checks, positional Record (field order
    # in ingest/record.py), because keyword plumbing here was a third of the receiver's CPU.
    if type(obj) is not dict and not isinstance(obj, dict):
        raise BadRecord(number, "a record must be a JSON object")
    get = obj.get
    line = get("line")
    if type(line) is not str:
        raise BadRecord(number, "'line' is required and must be a string")
    container_id = get("container_id")
    container_name = get("container_name")
    image = get("image")
    host = get("host")
    service = get("service")
    if not (
        (container_id is None or type(container_id) is str)
        and (container_name is None or type(container_name) is str)
        and (image is None or type(image) is str)
        and (host is None or type(host) is str)
        and (service is None or type(service) is str)
    ):
        for key in _METADATA_FIELDS:
            _string(number, get, key)  # raises for the first field that is not a string
    tenant = get("tenant")
    if driver.tenant is not None:
        if tenant is not None and tenant != driver.tenant:
            if not isinstance(tenant, str):
                raise BadRecord(number, "'tenant' must be a string")
            raise BadRecord(number, "'tenant' differs from the tenant this token is bound to")
        tenant = driver.tenant
    else:
        if tenant is not None and not isinstance(tenant, str):
            raise BadRecord(number, "'tenant' must be a string")
        if not tenant:
            raise BadRecord(number, "'tenant' is required: this driver is not bound to a tenant")
    stream = get("stream", STDOUT)
    if stream != STDOUT and stream != STDERR:
        raise BadRecord(number, "'stream' must be 'stdout' or 'stderr'")
    level = get("level")
    attrs = get("attrs")
    labels = get("labels")
    return Record(
        line,
        _timestamp(number, obj) if "ts" in obj or "ts_ns" in obj else None,
        now_ns,
        tenant,
        service or "",
        container_id or "",
        container_name or "",
        image or "",
        host or "",
        stream,
        None if level is None else _level(number, level),
        None if attrs is None else _mapping(number, obj, "attrs", strings_only=False),
        None if labels is None else _mapping(number, obj, "labels", strings_only=True),
        driver.id,
    )


def _string(number: int, get, key: str) -> str:
    value = get(key)
    if value is None:
        return ""
    if type(value) is not str and not isinstance(value, str):
        raise BadRecord(number, f"'{key}' must be a string")
    return value


def _timestamp(number: int, obj: dict) -> int | None:
    ts_ns = obj.get("ts_ns")
    if ts_ns is not None:
        try:
            return int(ts_ns)
        except (TypeError, ValueError, OverflowError) as e:
            raise BadRecord(number, "'ts_ns' must be an integer of Unix nanoseconds") from e
    ts = obj.get("ts")
    if ts is None:
        return None
    try:
        if isinstance(ts, str):
            return rfc3339_to_ns(ts)
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            return seconds_to_ns(ts)
    except ValueError as e:
        raise BadRecord(number, f"'ts': {e}") from e
    raise BadRecord(number, "'ts' must be an RFC 3339 string or Unix seconds")


def _level(number: int, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return value
    if isinstance(value, str):
        severity = severity_from_name(value)
        if severity is not None:
            return severity
    raise BadRecord(number, "'level' must be a level name (debug … emerg) or a severity 0-7")


def _mapping(number: int, obj: dict, key: str, strings_only: bool) -> dict | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRecord(number, f"'{key}' must be an object")
    if strings_only and not all(isinstance(v, str) for v in value.values()):
        raise BadRecord(number, f"'{key}' values must be strings")
    return value or None


class _Inflater:
    """Streaming gzip/deflate decoding with a cap on the output.

    A gzip body may hold several members back to back (RFC 1952: `cat a.gz b.gz`, pigz): each
    is decoded in turn. A body that stops inside a stream is refused, not half-read.
    """

    def __init__(self, encoding: str, max_bytes: int):
        self.encoding = encoding
        self.gzip = encoding != "deflate"
        self.max_bytes = max_bytes
        self.produced = 0
        self._fed = False
        self._z = self._new()

    def _new(self):
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self.gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        while data:
            self._fed = True
            if self._z.eof:
                if not self.gzip:
                    raise ValueError(f"body has data after the end of its {self.encoding} stream")
                self._z = self._new()
            try:
                # max_length bounds memory: a gzip bomb is refused after max_bytes of output,
                # not after it has filled the machine.
                part = self._z.decompress(data, self.max_bytes - self.produced + 1)
            except zlib.error as e:
                raise ValueError(f"body is not valid {self.encoding}: {e}") from e
            self.produced += len(part)
            if self.produced > self.max_bytes:
                raise BodyTooLarge(f"decompressed body exceeds the {self.max_bytes}-byte limit")
            out.append(part)
            # Below the cap all input is consumed; what follows the end of a member is the next.
            data = self._z.unused_data if self._z.eof else b""
        return out

    def finish(self) -> None:
        if self._fed and not self._z.eof:
            raise ValueError(f"body is not valid {self.encoding}: it ends inside the compressed stream")


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, gunzipped if needed, refusing anything over max_bytes either way."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"body of {request.content_length} bytes exceeds the {max_bytes}-byte limit")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = _Inflater(encoding, max_bytes)
    elif encoding in ("identity", ""):
        inflater = None
    else:
        raise ValueError(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    parts: list[bytes] = []
    received = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge(f"body exceeds the {max_bytes}-byte limit")
        parts += inflater.feed(chunk) if inflater is not None else [chunk]
    if inflater is not None:
        inflater.finish()
    return b"".join(parts)


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def token_ok(driver, token: str) -> bool:
    import hmac

    return (
        bool(driver.token_hash) and bool(token) and hmac.compare_digest(driver.token_hash, hash_token(token))
    )


def error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class HttpPushReceiver(Receiver):
    kind = "http"

    def __init__(self, driver, pipeline, max_body_bytes: int):
        super().__init__(driver, pipeline)
        self.max_body_bytes = max_body_bytes
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        for path in PUSH_PATHS:
            app.router.add_post(path, self.handle_push)
        app.router.add_get("/healthz", self.handle_health)
        return app

    async def start(self) -> None:
        host, port = split_bind(self.driver.bind)
        self._runner = web.AppRunner(
            self.make_app(), auto_decompress=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, reuse_port=self.reuse_port or None)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def handle_push(self, request: web.Request) -> web.Response:
        if not token_ok(self.driver, bearer_token(request)):
            return error(401, "missing or wrong bearer token")
        try:
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge as e:
            return error(413, str(e))
        except ValueError as e:
            self.malformed(str(e))
            return error(400, str(e))
        now = time.time_ns()
        try:
            records = [record_from_object(n, obj, self.driver, now) for n, obj in decode_body(body)]
        except BadRecord as e:
            self.malformed(str(e))
            return error(400, e.reason, line=e.line)
        try:
            await self.pipeline.submit(records)
        except Overloaded as e:
            return error(503, str(e))
        except NotDurable as e:
            return error(503, f"not stored, retry: {e}")
        self.stats.received += len(records)
        self.stats.bytes += len(body)
        return web.json_response({"accepted": len(records)})


def split_bind(bind: str) -> tuple[str, int]:
    """'0.0.0.0:8514', 'tcp://host:port', ':8514' or '[::1]:8514' -> (host, port)."""
    value = bind.split("://", 1)[-1]
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(f"bind address {bind!r} has no port")
    host = host.strip("[]") or "0.0.0.0"
    try:
        return host, int(port)
    except ValueError as e:
        raise ValueError(f"bind address {bind!r} has a bad port") from e
