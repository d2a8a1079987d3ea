"""`/tail/`: the live-tail page. The lines themselves arrive over the websocket (consumers.py)."""

from django.shortcuts import render

from accounts.access import visible_tenants
from ingest.models import Container

PICKER_LIMIT = 500


def _quoted(value: str) -> str:
    # The query language's quoting: inside quotes, \\ is a backslash and \" a quote.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def picker_choices(user) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(services, containers) as (query, label) pairs among the user's tenants."""
    scope = Container.objects.filter(tenant__in=visible_tenants(user))
    services = sorted(set(scope.exclude(service="").values_list("tenant", "service")[:PICKER_LIMIT]))
    containers = scope.order_by("-last_seen").values_list("tenant", "name", "container_id")[:PICKER_LIMIT]
    return (
        [(f"tenant:{_quoted(t)} service:{_quoted(s)}", f"{s} ({t})") for t, s in services],
        [
            (f"tenant:{_quoted(t)} container:{_quoted(name or cid)}", f"{name or cid[:12]} ({t})")
            for t, name, cid in containers
        ],
    )


def tail(request):
    services, containers = picker_choices(request.user)
    return render(
        request,
        "search/tail.html",
        {"services": services, "containers": containers, "query": request.GET.get("q", "")},
    )
