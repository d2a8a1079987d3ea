"""Splunk HTTP Event Collector (Docker's `splunk` log driver): body → Records.

Wire facts: docs/PROTOCOLS.md §3.4. The body is JSON objects back to back with no separator,
possibly gzip-compressed. Errors carry Splunk's own codes and the failing event's index so
the transport can answer the way HEC does.
"""

import json
import re
import time

from aiohttp import web

from ingest import driver_options
from ingest.pipeline import NotDurable, Overloaded
from ingest.record import STDERR, STDOUT, Record

from .dockertag import DEFAULT_TEMPLATE as DEFAULT_TAG_TEMPLATE
from .dockertag import TagTemplate
from .errors import DecodeError
from .http_push import BodyTooLarge, read_body
from .inflate import gunzip
from .listen import check_options
from .text import clean_str, clean_value, line_value
from .times import decimal_seconds_to_ns, float_seconds_to_ns
from .web import HttpReceiver, token_from_basic

_DEFAULT_TAGS = TagTemplate()
_WHITESPACE = re.compile(r"\s*")
_STREAMS = {STDOUT, STDERR}
_METADATA = ("source", "sourcetype", "index")


class HecError(DecodeError):
    """A rejected request, with HEC's error code (5 no data, 6 invalid format, 12/13 event)."""

    def __init__(self, text: str, code: int, index: int | None = None):
        super().__init__(f"splunk: {text}" + ("" if index is None else f" (event {index})"))
        self.text = text
        self.code = code
        self.index = index

    def body(self) -> dict:
        answer: dict = {"text": self.text, "code": self.code}
        if self.index is not None:
            answer["invalid-event-number"] = self.index
        return answer


