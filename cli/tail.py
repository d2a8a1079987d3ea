"""`logsite tail [QUERY] [-f] [--recent N] [--json]`: the live-tail websocket protocol from a
terminal (docs/live-tail.md).

With -f a dropped connection is re-opened with the last id held per container, so the output
neither loses nor repeats a line. Lines are untrusted: terminal control sequences other than
colours are removed before printing (colours too when the output is not a terminal).
"""

import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cli.main import common_arguments

EXIT_QUERY = 2
EXIT_AUTH = 3
EXIT_CONNECT = 4
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_ESCAPES = re.compile(r"\x1b(?:\[[0-9;:?]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def register(commands) -> None:
    parser = commands.add_parser("tail", help="print recent lines, and follow them live with -f")
    parser.add_argument("query", nargs="?", default="", help="query (see docs/query-language.md)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--recent", type=int, default=20, help="recent lines first, 0-10000 (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    common_arguments(parser)
    parser.set_defaults(run=run)


def ws_url(base: str) -> tuple[str, str]:
    """(websocket URL of /ws/tail/, Origin header) for a server base URL."""
    parts = urlsplit(base if "://" in base else "http://" + base)
    scheme = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
    origin = urlunsplit(("https" if scheme == "wss" else "http", parts.netloc, "", "", ""))
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/tail/", "", "")), origin


def safe_text(text: str, colours: bool) -> str:
    if colours:
        kept = _SGR.findall(text)
        pieces = _SGR.split(text)
        cleaned = [_CONTROL.sub("", _ESCAPES.sub("", p)) for p in pieces]
        out = cleaned[0]
        for sgr, piece in zip(kept, cleaned[1:], strict=True):
            out += sgr + piece
        return out + ("\x1b[0m" if kept else "")
    return _CONTROL.sub("", _ESCAPES.sub("", text))


class Printer:
    def __init__(self, as_json: bool, out=sys.stdout):
        self.as_json = as_json
        self.out = out
        self.colours = out.isatty() and not as_json
        self.containers: dict[str, dict] = {}
        self.last_ids: dict[str, int] = {}

    def lines(self, message: dict) -> None:
        self.containers.update(message.get("containers") or {})
        for ckey, row_id, ts_us, stream, level, _flags, text, attrs in message.get("lines", []):
            key = str(ckey)
            self.last_ids[key] = max(self.last_ids.get(key, 0), row_id)
            container = self.containers.get(key, {})
            when = datetime.fromtimestamp(ts_us / 1e6, UTC).astimezone()
            if self.as_json:
                record = {
                    "ts": when.isoformat(timespec="microseconds"),
                    "container": container.get("name"),
                    "tenant": container.get("tenant"),
                    "stream": stream,
                    "level": level,
                    "line": text,
                    "attrs": attrs,
                }
                self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                name = safe_text(container.get("name") or container.get("container_id") or "?", False)
                mark = "ERR" if stream == "stderr" else "OUT"
                stamp = when.isoformat(timespec="milliseconds")
                self.out.write(f"{stamp} {name} {mark} {safe_text(text, self.colours)}\n")
        self.out.flush()


async def _session(args, printer: Printer, resume: bool) -> str:
    """One websocket session; returns "done" or "dropped"."""
    url, origin = ws_url(args.url)
    headers = {"Authorization": f"Bearer {args.token}"}
    async with connect(url, additional_headers=headers, origin=origin, max_size=64 * 1024 * 1024) as ws:
        request: dict = {"type": "subscribe", "query": args.query}
        if resume and printer.last_ids:
            request["resume"] = printer.last_ids
        else:
            request["recent"] = args.recent
        await ws.send(json.dumps(request))
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "lines":
                    printer.lines(message)
                elif kind == "error":
                    where = f" (at character {message['position'] + 1})" if "position" in message else ""
                    raise QueryFailed(f"{message.get('message')}{where}")
                elif kind == "live" and not args.follow:
                    return "done"
        except ConnectionClosed:
            return "dropped"
    return "dropped"


class QueryFailed(Exception):
    pass


async def _run(args) -> int:
    printer = Printer(args.json)
    resume = False
    delay = 0.5
    while True:
        try:
            outcome = await _session(args, printer, resume)
        except QueryFailed as e:
            print(f"logsite tail: {e}", file=sys.stderr)
            return EXIT_QUERY
        except InvalidStatus as e:
            if e.response.status_code == 403:
                print("logsite tail: the server refused the token (or the origin)", file=sys.stderr)
                return EXIT_AUTH
            outcome = "dropped"
        except (OSError, ConnectionClosed) as e:
            if not args.follow:
                print(f"logsite tail: cannot reach {args.url}: {e}", file=sys.stderr)
                return EXIT_CONNECT
            outcome = "dropped"
        if outcome == "done" or not args.follow:
            return 0
        print("logsite tail: connection lost; resuming", file=sys.stderr)
        resume = True
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10)


def run(args) -> int:
    if not 0 <= args.recent <= 10_000:
        print("logsite tail: --recent must be between 0 and 10000", file=sys.stderr)
        return EXIT_QUERY
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
