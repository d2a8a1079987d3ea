"""HTTP push receiver: JSON array or NDJSON of records, bearer token bound to the driver.

Served by the ingest process (aiohttp), not by the web process: only the writer commits log
rows. The answer is 200 only after every record is committed or fsynced to the spool.
Schema of a record: README.md, section "HTTP push".
"""

import logging
import time
import zlib

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
_STRING_FIELDS = ("container_id", "container_name", "image", "host", "service", "tenant")


class BadRecord(ValueError):
    def __init__(self, line: int, reason: str):
        super().__init__(f"record {line}: {reason}")
        self.line = line
        self.reason = reason


class BodyTooLarge(ValueError):
    pass


def decode_body(body: bytes) -> list[tuple[int, object]]:
    """-> [(line number, parsed object)]: a JSON array (line 1 + index) or NDJSON (1-based line)."""
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        try:
            items = jsonload.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRecord(getattr(e, "lineno", 1), f"invalid JSON: {e}") from e
        if not isinstance(items, list):
            raise BadRecord(1, "body is neither a JSON array nor NDJSON")
        return [(i + 1, item) for i, item in enumerate(items)]
    out = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            out.append((number, jsonload.loads(raw)))
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRecord(number, f"invalid JSON: {e}") from e
    return out


def record_from_object(number: int, obj, driver, now_ns: int) -> Record:
    if not isinstance(obj, dict):
        raise BadRecord(number, "a record must be a JSON object")
    line = obj.get("line")
    if not isinstance(line, str):
        raise BadRecord(number, "'line' is required and must be a string")
    fields = {}
    for key in _STRING_FIELDS:
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRecord(number, f"'{key}' must be a string")
        fields[key] = value
    tenant = fields.pop("tenant", None)
    if driver.tenant is not None:
        if tenant is not None and tenant != driver.tenant:
            raise BadRecord(number, "'tenant' differs from the tenant this token is bound to")
        tenant = driver.tenant
    elif not tenant:
        raise BadRecord(number, "'tenant' is required: this driver is not bound to a tenant")
    stream = obj.get("stream", STDOUT)
    if stream not in (STDOUT, STDERR):
        raise BadRecord(number, "'stream' must be 'stdout' or 'stderr'")
    return Record(
        line=line,
        ts_ns=_timestamp(number, obj),
        received_ns=now_ns,
        tenant=tenant,
        service=fields.get("service", ""),
        container_id=fields.get("container_id", ""),
        container_name=fields.get("container_name", ""),
        image=fields.get("image", ""),
        host=fields.get("host", ""),
        stream=stream,
        level=_level(number, obj.get("level")),
        attrs=_mapping(number, obj, "attrs", strings_only=False),
        labels=_mapping(number, obj, "labels", strings_only=True),
        driver_id=driver.id,
    )


def _timestamp(number: int, obj: dict) -> int | None:
    ts_ns = obj.get("ts_ns")
    if ts_ns is not None:
        try:
            return int(ts_ns)
        except (TypeError, ValueError) as e:
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


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, gunzipped if needed, refusing anything over max_bytes either way."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"body of {request.content_length} bytes exceeds the {max_bytes}-byte limit")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    elif encoding in ("identity", ""):
        inflater = None
    else:
        raise ValueError(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    parts: list[bytes] = []
    received = produced = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge(f"body exceeds the {max_bytes}-byte limit")
        if inflater is None:
            parts.append(chunk)
            continue
        try:
            # max_length bounds memory: a gzip bomb is refused after max_bytes of output, not
            # after it has filled the machine.
            out = inflater.decompress(chunk, max_bytes - produced + 1)
        except zlib.error as e:
            raise ValueError(f"body is not valid {encoding}: {e}") from e
        produced += len(out)
        if produced > max_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"decompressed body exceeds the {max_bytes}-byte limit")
        parts.append(out)
    if inflater is not None:
        tail = inflater.flush()
        produced += len(tail)
        if produced > max_bytes:
            raise BodyTooLarge(f"decompressed body exceeds the {max_bytes}-byte limit")
        parts.append(tail)
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
        self._runner = web.AppRunner(self.make_app(), auto_decompress=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
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
