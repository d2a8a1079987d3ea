"""`logsite search QUERY [--since …] [--until …] [--output text|ndjson|csv] [--limit N]`.

Without --output it prints the newest matching lines as text (paged through the API up to
--limit); with --output ndjson|csv it streams the whole result from the export endpoint and
shows progress on stderr, so a long export can be watched and piped.
"""

import sys
import time

import requests

from cli.main import common_arguments


def register(commands) -> None:
    parser = commands.add_parser("search", help="search stored lines")
    parser.add_argument("query", nargs="?", default="", help="query (see docs/query-language.md)")
    parser.add_argument("--since", help="e.g. 2h or 2026-11-26T10:00:00Z (added to the query)")
    parser.add_argument("--until", help="added to the query as until:")
    parser.add_argument("--output", choices=["text", "ndjson", "csv"], default="text")
    parser.add_argument("--limit", type=int, default=100, help="lines for text output (default 100)")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr for exports")
    common_arguments(parser)
    parser.set_defaults(run=run)


def full_query(args) -> str:
    parts = [args.query] if args.query else []
    if args.since:
        parts.append(f"since:{args.since}")
    if args.until:
        parts.append(f"until:{args.until}")
    return " ".join(parts)


def run(args) -> int:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.token}"
    try:
        if args.output == "text":
            return print_text(session, args)
        return export(session, args)
    except requests.RequestException as e:
        print(f"logsite: cannot reach {args.url}: {e}", file=sys.stderr)
        return 1


def _fail(response) -> int:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    where = f" at position {body['position']}" if "position" in body else ""
    print(
        f"logsite: {body.get('message') or body.get('error')}{where} (HTTP {response.status_code})",
        file=sys.stderr,
    )
    return 1


def print_text(session, args) -> int:
    lines, before = [], None
    while len(lines) < args.limit:
        params = {"q": full_query(args), "limit": min(1000, args.limit - len(lines))}
        if before:
            params["before"] = before
        response = session.get(args.url.rstrip("/") + "/api/v1/search", params=params, timeout=60)
        if response.status_code != 200:
            return _fail(response)
        page = response.json()
        lines += page["lines"]
        before = page["next"]
        if not before:
            break
    for line in reversed(lines):  # oldest first, like a log file
        container = line["container"].get("name") or (line["container"].get("container_id") or "")[:12]
        print(f"{line['ts']} {container} {line['stream']}: {line['line']}")
    return 0


def export(session, args) -> int:
    params = {"q": full_query(args), "format": args.output}
    started = time.monotonic()
    count = 0
    with session.get(
        args.url.rstrip("/") + "/api/v1/export", params=params, stream=True, timeout=600
    ) as response:
        if response.status_code != 200:
            return _fail(response)
        out = sys.stdout.buffer
        for chunk in response.iter_lines(chunk_size=256 * 1024):
            out.write(chunk + b"\n")
            count += 1
            if not args.no_progress and count % 10_000 == 0:
                rate = count / max(time.monotonic() - started, 1e-6)
                print(f"\r{count:,} lines ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    if args.output == "csv":
        count -= 1  # the header row
    if not args.no_progress:
        print(f"\r{count:,} lines in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0
