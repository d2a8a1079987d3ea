"""Tencent Cloud CLS sink: a small client for `POST /structuredlog` (facts in shared/CLS.md).

Why our own client and not Tencent's `tencentcloud-cls-sdk-python`: its wheel pins
`protobuf>=3.4,<4` (we need protobuf >= 5, as does every current grpc/OpenTelemetry stack) and
`lz4<=3.1.2`, which has no wheels for CPython 3.11 and needs a C compiler to install. It also
retries internally on a fixed 1 s sleep up to 10 times with a hard-coded 120 s timeout, which
would fight the Celery task's own backoff, and it opens a new connection per call. The wire
format is small: a proto2 `LogGroupList` (cls_pb2), a raw LZ4 block, the q-sign SHA1 signature
(cls_sign) and one HTTP POST.

The client does one attempt per call and says what happened:
- returns the request id on 200;
- raises `ClsRetryableError` for 429 (SpeedQuotaExceed), 408, 5xx, connection errors and
  timeouts: the caller backs off and sends the same rows again (at least once: CLS does not
  deduplicate, so a timeout after the server stored the body means a duplicate);
- raises `ClsFinalError` for every other answer (400/401/403/404/413 …), carrying the service's
  error code and message, so the target can be paused with a readable reason.

Transport: one `requests.Session` per client (keep-alive, connection pool, https with the
system's CA bundle) with a (connect, read) timeout on every request. bench/cls_client.py measured
it against bare http.client keep-alive: requests costs ~2 ms of client CPU per request against
~0.5-0.8 ms, which for the full requests the batcher makes (thousands of lines each) is well
under 1 µs per line, so the simpler, safer client wins.
"""

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import lz4.block
import requests

from forward.sinks import cls_sign
from forward.sinks.cls_batch import ClsBatcher
from forward.sinks.errors import SinkError
from forward.sinks.ratelimit import RateLimiter, limiter_for

PATH = "/structuredlog"
CONTENT_TYPE = "application/x-protobuf"
RETRYABLE_STATUSES = frozenset({408, 429})
# The SDKs sign from 60 s in the past (clock skew) to 300 s ahead.
SIGN_BEFORE_S = 60
SIGN_AFTER_S = 300
USER_AGENT = "logsite-cls/1"


class ClsError(SinkError):
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.code = code
        self.request_id = request_id
        # rows_sent is set by ClsSink.send: rows acknowledged before this failure.

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status is not None else ""
        code = f"{self.code}: " if self.code else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}{code}{self.message}{rid}"


class ClsRetryableError(ClsError):
    """Transient: send the same rows again later, with backoff."""

    retryable = True


class ClsFinalError(ClsError):
    """Sending again will not help: the configuration or the data must change."""


def classify_response(status: int, headers, body: bytes) -> str:
    """Request id on success; raises ClsRetryableError / ClsFinalError otherwise.

    The body is whatever the other end sent (a proxy may answer HTML), so it is parsed
    defensively and only a short, printable excerpt is ever kept.
    """
    request_id = headers.get("x-cls-requestid") or None
    if 200 <= status < 300:
        return request_id or ""
    code, message = _error_fields(body)
    retry_after = _seconds(headers.get("retry-after"))
    error = ClsRetryableError if status >= 500 or status in RETRYABLE_STATUSES else ClsFinalError
    text = message or f"HTTP {status} without an error message"
    raise error(text, status=status, code=code, request_id=request_id, retry_after=retry_after)


def _error_fields(body: bytes) -> tuple[str | None, str]:
    try:
        doc = json.loads(body)
    except ValueError:
        return None, _excerpt(body.decode("utf-8", "replace"))
    if not isinstance(doc, dict):
        return None, _excerpt(str(doc))
    code = doc.get("errorcode")
    message = doc.get("errormessage")
    # API 3.0 style errors, in case a gateway in between answers that way.
    error = doc.get("Response", {}).get("Error") if isinstance(doc.get("Response"), dict) else None
    if code is None and isinstance(error, dict):
        code, message = error.get("Code"), error.get("Message")
    return (_excerpt(str(code), 64) if code is not None else None), _excerpt(str(message or ""))


def _excerpt(text: str, limit: int = 300) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text[:limit]).strip()


def _seconds(value) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 3600 else None


