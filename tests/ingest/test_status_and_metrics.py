"""/metrics, the status page and /readyz read what a real ingest process reports."""

import json
import re
import time

import pytest
import redis
import requests
from django.conf import settings

from accounts.models import ApiToken
from tests.base import make_driver

pytestmark = pytest.mark.django_db(transaction=True)

COMPOSE = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}


def push(port, token, lines, **fields):
    body = "\n".join(json.dumps({"line": line, **fields}) for line in lines)
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1/push",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def metric(text: str, name: str, **labels) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def until(fetch, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never matched; last: {value}")
        time.sleep(0.3)


def test_metrics_and_status_move_with_real_ingest(client, actors, ingest, unused_tcp_port):
    port_a, port_b = unused_tcp_port, unused_tcp_port + 1
    driver_a, token_a = make_driver("http", f"127.0.0.1:{port_a}", tenant=actors.tenant_a)
    driver_b, token_b = make_driver("http", f"127.0.0.1:{port_b}", tenant=actors.tenant_b)
    driver_b.name = "b-only"
    driver_b.save()
    ingest([driver_a.id, driver_b.id])
    client.force_login(actors.admin)
    before = client.get("/metrics").content.decode()
    assert metric(before, "logsite_ingest_up", writer="test-writer") == 1
    committed_before = metric(before, "logsite_ingest_committed_lines_total", writer="test-writer")

    lines = [f"GET /item/{i} 200" for i in range(40)]
    push(port_a, token_a, lines, container_id="c" * 64, container_name="shop-web-1", labels=COMPOSE)
    push(port_b, token_b, ["b line"] * 3, container_id="d" * 64, container_name="b-box")

    after = until(
        lambda: client.get("/metrics").content.decode(),
        lambda t: (
            metric(t, "logsite_ingest_committed_lines_total", writer="test-writer") >= committed_before + 43
        ),
    )
    assert metric(after, "logsite_driver_lines_received_total", driver=driver_a.name, tenant="tenant-a") == 40
    assert metric(after, "logsite_driver_bytes_received_total", driver=driver_a.name) > 0
    assert metric(after, "logsite_driver_up", driver="b-only", kind="http") == 1
    assert metric(after, "logsite_ingest_db_up", writer="test-writer") == 1
    assert metric(after, "logsite_ingest_queue_lines", writer="test-writer") == 0
    assert metric(after, "logsite_ingest_spool_bytes", writer="test-writer") == 0

    # A tenant-A user with an API token (as Prometheus would scrape) sees only tenant A's drivers.
    client.logout()
    _, clear = ApiToken.issue(actors.alice, "prometheus")
    scoped = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {clear}").content.decode()
    assert metric(scoped, "logsite_driver_lines_received_total", driver=driver_a.name) == 40
    assert "b-only" not in scoped
    assert "logsite_ingest_committed_lines_total" not in scoped
    assert client.get("/metrics").status_code == 401

    # Per-container rates, bytes and last seen, through the status API as alice.
    auth = {"HTTP_AUTHORIZATION": f"Bearer {clear}"}
    status = until(
        lambda: client.get("/api/v1/status", **auth).json(),
        lambda s: s["containers"] and s["containers"][0]["lines_per_s_1m"] > 0,
    )
    [web] = status["containers"]
    assert (web["name"], web["timeline"]) == ("shop-web-1", "compose:shop/web")
    assert web["bytes_1h"] == sum(len(x) for x in lines)
    assert web["lines_per_s_1h"] == pytest.approx(40 / 3600, rel=0.02)
    assert web["last_seen"] > time.time() - 60
    [drv] = status["drivers"]
    assert (drv["name"], drv["listening"], drv["received"]) == (driver_a.name, 1, 40)
    assert status["ingest"]["live"] == 1

    client.force_login(actors.alice)
    page = client.get("/status/").content.decode()
    assert "shop/web (compose)" in page
    assert "shop-web-1" in page
    assert "b-box" not in page
    assert client.get("/readyz").json() == {
        "ready": True,
        "checks": {"database": "ok", "redis": "ok", "ingest": "ok (1 live)"},
    }


def test_readyz_fails_without_a_live_ingest_process(client, db):
    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(match="logsite:ingest:*"):
        r.delete(key)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["ingest"] == "no live ingest process"
    assert client.get("/healthz").status_code == 200
