from datetime import timedelta

import pytest
from django.utils import timezone

from ingest.models import Pin, RetentionPolicy

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_lets_a_superuser_add_a_pin_and_records_who(client, actors):
    client.force_login(actors.admin)
    start = timezone.now() - timedelta(days=3)
    response = client.post(
        "/admin/ingest/pin/add/",
        {
            "tenant": actors.tenant_a.id,
            "container": "web-1",
            "service": "",
            "start_0": start.strftime("%Y-%m-%d"),
            "start_1": "10:00:00",
            "end_0": start.strftime("%Y-%m-%d"),
            "end_1": "12:00:00",
            "reason": "incident 4711",
            "expires_at_0": (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d"),
            "expires_at_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pin = Pin.objects.get()
    assert (pin.reason, pin.container, pin.created_by) == ("incident 4711", "web-1", actors.admin)
    assert "incident 4711" in client.get("/admin/ingest/pin/").content.decode()


def test_it_refuses_an_incomplete_policy_in_the_admin(client, actors):
    client.force_login(actors.admin)
    response = client.post("/admin/ingest/retentionpolicy/add/", {"scope": "service", "days": 7})
    assert response.status_code == 200
    assert "A service policy needs this field." in response.content.decode()
    assert not RetentionPolicy.objects.exists()

    response = client.post(
        "/admin/ingest/retentionpolicy/add/",
        {"scope": "service", "service": "api", "tenant": actors.tenant_b.id, "days": 7},
    )
    assert response.status_code == 302
    assert str(RetentionPolicy.objects.get()) == "service api in tenant-b: 7 days"


@pytest.mark.parametrize("url", ["/admin/ingest/retentionpolicy/", "/admin/ingest/pin/add/"])
def test_it_keeps_retention_admin_to_superusers(client, actors, url):
    # Policies and pins can reach across tenants: even a tenant's admin may not edit them.
    client.force_login(actors.alice)
    assert client.get(url).status_code in (302, 403)
    client.force_login(actors.bob)
    assert client.get(url).status_code in (302, 403)