class ClsClient:
    """Signs, compresses and POSTs one serialised LogGroupList per call. Not thread-safe
    (one requests.Session); create one per worker process, after fork."""

    def __init__(
        self,
        endpoint: str,
        secret_id: str,
        secret_key: str,
        *,
        token: str | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        compress: str = "lz4",
        rate_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ):
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The official SDK silently falls back to plain http when the scheme is missing;
            # a credentials-carrying client should not guess.
            raise ValueError(f"CLS endpoint must be http(s)://host[:port], got {endpoint!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("CLS endpoint must not have a path: /structuredlog is served at the root")
        if compress not in ("lz4", "none"):
            raise ValueError("compress must be 'lz4' or 'none'")
        if not secret_id or not secret_key:
            raise ValueError("CLS SecretId and SecretKey are required")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        # The Host header is signed, so we send exactly the value we sign (host[:port] as in
        # the URL; requests would derive the same, but relying on that would be fragile).
        self.host = parts.netloc
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.token = token
        self.timeout = timeout
        self.compress = compress
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._session = session or requests.Session()
        self._seq = itertools.count()

    def close(self) -> None:
        self._session.close()

    def _limiter(self, topic_id: str) -> RateLimiter:
        return self._rate_limiter or limiter_for(self.host, topic_id)

    def sign(self, topic_id: str) -> str:
        now = int(self._clock())
        # Requests to one topic in the same second would otherwise carry identical signatures;
        # a service that refuses re-used signatures (documented as a cause of 401) would then
        # reject all but the first. Varying the window's end keeps them distinct.
        end = now + SIGN_AFTER_S + next(self._seq) % 60
        return cls_sign.authorization(
            self.secret_id,
            self._secret_key,
            now - SIGN_BEFORE_S,
            end,
            "POST",
            PATH,
            {"topic_id": topic_id},
            {"content-type": CONTENT_TYPE, "host": self.host},
        )

    def put(self, topic_id: str, raw: bytes, *, hashkey: str | None = None) -> str:
        """Upload one serialised LogGroupList; returns the request id (see module doc for errors)."""
        body = lz4.block.compress(raw, store_size=False) if self.compress == "lz4" else raw
        headers = {
            "Host": self.host,
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
        }
        if self.compress == "lz4":
            headers["x-cls-compress-type"] = "lz4"
        if self.token:
            headers["X-Cls-Token"] = self.token
        if hashkey:
            headers["x-cls-hashkey"] = hashkey
        self._limiter(topic_id).acquire(len(body))
        # Signed after waiting for the rate limiter, so the signature is fresh when sent.
        headers["Authorization"] = self.sign(topic_id)
        url = f"{self.base_url}{PATH}?{urlencode({'topic_id': topic_id})}"
        try:
            resp = self._session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except (requests.Timeout, requests.ConnectionError) as e:
            code = "Timeout" if isinstance(e, requests.Timeout) else "ConnectionError"
            raise ClsRetryableError(f"{type(e).__name__}: {e}", code=code) from e
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader) as e:
            raise ClsFinalError(f"{type(e).__name__}: {e}", code="ClientError") from e
        except requests.RequestException as e:
            # Broken chunked answers, bad content decoding…: the line was cut, not refused.
            raise ClsRetryableError(f"{type(e).__name__}: {e}", code="TransportError") from e
        return classify_response(resp.status_code, resp.headers, resp.content)


class ClsSink:
    """Rows in, acknowledged requests out, in order. A failure carries `rows_sent`: how many of
    the given rows CLS acknowledged before it, so the cursor can move exactly that far.

    One request is in flight at a time, sent from a helper thread while this one encodes the
    next: the wait for CLS (and the LZ4 pass, which releases the GIL) overlaps the encoding
    instead of adding to it. Never two in flight: on two connections CLS could store them in
    either order, and lines of one container would arrive out of order; and a failure must
    stop everything after it, so `rows_sent` stays a prefix of the rows.
    """

    def __init__(self, client: ClsClient, topic_id: str, batcher: ClsBatcher | None = None):
        self.client = client
        self.topic_id = topic_id
        self.batcher = batcher or ClsBatcher()
        self._sender: ThreadPoolExecutor | None = None

    def send(self, rows: Iterable) -> int:
        if self._sender is None:
            # Created on first use, so in the worker process that uses it (never across a fork).
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="cls-send")
        sent = 0
        in_flight: tuple[Future, int] | None = None
        try:
            for request in self.batcher.requests(rows):  # encodes while the previous one is sent
                if in_flight is not None:
                    sent += self._acknowledged(in_flight, sent)
                    in_flight = None
                future = self._sender.submit(self.client.put, self.topic_id, request.body)
                in_flight = (future, request.rows)
            if in_flight is not None:
                sent += self._acknowledged(in_flight, sent)
                in_flight = None
        finally:
            if in_flight is not None:
                # Encoding failed (or the task is being stopped) with a request still out: let
                # it end before the session is used again. Its rows were not counted, so they
                # are sent again later: a possible duplicate, never a gap.
                with contextlib.suppress(Exception):
                    in_flight[0].result()
        return sent

    @staticmethod
    def _acknowledged(in_flight: tuple[Future, int], sent_before: int) -> int:
        future, rows = in_flight
        try:
            future.result()
        except ClsError as e:
            e.rows_sent = sent_before
            raise
        return rows

    def close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown(wait=True)
            self._sender = None
        self.client.close()
