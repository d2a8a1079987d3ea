"""Drivers changed in the admin reach a running ingest process without a restart."""

import json
import re
import time

import pytest
import requests

from ingest.models import Driver
from tests.conftest import log_rows

pytestmark = pytest.mark.django_db(transaction=True)


def push(port: int, token: str, line: str) -> requests.Response:
    body = json.dumps({"line": line, "container_name": "web-1"})
    return requests.post(
        f"http://127.0.0.1:{port}/api/v1/push",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def shown_token(response) -> str:
    return re.search(r'id="driver-token"[^>]*>(lgs_[A-Za-z0-9_-]+)<', response.content.decode()).group(1)


def until(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition never became true")


def test_a_driver_added_in_the_admin_takes_lines_without_an_ingest_restart(
    client, actors, ingest, unused_tcp_port
):
    proc = ingest([])  # running, with no driver at all
    pid = proc.proc.pid
    client.force_login(actors.alice)  # a tenant admin, through the real admin form
    response = client.post(
        "/admin/ingest/driver/add/",
        {
            "name": "pushed-later",
            "kind": "http",
            "bind": f"127.0.0.1:{unused_tcp_port}",
            "tenant": actors.tenant_a.pk,
            "enabled": "on",
            "options": "{}",
        },
    )
    token = shown_token(response)
    driver = Driver.objects.get(name="pushed-later")
    proc.wait_stats(lambda s: str(driver.id) in s["drivers"])
    assert push(unused_tcp_port, token, "hello after hot reload").status_code == 200
    rows = log_rows("l.line = %s", ("hello after hot reload",))
    assert [(r["tenant"], r["name"]) for r in rows] == [("tenant-a", "web-1")]

    # Rotating in the admin restarts the receiver with the new hash: the old token stops working.
    rotated = shown_token(client.post(f"/admin/ingest/driver/{driver.pk}/rotate-token/"))
    until(lambda: push(unused_tcp_port, token, "old token").status_code == 401)
    assert push(unused_tcp_port, rotated, "new token").status_code == 200

    # Disabling it in the admin closes the port.
    data = {
        "name": driver.name,
        "kind": "http",
        "bind": driver.bind,
        "tenant": actors.tenant_a.pk,
        "options": "{}",
    }
    assert client.post(f"/admin/ingest/driver/{driver.pk}/change/", data).status_code == 302
    proc.wait_stats(lambda s: str(driver.id) not in s["drivers"])
    with pytest.raises(requests.ConnectionError):
        push(unused_tcp_port, rotated, "after disable")
    assert proc.proc.pid == pid
    assert proc.proc.poll() is None
