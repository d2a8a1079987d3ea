"""The tenant isolation suite: everything a user of tenant A might try against tenant B.

Each probe gets a client logged in as alice (admin of tenant A, nothing in B) and the `World`
holding tenant B's driver, container, rule and a line only B may read; it asserts a refusal
(403/404, the admin's "does not exist" redirect) or an answer without any of B's data.
Search, tail, export, context and permalinks add their probes here with @probe.
"""

from dataclasses import dataclass

import pytest

PROBES = []

B_SECRET_LINE = "b-secret-line 7f3a"
B_CONTAINER_NAME = "b-private-db"
B_DRIVER_NAME = "b-driver"


def probe(fn):
    PROBES.append(pytest.param(fn, id=fn.__name__))
    return fn


@dataclass
class World:
    actors: object
    a_driver: object
    b_driver: object
    unbound_driver: object
    a_container: object
    b_container: object
    b_rule: object


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def leaks(text: str) -> list[str]:
    return [s for s in (B_SECRET_LINE, B_CONTAINER_NAME, B_DRIVER_NAME, "unbound-zmq") if s in text]


@probe
def admin_driver_pages(client, w):
    assert leaks(body(client.get("/admin/ingest/driver/"))) == []
    for driver in (w.b_driver, w.unbound_driver):
        response = client.get(f"/admin/ingest/driver/{driver.pk}/change/")
        assert response.status_code == 302  # "does not exist", like an unused id
        assert client.post(f"/admin/ingest/driver/{driver.pk}/rotate-token/").status_code == 404
        assert client.post(f"/admin/ingest/driver/{driver.pk}/revoke-token/").status_code == 404
        assert client.post(f"/admin/ingest/driver/{driver.pk}/delete/", {"post": "yes"}).status_code == 302
    w.b_driver.refresh_from_db()  # still there, token unchanged


@probe
def admin_multiline_rules(client, w):
    assert leaks(body(client.get("/admin/ingest/multilinerule/"))) == []
    assert client.get(f"/admin/ingest/multilinerule/{w.b_rule.pk}/change/").status_code == 302
    fields = {
        "match": "container",
        "pattern": "*",
        "start_pattern": r"\S",
        "max_lines": 10,
        "max_bytes": 1000,
        "flush_timeout_ms": 100,
    }
    # tenant B is not a choice for alice ...
    response = client.post("/admin/ingest/multilinerule/preview/", {**fields, "tenant": w.actors.tenant_b.pk})
    assert leaks(body(response)) == []
    # ... and B's container cannot be slipped in under tenant A
    response = client.post(
        "/admin/ingest/multilinerule/preview/",
        {**fields, "tenant": w.actors.tenant_a.pk, "container": w.b_container.pk},
    )
    assert response.status_code == 404


@probe
def admin_models_without_tenant_scoping(client, w):
    for url in (
        "/admin/ingest/container/",
        "/admin/ingest/tenant/",
        "/admin/ingest/membership/",
        "/admin/auth/user/",
    ):
        assert client.get(url).status_code == 403, url


@probe
def status_page_and_api(client, w):
    assert leaks(body(client.get("/status/"))) == []
    assert leaks(body(client.get("/status/", {"q": "b-private"}))) == []
    assert leaks(body(client.get("/api/v1/status"))) == []


@probe
def connect_page(client, w):
    assert client.get(f"/drivers/{w.b_driver.pk}/connect/").status_code == 404
    assert client.get(f"/drivers/{w.unbound_driver.pk}/connect/").status_code == 404


@probe
def container_logs_api(client, w):
    unknown = body(client.get("/api/v1/containers/never-used/logs")).replace("never-used", "X")
    for ref in (w.b_container.container_id, B_CONTAINER_NAME):
        response = client.get(f"/api/v1/containers/{ref}/logs")
        assert response.status_code == 404
        # the same answer as for a container that never existed (which echoes the name asked for)
        assert body(response).replace(ref, "X") == unknown


@probe
def metrics(client, w):
    text = body(client.get("/metrics"))
    assert leaks(text) == []
    assert "logsite_ingest_committed_lines_total" not in text  # process-wide: all tenants' traffic


@probe
def timelines_helper(client, w):
    from accounts.access import visible_tenants
    from ingest.timelines import timeline_ckeys

    # The helper trusts its caller: search and tail pass only tenants from visible_tenants().
    assert w.actors.tenant_b.slug not in visible_tenants(w.actors.alice)
    assert timeline_ckeys(w.actors.tenant_a.slug, f"name:{B_CONTAINER_NAME}") == []


B_TARGET_NAME = "b-forward-target"


def b_forward_target(w):
    from forward.models import Target

    return Target.objects.get_or_create(
        name=B_TARGET_NAME,
        defaults={"kind": "syslog", "tenant": w.actors.tenant_b, "syslog_url": "tcp://127.0.0.1:6514"},
    )[0]


@probe
def forwarding_targets(client, w):
    target = b_forward_target(w)
    for url in (
        "/forward/status",
        "/api/v1/forward/status",
        "/admin/forward/target/",
        "/status/",
        "/metrics",
    ):
        assert B_TARGET_NAME not in body(client.get(url)), url
    assert client.get(f"/admin/forward/target/{target.pk}/change/").status_code == 302
