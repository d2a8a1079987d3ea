"""JSON API of the search: /api/v1/search, histogram, context, export, saved searches.

Authentication: a session (browser) or `Authorization: Bearer lsu_…` (CLI, scripts; see
accounts/middleware.py). Unauthenticated calls get 401 JSON, not a login redirect. Every call
is scoped to the caller's tenants. The contract is in search/openapi.json.
"""

import functools
import json
from datetime import UTC, datetime
from pathlib import Path

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import visible_tenants
from ingest.timeparse import ns_to_rfc3339
from search import executor
from search.export import stream_rows
from search.models import SavedSearch
from search.querylang import QueryError, parse, to_text

OPENAPI = Path(__file__).with_name("openapi.json")
MAX_PAGE = 1000


def api_view(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "authentication required"}, status=401)
        try:
            return view(request, *args, **kwargs)
        except QueryError as e:
            return JsonResponse(
                {"error": "bad query", "message": e.message, "position": e.position}, status=400
            )
        except ValueError as e:
            return JsonResponse({"error": str(e)}, status=400)

    return login_not_required(wrapped)


def _ts(value: datetime, ns: int = 0) -> str:
    us = int(value.timestamp() * 1_000_000)
    return ns_to_rfc3339(us * 1000 + ns)


def serialise_row(row: dict, containers: dict) -> dict:
    meta = containers.get(row["ckey"], {})
    return {
        "id": row["id"],
        "ckey": row["ckey"],
        "ts": _ts(row["ts"], row.get("ts_ns") or 0),
        "stream": row["stream"],
        "level": row["level"],
        "flags": row["flags"],
        "line": row["line"],
        "attrs": row["attrs"],
        "container": {k: meta.get(k) for k in ("container_id", "name", "image", "service", "tenant", "host")},
    }


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    """Cursors travel as '<RFC 3339 ts>,<id>' (the `next` value of the previous page)."""
    if not value:
        return None
    ts_text, _, id_text = value.rpartition(",")
    try:
        return datetime.fromisoformat(ts_text.replace("Z", "+00:00")), int(id_text)
    except ValueError as e:
        raise ValueError(f"bad cursor {value!r}") from e


def _limit(request, default: int = executor.DEFAULT_LIMIT) -> int:
    try:
        limit = int(request.GET.get("limit", default))
    except ValueError as e:
        raise ValueError("limit must be an integer") from e
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    return limit


@require_GET
@api_view
def search(request):
    query = request.GET.get("q", "")
    node = parse(query)
    order = request.GET.get("order", "newest")
    if order not in ("newest", "oldest"):
        raise ValueError("order must be newest or oldest")
    page = executor.search_page(
        visible_tenants(request.user),
        node,
        limit=_limit(request),
        before=_cursor(request.GET.get("before")),
        newest_first=order == "newest",
    )
    nxt = page.next_before
    return JsonResponse(
        {
            "query": to_text(node),
            "lines": [serialise_row(r, page.containers) for r in page.rows],
            "next": f"{nxt[0].astimezone(UTC).isoformat()},{nxt[1]}" if nxt else None,
        }
    )


@require_GET
@api_view
def histogram(request):
    buckets = executor.histogram(
        visible_tenants(request.user), request.GET.get("q", ""), bucket=request.GET.get("bucket", "1h")
    )
    return JsonResponse(
        {
            "buckets": [
                {"start": b["bucket"].astimezone(UTC).isoformat(), "count": b["count"]} for b in buckets
            ]
        }
    )


@require_GET
@api_view
def context(request):
    try:
        ckey, row_id = int(request.GET["ckey"]), int(request.GET["id"])
        before = min(int(request.GET.get("before", 20)), MAX_PAGE)
        after = min(int(request.GET.get("after", 20)), MAX_PAGE)
    except (KeyError, ValueError):
        return JsonResponse({"error": "ckey and id are required integers"}, status=400)
    try:
        found = executor.context(visible_tenants(request.user), ckey, row_id, before, after)
    except LookupError:
        return JsonResponse({"error": "no such line"}, status=404)
    meta = found["containers"]
    return JsonResponse(
        {
            "before": [serialise_row(r, meta) for r in found["before"]],
            "line": serialise_row(found["line"], meta),
            "after": [serialise_row(r, meta) for r in found["after"]],
        }
    )


@require_GET
@api_view
def export(request):
    fmt = request.GET.get("format", "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise ValueError("format must be ndjson or csv")
    node = parse(request.GET.get("q", ""))
    tenants = visible_tenants(request.user)
    with connection.cursor() as cur:
        ckeys = executor.matching_ckeys(cur, node, tenants)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(stream_rows(node, tenants, ckeys, fmt), content_type=content_type)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="logsite-{stamp}.{fmt}"'
    return response


@require_http_methods(["GET", "POST"])
@api_view
def saved_searches(request):
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
            name, query = str(body["name"]).strip(), str(body["query"])
        except (ValueError, KeyError, TypeError):
            return JsonResponse({"error": 'send {"name": …, "query": …}'}, status=400)
        if not name:
            return JsonResponse({"error": "name must not be empty"}, status=400)
        canonical = to_text(parse(query))
        saved, _ = SavedSearch.objects.update_or_create(
            user=request.user, name=name[:120], defaults={"query": canonical}
        )
        return JsonResponse({"id": saved.id, "name": saved.name, "query": saved.query}, status=201)
    items = [{"id": s.id, "name": s.name, "query": s.query} for s in request.user.saved_searches.all()]
    return JsonResponse({"saved_searches": items})


@require_http_methods(["DELETE"])
@api_view
def saved_search(request, pk: int):
    deleted, _ = SavedSearch.objects.filter(user=request.user, pk=pk).delete()
    return JsonResponse({"deleted": bool(deleted)}, status=200 if deleted else 404)


@require_GET
@api_view
def openapi(request):
    return FileResponse(OPENAPI.open("rb"), content_type="application/json")
