"""The storage page's figures: bytes and rows per tenant, container and day, and the dry run.

Kept fast on large installations: bytes come from pg_total_relation_size per hash leaf;
rows per container from `log_day_counts` for sealed days and from a count (or a page sample,
once a day is large) for days still being written. A container's bytes are its share of its
day's rows times the day's bytes — an estimate, and shown as one.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ingest.models import Container
from ingest.retention.load import load_rules
from ingest.retention.plan import dry_run
from ingest.store import day_counts
from ingest.store.partitions import day_tables

MAX_CONTAINERS_SHOWN = 500

_DAY_SIZES = """
SELECT i.inhparent::regclass::text, sum(pg_total_relation_size(i.inhrelid)), sum(greatest(c.reltuples, 0))
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = ANY(%s::regclass[])
GROUP BY 1
"""


@dataclass
class DayFigures:
    day: date
    table: str
    sealed_at: object
    bytes: int
    rows: int
    estimated: bool
    rows_by_ckey: dict[int, int] = field(default_factory=dict, repr=False)
    # What the viewer may see of the day: all of it, or their tenants' share.
    shown_rows: int = 0
    shown_bytes: int = 0

    def share(self, rows: int) -> int:
        total = sum(self.rows_by_ckey.values())
        return round(self.bytes * rows / total) if total else 0


@dataclass
class Usage:
    rows: int = 0
    bytes: int = 0


@dataclass
class RemovalLine:
    day: date
    whole_day: bool
    container: str
    tenant: str
    rows: int
    bytes: int


@dataclass
class StorageReport:
    days: list[DayFigures]
    tenants: list[tuple[str, Usage]]
    containers: list[tuple[Container | None, int, Usage]]
    containers_hidden: int
    removals: list[RemovalLine]
    total: Usage
    all_tenants: bool


def storage_report(tenants: list[str], all_tenants: bool) -> StorageReport:
    """Figures for `tenants`; `all_tenants` (superusers) adds rows no visible container owns."""
    containers = {c.id: c for c in Container.objects.filter(tenant__in=tenants)}
    with connection.cursor() as django_cursor:
        cur = django_cursor.cursor
        days = _day_figures(cur)
        rules = load_rules(timezone.now())
        plan = dry_run(cur, rules, settings.LOGSITE_MAX_TS_AGE_DAYS)
    visible = (lambda ckey: True) if all_tenants else (lambda ckey: ckey in containers)

    per_container: dict[int, Usage] = defaultdict(Usage)
    for d in days:
        for ckey, rows in d.rows_by_ckey.items():
            if visible(ckey):
                per_container[ckey].rows += rows
                per_container[ckey].bytes += d.share(rows)
        if all_tenants:
            d.shown_rows, d.shown_bytes = d.rows, d.bytes
        else:  # a tenant's users see their own share of a day, not the whole day
            mine = [r for k, r in d.rows_by_ckey.items() if k in containers]
            d.shown_rows, d.shown_bytes = sum(mine), sum(d.share(r) for r in mine)

    per_tenant: dict[str, Usage] = defaultdict(Usage)
    for ckey, usage in per_container.items():
        tenant = containers[ckey].tenant if ckey in containers else "(unknown container)"
        per_tenant[tenant].rows += usage.rows
        per_tenant[tenant].bytes += usage.bytes

    ranked = sorted(per_container.items(), key=lambda item: item[1].bytes, reverse=True)
    return StorageReport(
        days=sorted(days, key=lambda d: d.day, reverse=True),
        tenants=sorted(per_tenant.items(), key=lambda item: item[1].bytes, reverse=True),
        containers=[(containers.get(k), k, u) for k, u in ranked[:MAX_CONTAINERS_SHOWN]],
        containers_hidden=max(0, len(ranked) - MAX_CONTAINERS_SHOWN),
        removals=_removals(plan, {d.day: d for d in days}, containers, visible, all_tenants),
        total=Usage(sum(d.shown_rows for d in days), sum(d.shown_bytes for d in days)),
        all_tenants=all_tenants,
    )


def _removals(plan, figures: dict, containers: dict, visible, all_tenants: bool) -> list[RemovalLine]:
    lines = []
    for action in plan:
        day = figures.get(action.day)
        for ckey in sorted(action.remove):
            if not visible(ckey):
                continue
            rows = day.rows_by_ckey.get(ckey, 0) if day else 0
            c = containers.get(ckey)
            lines.append(
                RemovalLine(
                    day=action.day,
                    whole_day=action.action == "drop",
                    container=_label(c, ckey),
                    tenant=c.tenant if c else "",
                    rows=rows,
                    bytes=day.share(rows) if day else 0,
                )
            )
        if all_tenants and action.action == "drop" and not action.present:
            lines.append(RemovalLine(action.day, True, "(no rows)", "", 0, 0))
    return sorted(lines, key=lambda r: (r.day, r.tenant, r.container))


def _day_figures(cur) -> list[DayFigures]:
    tables = {day: name for day, (name, state) in day_tables(cur).items() if state == "attached"}
    if not tables:
        return []
    cur.execute("SELECT day, sealed_at FROM log_partitions")
    sealed = dict(cur.fetchall())
    cur.execute(_DAY_SIZES, (list(tables.values()),))
    sizes = {name: (int(size), int(tuples)) for name, size, tuples in cur.fetchall()}
    stored = day_counts.stored_counts(cur, [d for d in tables if sealed.get(d)])
    out = []
    for day, name in tables.items():
        size, tuples = sizes.get(name, (0, 0))
        if sealed.get(day) and day in stored:
            counts, estimated = stored[day], False
        else:
            counts, estimated = day_counts.live_counts(cur, name)
        rows = sum(counts.values()) or tuples
        out.append(DayFigures(day, name, sealed.get(day), size, rows, estimated, counts))
    return out


def _label(container: Container | None, ckey: int) -> str:
    if container is None:
        return f"container key {ckey}"
    return container.name or container.container_id[:12]
