"""Service timelines across container re-creation, and the tenant label override, through a
real ingest process."""

import json
import time

import pytest
import requests
from django.db import connection

from ingest.models import Container
from ingest.timelines import timeline_ckeys, timeline_key
from tests.base import make_driver
from tests.conftest import log_rows

pytestmark = pytest.mark.django_db(transaction=True)

COMPOSE = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}


def push(port, token, records):
    body = "\n".join(json.dumps(r) for r in records)
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1/push",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_the_key_rules():
    assert timeline_key({"logsite.timeline": "checkout", **COMPOSE}, "x", "", "1") == "label:checkout"
    assert timeline_key(COMPOSE, "shop-web-1", "svc", "1") == "compose:shop/web"
    assert timeline_key({}, "web", "svc", "1") == "service:svc"
    assert timeline_key({}, "/web", "default", "1") == "name:web"
    assert timeline_key(None, "", "", "abc") == "container:abc"


def test_a_recreated_container_continues_its_service_timeline(client, actors, ingest, unused_tcp_port):
    driver, token = make_driver("http", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    ingest([driver.id])
    first, second = "1" * 64, "2" * 64
    common = {"container_name": "shop-web-1", "image": "shop/web:1", "labels": COMPOSE}
    t0 = time.time_ns() - 60 * 10**9
    old = [{"line": f"old {i}", "container_id": first, "ts_ns": t0 + i, **common} for i in range(3)]
    push(unused_tcp_port, token, old)
    # `docker compose up` after an image change: a new container id, the same compose labels
    new = [{"line": f"new {i}", "container_id": second, "ts_ns": t0 + 10**9 + i, **common} for i in range(3)]
    push(unused_tcp_port, token, new)
    # a re-run `docker run --name solo` is followed by name; an unrelated container stays apart
    push(unused_tcp_port, token, [{"line": "solo a", "container_id": "3" * 64, "container_name": "solo"}])
    push(unused_tcp_port, token, [{"line": "solo b", "container_id": "4" * 64, "container_name": "solo"}])
    push(unused_tcp_port, token, [{"line": "other", "container_id": "5" * 64, "container_name": "shop-db-1"}])

    keys = dict(Container.objects.values_list("container_id", "id"))
    assert timeline_ckeys("tenant-a", "compose:shop/web") == [keys[first], keys[second]]
    assert timeline_ckeys("tenant-a", "name:solo") == [keys["3" * 64], keys["4" * 64]]
    assert timeline_ckeys("tenant-b", "compose:shop/web") == []
    with pytest.raises(ValueError, match="not a timeline key"):
        timeline_ckeys("tenant-a", "compose:no-slash")

    # one history across both containers, as search and tail read it
    with connection.cursor() as cur:
        cur.execute(
            "SELECT line FROM logs WHERE ckey = ANY(%s) ORDER BY ts, id",
            [timeline_ckeys("tenant-a", "compose:shop/web")],
        )
        history = [r[0] for r in cur.fetchall()]
    assert history == ["old 0", "old 1", "old 2", "new 0", "new 1", "new 2"]

    client.force_login(actors.bob)
    page = client.get("/status/").content.decode()
    assert "shop/web (compose)" in page
    assert page.count("shop-web-1") == 2  # both containers under the one timeline
    assert "2 containers" in page


def test_a_container_label_chooses_the_tenant_only_where_the_driver_allows(actors, ingest, unused_tcp_port):
    allowing, token = make_driver(
        "http",
        f"127.0.0.1:{unused_tcp_port}",
        tenant=actors.tenant_a,
        tenant_label=True,
        tenant_label_allow="tenant-b",
    )
    strict, strict_token = make_driver("http", f"127.0.0.1:{unused_tcp_port + 1}", tenant=actors.tenant_a)
    proc = ingest([allowing.id, strict.id])
    push(
        unused_tcp_port,
        token,
        [
            {"line": "to b", "container_id": "b1", "labels": {"logsite.tenant": "tenant-b"}},
            {"line": "to c refused", "container_id": "c1", "labels": {"logsite.tenant": "tenant-c"}},
            {"line": "no label", "container_id": "n1"},
        ],
    )
    push(
        unused_tcp_port + 1,
        strict_token,
        [{"line": "ignored", "container_id": "s1", "labels": {"logsite.tenant": "tenant-b"}}],
    )
    tenants = {r["line"]: r["tenant"] for r in log_rows()}
    assert tenants == {
        "to b": "tenant-b",
        "to c refused": "tenant-a",
        "no label": "tenant-a",
        "ignored": "tenant-a",
    }
    stats = proc.wait_stats(lambda s: s["drivers"][str(allowing.id)]["tenant_label_refused"] == 1)
    assert stats["drivers"][str(strict.id)]["tenant_label_refused"] == 0
