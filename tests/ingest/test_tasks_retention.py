"""Retention in the real worker: exactly what the policies say goes, across tenants and pins."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ingest import tasks
from ingest.models import Container, Pin, RetentionPolicy, Tenant
from ingest.record import Record
from ingest.retention.load import load_rules
from ingest.retention.plan import dry_run
from ingest.store import partitions
from tests.support.celery_worker import run_task
from tests.support.rows import RowWriter, day_ns, drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)

ROWS_PER_DAY = 3

# container name -> (tenant, service, labels, ages in days of the days it has rows on)
CONTAINERS = {
    "a-web": ("tenant-a", "web", {}, [1, 3, 6, 8, 10, 12, 16, 22, 40, 50]),
    "a-audit": ("tenant-a", "audit", {}, [1, 3, 6, 8, 12, 16, 22, 40]),
    "a-labelled": ("tenant-a", "web", {"keep": "long"}, [1, 3, 6, 8, 12, 16, 22, 40]),
    "a-special": ("tenant-a", "web", {}, [1, 3, 6, 8, 10, 12, 16, 22, 40]),
    "a-gone": ("tenant-a", "web", {}, [12]),
    "b-api": ("tenant-b", "api", {}, [1, 3, 6, 8, 12, 16, 22, 40, 50]),
    "c-app": ("tenant-c", "app", {}, [1, 3, 6, 8, 12, 16, 22, 40, 50]),
}

# Written out by hand from the policies and pins below (not computed by the code under test):
# a-web 5 days but pinned on day 8; a-audit 15 days (service) pinned on day 40; a-labelled 25
# (label beats service); a-special 2 (container beats all); b-api 30 (tenant); c-app 20
# (global); the expired pin on day 12 counts for nothing.
KEPT_AGES = {
    "a-web": [1, 3, 8],
    "a-audit": [1, 3, 6, 8, 12, 40],
    "a-labelled": [1, 3, 6, 8, 12, 16, 22],
    "a-special": [1],
    "a-gone": [],
    "b-api": [1, 3, 6, 8, 12, 16, 22],
    "c-app": [1, 3, 6, 8, 12, 16],
}
DROPPED_AGES = {10, 45, 50}  # every row expired (45: a day without any row)


def at_noon(today, age: int) -> datetime:
    return datetime.combine(today - timedelta(days=age), time(12), tzinfo=UTC)


@pytest.fixture
def scenario(transactional_db):
    drop_all_days()
    today = timezone.now().date()
    tenants = {slug: Tenant.objects.create(slug=slug) for slug in ("tenant-a", "tenant-b", "tenant-c")}
    RetentionPolicy.objects.create(scope="global", days=20)
    RetentionPolicy.objects.create(scope="tenant", tenant=tenants["tenant-a"], days=5)
    RetentionPolicy.objects.create(scope="tenant", tenant=tenants["tenant-b"], days=30)
    RetentionPolicy.objects.create(scope="service", tenant=tenants["tenant-a"], service="audit", days=15)
    RetentionPolicy.objects.create(scope="label", label_key="keep", label_value="long", days=25)
    RetentionPolicy.objects.create(scope="container", container="a-special", days=2)
    future = timezone.now() + timedelta(days=7)
    noon8 = at_noon(today, 8)
    Pin.objects.create(
        tenant=tenants["tenant-a"], container="a-web", start=noon8, end=noon8 + timedelta(hours=1),
        reason="incident 8 days ago", expires_at=future,
    )  # fmt: skip
    Pin.objects.create(
        tenant=tenants["tenant-a"], service="audit", start=at_noon(today, 41), end=at_noon(today, 39),
        reason="audit request", expires_at=future,
    )  # fmt: skip
    Pin.objects.create(
        tenant=tenants["tenant-a"], start=at_noon(today, 13), end=at_noon(today, 11),
        reason="over", expires_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip
    rows = RowWriter()
    try:
        by_age: dict[int, list[Record]] = {}
        for name, (tenant, service, labels, ages) in CONTAINERS.items():
            for age in ages:
                by_age.setdefault(age, []).extend(
                    Record(
                        line=f"{name} {age} {n}",
                        ts_ns=day_ns(today - timedelta(days=age), 3600 * (n + 1)),
                        tenant=tenant,
                        service=service,
                        container_id=f"{name}-id",
                        container_name=name,
                        labels=labels or None,
                    )
                    for n in range(ROWS_PER_DAY)
                )
        for age in sorted(by_age, reverse=True):
            rows.write(by_age[age])  # one ledger batch per day
    finally:
        rows.close()
    with connection.cursor() as cur:
        for age in (2, 45):  # days without rows: one too recent to go, one past every policy
            with connection.cursor() as c2:
                partitions.ensure_day(c2.cursor, today - timedelta(days=age))
        # As if each batch had been committed on its day, so the ledger has an old head.
        cur.execute("UPDATE log_batches SET committed_at = ts_max")
    return today


def stored(today) -> dict[str, list[int]]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.name, (l.ts AT TIME ZONE 'UTC')::date, count(*) FROM logs l "
            "JOIN containers c ON c.id = l.ckey GROUP BY 1, 2"
        )
        out: dict[str, list[int]] = {name: [] for name in CONTAINERS}
        for name, day, count in cur.fetchall():
            assert count == ROWS_PER_DAY
            out[name].append((today - day).days)
    return {name: sorted(ages) for name, ages in out.items()}


def day_ages(today) -> set[int]:
    with connection.cursor() as cur:
        return {(today - day).days for day in partitions.day_tables(cur.cursor)}


def test_it_removes_exactly_what_the_policies_say(scenario, celery_worker):
    today = scenario
    ages_before = day_ages(today)
    with connection.cursor() as cur:
        plan = dry_run(cur.cursor, load_rules(timezone.now()), max_ts_age_days=30)
    names = dict(Container.objects.values_list("id", "name"))
    planned = {(names[k], (today - a.day).days) for a in plan for k in a.remove}

    result = run_task(tasks.apply_retention, celery_worker)

    assert stored(today) == KEPT_AGES
    assert day_ages(today) == ages_before - DROPPED_AGES
    assert sorted(result["dropped_days"]) == sorted(str(today - timedelta(days=a)) for a in DROPPED_AGES)
    removed = {(n, a) for n, (_t, _s, _l, ages) in CONTAINERS.items() for a in ages if a not in KEPT_AGES[n]}
    assert planned == removed  # the storage page's dry run said exactly this
    with connection.cursor() as cur:
        cur.execute("SELECT day FROM log_partitions")
        assert {(today - r[0]).days for r in cur.fetchall()} == ages_before - DROPPED_AGES

    # Idempotent: nothing left to do.
    again = run_task(tasks.apply_retention, celery_worker)
    assert again["dropped_days"] == []
    assert again["deleted_rows"] == {}
    assert stored(today) == KEPT_AGES


def test_it_expires_containers_without_rows_and_prunes_the_ledger(scenario, celery_worker):
    today = scenario
    run_task(tasks.apply_retention, celery_worker)
    # Containers that wrote in the last hour are never expired (the writer may hold their key).
    assert run_task(tasks.expire_containers, celery_worker)["expired"] == []
    Container.objects.update(last_seen=timezone.now() - timedelta(hours=2))
    gone = Container.objects.get(name="a-gone").id

    assert run_task(tasks.expire_containers, celery_worker)["expired"] == [gone]
    assert sorted(Container.objects.values_list("name", flat=True)) == sorted(set(CONTAINERS) - {"a-gone"})

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM log_batches")
        before = cur.fetchone()[0]
    result = run_task(tasks.prune_ledger, celery_worker)
    oldest = datetime.combine(today - timedelta(days=40), time(), tzinfo=UTC)
    with connection.cursor() as cur:
        cur.execute("SELECT min(committed_at), count(*) FROM log_batches")
        first, after = cur.fetchone()
    assert result["ledger_rows"] == before - after == 1  # the batch of day 50
    assert first >= oldest - timedelta(hours=1)


def test_it_lets_a_pin_win_over_every_policy(scenario, celery_worker):
    today = scenario
    Pin.objects.create(
        start=at_noon(today, 60), end=at_noon(today, 0), reason="legal hold on everything",
        expires_at=timezone.now() + timedelta(days=1),
    )  # fmt: skip

    result = run_task(tasks.apply_retention, celery_worker)

    assert result["deleted_rows"] == {}
    assert stored(today) == {name: sorted(ages) for name, (_t, _s, _l, ages) in CONTAINERS.items()}
    assert result["dropped_days"] == [(today - timedelta(days=45)).isoformat()]  # it has no rows at all
