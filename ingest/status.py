"""What the status page, /readyz and /metrics read: ingest processes' stats in Redis, the
per-container and per-driver rates (ingest/rates.py), and forwarding lag when forwarding exists.

Every ingest process writes `logsite:ingest:<writer>` (ingest/service.py, every 2 s, expiring
after 60 s): a snapshot that is missing or older than STALE_S means that process is not
running (or cannot reach Redis).
"""

import importlib
import json
import time
from dataclasses import dataclass, field

import redis
from django.apps import apps
from django.conf import settings

from ingest.rates import Rates, container_field, driver_field, read_rates

STATS_PATTERN = "logsite:ingest:*"
STALE_S = 15


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=3)


def writer_snapshots(client: redis.Redis, now: float | None = None) -> list[dict]:
    """Every ingest process's latest stats, with `age` (seconds) and `live` added."""
    now = time.time() if now is None else now
    keys = sorted(client.scan_iter(match=STATS_PATTERN, count=100))
    out = []
    for raw in client.mget(keys) if keys else []:
        if not raw:
            continue
        try:
            snap = json.loads(raw)
        except ValueError:
            continue
        snap["age"] = max(0.0, now - float(snap.get("at", 0)))
        snap["live"] = snap["age"] <= STALE_S
        out.append(snap)
    return out


@dataclass
class DriverStatus:
    driver: object
    listening: int = 0  # live ingest processes with a running receiver for it
    errors: dict = field(default_factory=dict)  # writer -> start error
    received: int = 0
    bytes: int = 0
    malformed: int = 0
    dropped: int = 0
    tenant_label_refused: int = 0
    last_error: str = ""
    rates: Rates = field(default_factory=Rates)


def driver_statuses(drivers, snapshots: list[dict], rates: dict[str, Rates]) -> list[DriverStatus]:
    out = []
    for driver in drivers:
        status = DriverStatus(driver, rates=rates.get(driver_field(driver.id), Rates()))
        key = str(driver.id)
        for snap in snapshots:
            if not snap["live"]:
                continue
            if key in snap.get("start_errors", {}):
                status.errors[snap.get("writer", "?")] = snap["start_errors"][key]
            stats = snap.get("drivers", {}).get(key)
            if stats is None:
                continue
            status.listening += 1
            for name in ("received", "bytes", "malformed", "dropped", "tenant_label_refused"):
                setattr(status, name, getattr(status, name) + int(stats.get(name, 0)))
            status.last_error = stats.get("last_error") or status.last_error
        out.append(status)
    return out


@dataclass
class ContainerStatus:
    container: object
    rates: Rates
    dropped: int = 0

    @property
    def last_seen(self):
        return self.rates.last_seen


def container_statuses(containers, snapshots: list[dict], rates: dict[str, Rates]) -> list[ContainerStatus]:
    dropped: dict[tuple[str, str], int] = {}
    for snap in snapshots:
        for tenant, cid, n in snap.get("dropped_by_container", []):
            dropped[(tenant, cid)] = dropped.get((tenant, cid), 0) + int(n)
    return [
        ContainerStatus(
            c,
            rates.get(container_field(c.id), Rates()),
            dropped.get((c.tenant, c.container_id), 0) + dropped.get((c.tenant, c.name), 0),
        )
        for c in containers
    ]


@dataclass
class IngestSummary:
    writers: int = 0
    live: int = 0
    db_up: bool = False
    queued: int = 0
    held: int = 0
    spool_bytes: int = 0
    dropped: int = 0
    quarantined: int = 0


def summarise(snapshots: list[dict]) -> IngestSummary:
    live = [s for s in snapshots if s["live"]]
    return IngestSummary(
        writers=len(snapshots),
        live=len(live),
        db_up=bool(live) and all(s.get("db_up") for s in live),
        queued=sum(int(s.get("queued", 0)) for s in live),
        held=sum(int(s.get("held", 0)) for s in live),
        spool_bytes=sum(int(s.get("spool_bytes", 0)) for s in live),
        dropped=sum(int(s.get("dropped", 0)) for s in live),
        quarantined=sum(int(s.get("quarantined", 0)) for s in live),
    )


def rates_for(client: redis.Redis, drivers=(), containers=()) -> dict[str, Rates]:
    fields = [driver_field(d.id) for d in drivers] + [container_field(c.id) for c in containers]
    return read_rates(client, fields)


def forwarding_lags(tenants: list[str]) -> list[dict] | None:
    """Lag per forwarding target of these tenants, or None when forwarding is not installed.

    Contract for the forward app: `forward.status.lags(tenants)` returns a list of dicts with
    `name`, `tenant` (slug or None for all), `lag_seconds` (float or None when unknown) and
    `pending_rows` (int or None), one per target the given tenants may see.
    """
    if not apps.is_installed("forward"):
        return None
    try:
        module = importlib.import_module("forward.status")
    except ImportError:
        return None
    lags = getattr(module, "lags", None)
    return list(lags(tenants)) if callable(lags) else None
