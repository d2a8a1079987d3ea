"""`docker logs` for containers on this driver, answered from Logsite's store.

dockerd sends ReadLogs with the container's stored Info and a `Config` (Since, Until, Tail,
Follow) and reads back the FIFO framing (length + LogEntry). Lines come from Logsite, so they
stay readable after the container and the host's files are gone.

Contract this module expects from Logsite (served by search/container_logs.py; authenticated
with the driver's Bearer token, the same one used for push, which can read only containers that
came in through that driver):

    GET <read-url>/api/v1/containers/<container_id>/logs?since=&until=&tail=&after_id=

    since, until  RFC 3339 with ns, both inclusive; absent = unbounded
    tail          N >= 0: only the newest N lines that match the other parameters
    after_id      only lines with id > after_id (the follow cursor)
    answer        200, NDJSON, one object per line, oldest first (by ts, id; by id with after_id):
                  {"id": <int, increasing per container in commit order>,
                   "ts": "<RFC 3339 with ns>", "stream": "stdout"|"stderr", "line": "<text>"}
                  404 when the container is unknown to the token (served as no lines);
                  401 for a wrong token; any other non-200 becomes the `docker logs` error.

The cursor is the largest id seen, not the last row's, because rows come in time order. Should
a server stop at a page size, asking again with after_id picks up the rest.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from driver.fifo import encode_frame
from driver.logentry import LogEntry
from driver.options import Options
from driver.timefmt import format_rfc3339_ns, is_go_zero_time, parse_rfc3339_ns

log = logging.getLogger(__name__)


class ReadError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ReadConfig:
    since_ns: int | None
    until_ns: int | None
    tail: int  # -1 everything, 0 nothing old, N the last N
    follow: bool

    @classmethod
    def from_json(cls, cfg: Any) -> "ReadConfig":
        if not isinstance(cfg, dict):
            cfg = {}
        try:
            since = None if is_go_zero_time(cfg.get("Since")) else parse_rfc3339_ns(cfg["Since"])
            until = None if is_go_zero_time(cfg.get("Until")) else parse_rfc3339_ns(cfg["Until"])
            tail = int(cfg.get("Tail", -1))
        except (TypeError, ValueError) as exc:
            raise ReadError(f"bad ReadLogs Config: {exc}") from None
        return cls(since, until, tail if tail >= 0 else -1, bool(cfg.get("Follow")))


class LogsiteReader:
    def __init__(self, session: aiohttp.ClientSession, options: Options, container_id: str) -> None:
        self._session = session
        self._url = f"{options.read_base_url}/api/v1/containers/{quote(container_id, safe='')}/logs"
        self._headers = {"Authorization": f"Bearer {options.token}", "Accept": "application/x-ndjson"}

    async def fetch(self, **params: str | int) -> list[dict[str, Any]]:
        url = f"{self._url}?{urlencode(params)}" if params else self._url
        try:
            async with self._session.get(url, headers=self._headers) as resp:
                if resp.status == 404:
                    return []
                if resp.status != 200:
                    text = await resp.text(errors="replace")
                    raise ReadError(f"Logsite answered HTTP {resp.status}: {text[:200]}")
                rows = []
                async for raw in resp.content:
                    if raw.strip():
                        rows.append(_row(raw))
                return rows
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ReadError(f"cannot reach Logsite at {self._url}: {exc}") from None


def _row(raw: bytes) -> dict[str, Any]:
    try:
        row = json.loads(raw)
        row["_ts_ns"] = parse_rfc3339_ns(row["ts"])
        row["id"] = int(row["id"])
        if not isinstance(row.get("line"), str):
            raise ValueError("line is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise ReadError(f"Logsite sent a malformed log row: {exc}") from None
    return row


def _max_id(rows: list[dict[str, Any]], cursor: int) -> int:
    return max((row["id"] for row in rows), default=cursor)


def _frame(row: dict[str, Any]) -> bytes:
    entry = LogEntry(
        source="stderr" if row.get("stream") == "stderr" else "stdout",
        time_nano=row["_ts_ns"],
        # dockerd writes `line` to the `docker logs` client as it is; json-file keeps each line's
        # newline for that reason, and Logsite stores lines without it.
        line=row["line"].encode("utf-8", "surrogateescape") + b"\n",
    )
    return encode_frame(entry)


async def serve(
    request: web.Request,
    reader: LogsiteReader,
    cfg: ReadConfig,
    still_logging: Callable[[], bool],
    poll_s: float,
) -> web.StreamResponse:
    bounds: dict[str, str | int] = {}
    if cfg.since_ns is not None:
        bounds["since"] = format_rfc3339_ns(cfg.since_ns)
    if cfg.until_ns is not None:
        bounds["until"] = format_rfc3339_ns(cfg.until_ns)

    # The first query decides between an error answer and a stream, so it runs before any
    # header is sent: dockerd shows a non-200 answer's Err to the `docker logs` user.
    cursor = 0
    try:
        if cfg.tail > 0:
            first = await reader.fetch(**bounds, tail=cfg.tail)
        elif cfg.tail == 0:
            first = []
            if cfg.follow:
                # No old lines, but the cursor must start at the newest one already stored.
                newest = await reader.fetch(tail=1)
                cursor = _max_id(newest, 0)
        else:
            first = await reader.fetch(**bounds)
    except ReadError as exc:
        return web.json_response({"Err": str(exc)}, status=500)

    resp = web.StreamResponse(headers={"Content-Type": "application/x-json-stream"})
    await resp.prepare(request)
    cursor = _max_id(first, cursor)
    try:
        if not await _write(resp, first, cfg):
            return await _end(resp)
        if cfg.tail < 0:
            # Page through everything that matched, then follow from the same cursor.
            while True:
                rows = await reader.fetch(**bounds, after_id=cursor)
                if not rows:
                    break
                cursor = _max_id(rows, cursor)
                if not await _write(resp, rows, cfg):
                    return await _end(resp)
        if cfg.follow:
            await _follow(request, resp, reader, cfg, bounds, cursor, still_logging, poll_s)
    except ReadError as exc:
        log.warning("docker logs stream ended early: %s", exc)
    except ConnectionResetError:
        return resp  # the `docker logs` client went away
    return await _end(resp)


async def _follow(
    request: web.Request,
    resp: web.StreamResponse,
    reader: LogsiteReader,
    cfg: ReadConfig,
    bounds: dict[str, str | int],
    cursor: int,
    still_logging: Callable[[], bool],
    poll_s: float,
) -> None:
    while True:
        # Checked before the poll: lines a stopped stream delivered last are still fetched once.
        final = not still_logging()
        if cfg.until_ns is not None and time.time_ns() > cfg.until_ns:
            final = True
        try:
            rows = await reader.fetch(**bounds, after_id=cursor)
        except ReadError as exc:
            log.info("docker logs -f: poll failed, retrying: %s", exc)
            rows = []
        if rows:
            cursor = _max_id(rows, cursor)
            if not await _write(resp, rows, cfg):
                return
            continue
        if final or request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(poll_s)


async def _write(resp: web.StreamResponse, rows: list[dict[str, Any]], cfg: ReadConfig) -> bool:
    """False once a row is past Until: dockerd stops there too."""
    for row in rows:
        if cfg.until_ns is not None and row["_ts_ns"] > cfg.until_ns:
            return False
        if cfg.since_ns is not None and row["_ts_ns"] < cfg.since_ns:
            continue
        await resp.write(_frame(row))
    return True


async def _end(resp: web.StreamResponse) -> web.StreamResponse:
    await resp.write_eof()
    return resp
