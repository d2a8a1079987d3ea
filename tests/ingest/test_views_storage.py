from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ingest.maintenance import maintenance_connection
from ingest.models import RetentionPolicy
from ingest.record import Record
from ingest.store import sealing
from tests.support.rows import RowWriter, day_ns, drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def stored(actors):
    drop_all_days()
    today = timezone.now().date()
    RetentionPolicy.objects.create(scope="tenant", tenant=actors.tenant_a, days=10)
    plan = [  # (tenant, container name, age in days, lines)
        ("tenant-a", "a-web", 0, 50),
        ("tenant-a", HOSTILE, 0, 20),
        ("tenant-a", "a-web", 5, 30),
        ("tenant-a", "a-web", 20, 40),  # past tenant A's 10 days, alone that day: the day goes
        ("tenant-b", "b-secret-db", 0, 70),
        ("tenant-a", "a-web", 25, 10),  # shares the day with tenant B (30 days by default)
        ("tenant-b", "b-secret-db", 25, 15),
    ]
    rows = RowWriter()
    try:
        for tenant, name, age, count in plan:
            day = today - timedelta(days=age)
            rows.write(
                [
                    Record(
                        line=f"{name} {n}",
                        ts_ns=day_ns(day, n),
                        tenant=tenant,
                        container_id=name + "-id",
                        container_name=name,
                    )
                    for n in range(count)
                ]
            )
    finally:
        rows.close()
    with maintenance_connection() as conn:
        sealing.seal_day(conn, today - timedelta(days=5))
    return today


def test_it_needs_a_login(client, stored):
    response = client.get("/storage/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_it_shows_everything_to_a_superuser(client, actors, stored):
    today = stored
    client.force_login(actors.admin)
    response = client.get("/storage/")
    assert response.status_code == 200
    report = response.context["report"]
    assert {t: u.rows for t, u in report.tenants} == {"tenant-a": 150, "tenant-b": 85}
    assert {(c.name, u.rows) for c, _k, u in report.containers} == {
        ("a-web", 130),
        (HOSTILE, 20),
        ("b-secret-db", 85),
    }
    assert report.total.rows == 235
    with connection.cursor() as cur:
        cur.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = ANY(%s::regclass[])",
            ([d.table for d in report.days],),
        )
        assert report.total.bytes == cur.fetchone()[0]
    assert {(d.day, d.shown_rows, bool(d.sealed_at)) for d in report.days if d.shown_rows} == {
        (today, 140, False),
        (today - timedelta(days=5), 30, True),
        (today - timedelta(days=20), 40, False),
        (today - timedelta(days=25), 25, False),
    }
    assert {(r.day, r.container, r.whole_day, r.rows) for r in report.removals} == {
        (today - timedelta(days=20), "a-web", True, 40),
        (today - timedelta(days=25), "a-web", False, 10),
    }
    body = response.content.decode()
    assert "whole day dropped" in body
    assert "rows deleted" in body
    assert "b-secret-db" in body


def test_it_shows_a_tenant_member_only_their_tenants(client, actors, stored):
    client.force_login(actors.eve)  # tenant B only
    response = client.get("/storage/")
    report = response.context["report"]
    assert [t for t, _u in report.tenants] == ["tenant-b"]
    assert report.total.rows == 85
    assert report.removals == []  # tenant B keeps everything it has
    body = response.content.decode()
    assert "a-web" not in body
    assert "script" not in body
    assert "Last maintenance runs" not in body

    client.force_login(actors.alice)  # tenant A only
    body = client.get("/storage/").content.decode()
    assert "b-secret-db" not in body
    assert "a-web" in body


def test_it_escapes_container_names(client, actors, stored):
    client.force_login(actors.alice)
    body = client.get("/storage/").content.decode()
    assert HOSTILE not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
