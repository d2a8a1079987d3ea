"""Retention and sealing while a real ingest process takes lines: nothing acknowledged is lost,
including late lines for a day that retention is dropping at that moment."""

import json
import threading
import time
from datetime import timedelta

import psycopg
import pytest
import requests
from django.db import connection
from django.utils import timezone

from ingest import tasks
from ingest.models import RetentionPolicy
from ingest.record import Record
from ingest.store.partitions import partition_name
from ingest.store.writer import conninfo_from_settings
from tests.support.celery_worker import wait_for_run
from tests.support.rows import RowWriter, day_ns, drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 100


class Pusher(threading.Thread):
    """Pushes batches for one container until stopped; counts what was acknowledged."""

    def __init__(self, url: str, token: str, tenant: str, container: str, ts_of, start_after=None):
        super().__init__(daemon=True)
        self.url, self.token, self.tenant, self.container, self.ts_of = url, token, tenant, container, ts_of
        self.start_after = start_after
        self.stop = threading.Event()
        self.acked = 0
        self.errors: list[str] = []

    def run(self):
        if self.start_after is not None:
            self.start_after.wait()
        n = 0
        while not self.stop.is_set():
            body = "\n".join(
                json.dumps(
                    {
                        "line": f"{self.container} {n + i}",
                        "ts_ns": self.ts_of(n + i),
                        "tenant": self.tenant,
                        "container_id": self.container,
                    }
                )
                for i in range(BATCH)
            )
            try:
                response = requests.post(
                    self.url,
                    data=body.encode(),
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=60,
                )
            except requests.RequestException as e:
                self.errors.append(repr(e))
                continue
            if response.status_code == 200:
                self.acked += BATCH
                n += BATCH
            else:
                self.errors.append(f"{response.status_code} {response.text[:200]}")
            time.sleep(0.02)


def wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.2)


def wait_for_detach_to_wait() -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'logsite-maintenance' "
        "AND query LIKE %s AND wait_event_type = 'Lock'"
    )
    # Its own connection: inside a transaction pg_stat_activity would be a frozen snapshot.
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as watcher:
        wait_for(lambda: watcher.execute(query, ("ALTER TABLE logs DETACH%",)).fetchone()[0] == 1)


def stored(container: str) -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM logs l JOIN containers c ON c.id = l.ckey WHERE c.container_id = %s",
            (container,),
        )
        return cur.fetchone()[0]


def test_it_loses_no_acknowledged_line_while_retention_and_sealing_run(
    actors, ingest, celery_worker, unused_tcp_port
):
    from tests.base import make_driver

    drop_all_days()
    today = timezone.now().date()
    dropped_day, mixed_day, kept_day = (today - timedelta(days=age) for age in (12, 10, 3))
    RetentionPolicy.objects.create(scope="tenant", tenant=actors.tenant_a, days=5)
    RetentionPolicy.objects.create(scope="tenant", tenant=actors.tenant_b, days=30)
    rows = RowWriter()
    try:
        for day, tenant, container, count in [
            (dropped_day, "tenant-a", "a-old", 20_000),
            (mixed_day, "tenant-a", "a-old", 30_000),
            (mixed_day, "tenant-b", "b-old", 5_000),
            (kept_day, "tenant-a", "a-old", 5_000),
            (kept_day, "tenant-b", "b-old", 5_000),
        ]:
            rows.write(
                [
                    Record(line=f"old {n}", ts_ns=day_ns(day, n), tenant=tenant, container_id=container)
                    for n in range(count)
                ]
            )
    finally:
        rows.close()

    driver, token = make_driver("http", f"127.0.0.1:{unused_tcp_port}")
    proc = ingest([driver.id], LOGSITE_MAX_TS_AGE_DAYS=3650)
    url = f"http://127.0.0.1:{unused_tcp_port}/api/v1/push"
    drop_waits = threading.Event()
    live = [
        Pusher(url, token, "tenant-b", "b-live", lambda n: time.time_ns()),
        Pusher(url, token, "tenant-a", "a-live", lambda n: time.time_ns()),
    ]
    # Tenant B keeps 30 days: its late lines for the day being dropped must all stay. They
    # start once the drop is under way, so they meet the day half-detached.
    late = Pusher(url, token, "tenant-b", "b-late", lambda n: day_ns(dropped_day, n / 1000), drop_waits)
    pushers = [*live, late]
    for p in pushers:
        p.start()
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as search:
        # A long search holds `logs`: the concurrent detach waits for it, ingest must not.
        search.execute("BEGIN")
        search.execute("SELECT count(*) FROM logs").fetchone()
        retention = tasks.apply_retention.delay()
        sealing = tasks.seal_partitions.delay()
        wait_for_detach_to_wait()
        acked_before = {p: p.acked for p in live}
        drop_waits.set()
        wait_for(lambda: late.acked >= 5 * BATCH and all(p.acked > acked_before[p] for p in live))
        search.execute("COMMIT")
    first = wait_for_run(retention.id, celery_worker, timeout=300).result
    wait_for_run(sealing.id, celery_worker, timeout=300)
    time.sleep(1)
    for p in pushers:
        p.stop.set()
    for p in pushers:
        p.join(60)

    assert [p.errors for p in pushers] == [[], [], []]
    assert first["dropped_days"] == [dropped_day.isoformat()]
    wait_for(lambda: all(stored(p.container) == p.acked for p in pushers))  # spooled ones replayed
    assert {p.container: stored(p.container) for p in pushers} == {p.container: p.acked for p in pushers}
    # The late lines met the half-detached day and went through the spool, not into a wait.
    assert proc.stats()["spooled"] > 0

    # Whatever the race did to the dropped day (dropped, kept, or re-created for the late lines),
    # the next run leaves exactly tenant B's lines and A's recent ones.
    run = tasks.apply_retention.delay()
    wait_for_run(run.id, celery_worker)
    assert stored("b-late") == pushers[2].acked
    assert stored("b-old") == 10_000
    assert stored("a-old") == 5_000
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM log_partitions WHERE name = %s", (partition_name(mixed_day),))
        assert cur.fetchone()[0] == 1
