"""Status page, its JSON twin, "connect a container", /readyz and /metrics."""

from datetime import UTC, datetime

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from accounts.access import admin_tenants, visible_tenants
from ingest import binds, status
from ingest.metrics import IngestCollector, exposition
from ingest.models import Container, Driver
from ingest.snippets import snippets_for
from ingest.timelines import key_of, timelines_for

CONTAINERS_SHOWN = 300


def _visible_drivers(user):
    drivers = Driver.objects.select_related("tenant").order_by("name")
    if user.is_superuser:
        return drivers
    return drivers.filter(tenant__slug__in=visible_tenants(user))


def _containers(user, query: str):
    containers = Container.objects.filter(tenant__in=visible_tenants(user)).select_related("driver")
    if query:
        containers = containers.filter(
            Q(name__icontains=query)
            | Q(container_id__istartswith=query)
            | Q(image__icontains=query)
            | Q(service__icontains=query)
        )
    return list(containers.order_by("-last_seen")[:CONTAINERS_SHOWN])


def _when(epoch: float | None):
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _collect(request):
    user = request.user
    query = request.GET.get("q", "").strip()[:200]
    drivers = list(_visible_drivers(user))
    containers = _containers(user, query)
    client = status.redis_client()
    try:
        snapshots = status.writer_snapshots(client)
        rates = status.rates_for(client, drivers, containers)
        redis_error = ""
    except redis.RedisError as e:
        snapshots, rates, redis_error = [], {}, f"Redis unavailable: {type(e).__name__}"
    finally:
        client.close()
    return {
        "query": query,
        "summary": status.summarise(snapshots),
        "writers": snapshots if user.is_superuser else None,
        "drivers": status.driver_statuses(drivers, snapshots, rates),
        "containers": status.container_statuses(containers, snapshots, rates),
        "lags": status.forwarding_lags(visible_tenants(user)),
        "redis_error": redis_error,
        "admin_slugs": set(admin_tenants(user)),
    }


def status_page(request):
    data = _collect(request)
    by_ckey = {cs.container.id: cs for cs in data["containers"]}
    timelines = timelines_for(cs.container for cs in data["containers"])
    for timeline in timelines:
        timeline.statuses = [by_ckey[c.id] for c in timeline.containers]
        timeline.per_s_1m = sum(s.rates.per_s_1m for s in timeline.statuses)
        timeline.per_s_1h = sum(s.rates.per_s_1h for s in timeline.statuses)
        timeline.last_seen_at = _when(max((s.rates.last_seen or 0 for s in timeline.statuses), default=0))
    for ds in data["drivers"]:
        ds.last_seen_at = _when(ds.rates.last_seen)
    return render(
        request,
        "ingest/status.html",
        {**data, "timelines": timelines, "shown_limit": CONTAINERS_SHOWN},
    )


def status_api(request):
    """The status page as JSON (for the CLI): same scoping, same numbers."""
    data = _collect(request)
    return JsonResponse(
        {
            "ingest": vars(data["summary"]),
            "drivers": [
                {
                    "id": ds.driver.id,
                    "name": ds.driver.name,
                    "kind": ds.driver.kind,
                    "tenant": ds.driver.tenant.slug if ds.driver.tenant_id else None,
                    "enabled": ds.driver.enabled,
                    "listening": ds.listening,
                    "errors": ds.errors,
                    "received": ds.received,
                    "bytes": ds.bytes,
                    "malformed": ds.malformed,
                    "dropped": ds.dropped,
                    "lines_per_s_1m": round(ds.rates.per_s_1m, 3),
                    "lines_per_s_1h": round(ds.rates.per_s_1h, 3),
                    "bytes_1h": round(ds.rates.bytes_1h),
                    "last_seen": ds.rates.last_seen,
                }
                for ds in data["drivers"]
            ],
            "containers": [
                {
                    "ckey": cs.container.id,
                    "tenant": cs.container.tenant,
                    "container_id": cs.container.container_id,
                    "name": cs.container.name,
                    "image": cs.container.image,
                    "timeline": key_of(cs.container),
                    "lines_per_s_1m": round(cs.rates.per_s_1m, 3),
                    "lines_per_s_1h": round(cs.rates.per_s_1h, 3),
                    "bytes_1h": round(cs.rates.bytes_1h),
                    "dropped": cs.dropped,
                    "last_seen": cs.rates.last_seen or cs.container.last_seen.timestamp(),
                }
                for cs in data["containers"]
            ],
            "forwarding": data["lags"],
        }
    )


def _public_host(request) -> str:
    wanted = request.GET.get("host", "").strip()
    if wanted:
        try:
            binds.endpoints("http", f"{wanted}:1")
            return wanted
        except ValueError:
            pass
    if settings.LOGSITE_PUBLIC_HOST:
        return settings.LOGSITE_PUBLIC_HOST
    host = request.get_host()
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def connect_page(request, driver_id: int):
    driver = get_object_or_404(Driver.objects.select_related("tenant"), pk=driver_id)
    if not request.user.is_superuser and (
        driver.tenant is None or driver.tenant.slug not in visible_tenants(request.user)
    ):
        raise Http404("no such driver")
    host = _public_host(request)
    try:
        snippets = snippets_for(driver, host.strip("[]"), request.build_absolute_uri("/").rstrip("/"))
        error = ""
    except ValueError as e:
        snippets, error = [], str(e)
    return render(
        request,
        "ingest/connect.html",
        {"driver": driver, "snippets": snippets, "error": error, "host": host.strip("[]")},
    )


@login_not_required  # probes cannot log in; the answer names no tenant, driver or writer
def readyz(request):
    checks = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"unavailable ({type(e).__name__})"
    client = status.redis_client()
    try:
        client.ping()
        checks["redis"] = "ok"
        live = [s for s in status.writer_snapshots(client) if s["live"]]
        checks["ingest"] = f"ok ({len(live)} live)" if live else "no live ingest process"
    except redis.RedisError as e:
        checks["redis"] = f"unavailable ({type(e).__name__})"
        checks["ingest"] = "unknown"
    finally:
        client.close()
    ready = all(v.startswith("ok") for v in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


@login_not_required  # answers 401 itself instead of redirecting a scraper to the login page
def metrics(request):
    user = request.user
    if not user.is_authenticated:
        response = HttpResponse(
            "authentication required: a session or Authorization: Bearer lsu_…\n", status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="logsite"'
        return response
    drivers = {str(d.id): d for d in _visible_drivers(user).filter(tenant__isnull=False)}
    if user.is_superuser:
        drivers = {str(d.id): d for d in _visible_drivers(user)}
    client = status.redis_client()
    try:
        snapshots = status.writer_snapshots(client)
    except redis.RedisError:
        return HttpResponse("ingest stats unavailable (Redis)\n", status=503)
    finally:
        client.close()
    lags = status.forwarding_lags(visible_tenants(user))
    body = exposition(IngestCollector(snapshots, drivers, everything=user.is_superuser, lags=lags))
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