def token_from_authorization(header: str | None) -> str | None:
    """`Authorization: Splunk <token>` (Docker's driver); `Bearer` is accepted too."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in ("splunk", "bearer") or not token.strip():
        return None
    return token.strip()


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        return gunzip(body, limit)
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise HecError("Request too large", 6)
        return body
    raise HecError(f"Unsupported Content-Encoding {encoding[:20]!r}", 6)


def decode_events(
    body: bytes, *, tags: TagTemplate = _DEFAULT_TAGS, received_ns: int | None = None
) -> list[Record]:
    received_ns = received_ns or time.time_ns()
    # Go's encoder never sends invalid UTF-8; other senders' bad bytes end up as bytes in the line.
    text = body.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    records: list[Record] = []
    pos = _WHITESPACE.match(text, 0).end()
    while pos < len(text):
        index = len(records)
        if text[pos] != "{":
            raise HecError("Invalid data format", 6, index)
        try:
            event, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            raise HecError("Invalid data format", 6, index) from None
        records.append(event_to_record(event, index, tags=tags, received_ns=received_ns))
        pos = _WHITESPACE.match(text, pos).end()
    if not records:
        raise HecError("No data", 5)
    return records


def event_to_record(obj: dict, index: int, *, tags: TagTemplate, received_ns: int) -> Record:
    if "event" not in obj:
        raise HecError("Event field is required", 12, index)
    event = obj["event"]
    if event is None or (isinstance(event, str) and not event.strip()):
        raise HecError("Event field cannot be blank", 13, index)
    record = Record(line=b"", received_ns=received_ns)
    attrs: dict = {}

    stamp = obj.get("time")
    if stamp is not None:
        try:
            if isinstance(stamp, str):
                record.ts_ns = decimal_seconds_to_ns(stamp)
            elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
                record.ts_ns = float_seconds_to_ns(stamp)
            else:
                raise HecError("Invalid data format", 6, index)
        except DecodeError as exc:
            raise HecError("Invalid data format", 6, index) from exc
    host = obj.get("host")
    if host is not None:
        record.host = clean_str(host) if isinstance(host, str) else clean_str(json.dumps(host))
    for key in _METADATA:
        if obj.get(key) is not None:
            attrs[key] = clean_value(obj[key])
    if isinstance(obj.get("fields"), dict):
        attrs["fields"] = clean_value(obj["fields"])

    if isinstance(event, dict) and "line" in event:
        # Docker's inline and json formats: {"line": …, "source": …, "tag": …, "attrs": {…}}.
        event = dict(event)
        line = event.pop("line")
        record.line = line_value(line) if isinstance(line, str) else _json_text(line)
        source = event.pop("source", None)
        if source in _STREAMS:
            record.stream = source
        elif source is not None:
            attrs["event_source"] = clean_value(source)
        tag = event.pop("tag", None)
        if isinstance(tag, str):
            _apply_tag(record, tag, tags, attrs)
        elif tag is not None:
            attrs["tag"] = clean_value(tag)
        extra = event.pop("attrs", None)
        if isinstance(extra, dict):
            attrs.update(clean_value(extra))
        elif extra is not None:
            attrs["attrs"] = clean_value(extra)
        attrs.update(clean_value(event))
    elif isinstance(event, str):
        # Docker's raw format: "TAG k=v … LINE". Only the tag can be told apart from the line.
        first, _, rest = event.partition(" ")
        fields = tags.parse(first) if rest else None
        if fields is None:
            record.line = line_value(event)
        else:
            _apply_fields(record, fields)
            record.line = line_value(rest)
    else:
        record.line = _json_text(event)
    record.attrs = attrs or None
    return record


def _apply_tag(record: Record, tag: str, tags: TagTemplate, attrs: dict) -> None:
    fields = tags.parse(tag)
    if fields is None:
        attrs["tag"] = clean_str(tag)
    else:
        _apply_fields(record, fields)


def _apply_fields(record: Record, fields: dict) -> None:
    for key in ("container_id", "container_name", "image"):
        if key in fields:
            setattr(record, key, fields[key])


def _json_text(value) -> str:
    return json.dumps(clean_value(value), ensure_ascii=False, separators=(",", ":"))


# --- transport ----------------------------------------------------------------------------

EVENT_PATHS = ("/services/collector/event/1.0", "/services/collector/event", "/services/collector")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")


def _answer(status: int, text: str, code: int, **extra) -> web.Response:
    return web.json_response({"text": text, "code": code, **extra}, status=status)


class SplunkReceiver(HttpReceiver):
    """HEC endpoint for Docker's splunk driver: 200 only once the batch is committed or spooled.

    OPTIONS (Docker's connection check at container start) and the health path answer 200
    without a token: they reveal nothing and Docker sends no token with OPTIONS.
    """

    kind = "splunk"
    # One option table for the admin form and the receiver (ingest/driver_options.py).
    OPTIONS = frozenset(driver_options.specs("splunk"))

    def __init__(self, driver, pipeline, max_body_bytes: int):
        super().__init__(driver, pipeline, max_body_bytes)
        check_options(driver.options, self.OPTIONS)
        self.tags = TagTemplate(driver.options.get("tag_template", DEFAULT_TAG_TEMPLATE))

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        for path in EVENT_PATHS:
            app.router.add_post(path, self.handle_events)
            app.router.add_route("OPTIONS", path, self.handle_options)
        for path in HEALTH_PATHS:
            app.router.add_get(path, self.handle_health)
        return app

    async def handle_options(self, request: web.Request) -> web.Response:
        return web.Response(status=200, headers={"Allow": "OPTIONS, POST"})

    async def handle_health(self, request: web.Request) -> web.Response:
        return _answer(200, "HEC is healthy", 17)

    async def handle_events(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        token = token_from_authorization(header) or token_from_basic(header or "")
        if not token:
            return _answer(401, "Token is required", 2)
        if not self.token_ok(token):
            return _answer(403, "Invalid token", 4)
        try:
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            return _answer(413, str(exc), 6)
        except ValueError as exc:
            self.malformed(str(exc))
            return _answer(400, str(exc), 6)
        try:
            records = [self.own(r) for r in decode_events(body, tags=self.tags)]
        except HecError as exc:
            self.malformed(str(exc))
            return web.json_response(exc.body(), status=400)
        try:
            await self.pipeline.submit(records)
        except (Overloaded, NotDurable):
            return _answer(503, "Server is busy", 9)
        self.stats.received += len(records)
        self.stats.bytes += len(body)
        return _answer(200, "Success", 0)
