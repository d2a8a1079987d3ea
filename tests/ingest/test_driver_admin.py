import re

import pytest

from ingest.models import Driver, hash_token
from tests.base import make_driver

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "/admin/ingest/driver/add/"


def post_driver(client, **fields):
    data = {"name": "web-push", "kind": "http", "bind": "127.0.0.1:18514", "enabled": "on", "options": "{}"}
    data.update({k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        data.pop(key, None)
    return client.post(ADD, data)


def errors(response) -> str:
    return " ".join(
        re.sub(r"<[^>]+>", " ", m)
        for m in re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )


def test_it_shows_a_new_token_once_and_then_only_its_hint(client, actors):
    client.force_login(actors.admin)
    response = post_driver(client, tenant=actors.tenant_a.pk)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = re.search(r'id="driver-token"[^>]*>(lgs_[A-Za-z0-9_-]+)<', response.content.decode()).group(1)
    driver = Driver.objects.get(name="web-push")
    assert driver.token_hash == hash_token(token)
    assert driver.token_matches(token)
    assert token not in str(Driver.objects.filter(pk=driver.pk).values().first())
    for page in (f"/admin/ingest/driver/{driver.pk}/change/", "/admin/ingest/driver/", "/status/"):
        body = client.get(page).content.decode()
        assert token not in body
        assert token[:8] not in body or driver.token_hint in body


def test_it_refuses_unknown_and_invalid_options_with_clear_errors(client, actors):
    client.force_login(actors.admin)
    response = post_driver(
        client, kind="zmq", bind="tcp://127.0.0.1:16362", options='{"rcvhwm": "lots", "zmq-address": "x"}'
    )
    assert response.status_code == 200
    text = errors(response)
    assert "rcvhwm: must be a whole number, not &#x27;lots&#x27;" in text
    assert "unknown option &#x27;zmq-address&#x27; for a zmq driver (known: rcvhwm)" in text
    response = post_driver(client, kind="gelf", bind="udp://0.0.0.0:12201", options="{not json")
    assert "Options must be a JSON object" in errors(response)
    response = post_driver(client, kind="zmq", bind="0.0.0.0:6362")
    assert "a zmq bind is tcp://host:port" in errors(response)
    assert not Driver.objects.exists()


def test_it_refuses_a_port_another_enabled_driver_uses(client, actors):
    make_driver("http", "0.0.0.0:18514", tenant=actors.tenant_a)
    client.force_login(actors.admin)
    response = post_driver(client, name="second", kind="splunk", bind="127.0.0.1:18514")
    assert (
        "127.0.0.1:18514/tcp is already used by the enabled driver &#x27;http-1&#x27; (0.0.0.0:18514)"
        in errors(response)
    )
    # the same port over UDP is another socket: allowed
    assert post_driver(client, name="gelf-1", kind="gelf", bind="udp://0.0.0.0:18514").status_code == 302
    # a disabled driver opens nothing, so it may share the port
    assert (
        post_driver(client, name="spare", kind="http", bind="0.0.0.0:18514", enabled=None).status_code == 200
    )
    assert Driver.objects.filter(name="spare", enabled=False).exists()


def test_it_keeps_tenant_admins_to_their_own_tenant(client, actors):
    b_driver, _ = make_driver("http", "0.0.0.0:18600", tenant=actors.tenant_b)
    a_driver, _ = make_driver("http", "0.0.0.0:18601", tenant=actors.tenant_a)
    client.force_login(actors.alice)  # admin of A, not staff
    listing = client.get("/admin/ingest/driver/").content.decode()
    assert a_driver.name in listing
    assert b_driver.name not in listing
    # B's driver answers like a driver that does not exist
    response = client.get(f"/admin/ingest/driver/{b_driver.pk}/change/")
    assert response.status_code == 302
    assert client.post(f"/admin/ingest/driver/{b_driver.pk}/rotate-token/").status_code == 404
    assert Driver.objects.get(pk=b_driver.pk).token_hash == b_driver.token_hash
    # cannot bind a driver to B, nor leave it unbound
    response = post_driver(client, name="sneaky", bind="0.0.0.0:18602", tenant=actors.tenant_b.pk)
    assert "Select a valid choice" in errors(response)
    response = post_driver(client, name="sneaky", bind="0.0.0.0:18602")
    assert "Choose the tenant this driver" in errors(response)
    # a port conflict with B's driver does not reveal its name
    response = post_driver(client, name="clash", bind="0.0.0.0:18600", tenant=actors.tenant_a.pk)
    assert "is already used by another enabled driver" in errors(response)
    assert b_driver.name not in errors(response)
    # a label may only move lines into tenants alice administers
    response = post_driver(
        client,
        name="labels",
        bind="0.0.0.0:18603",
        tenant=actors.tenant_a.pk,
        options='{"tenant_label": true}',
    )
    assert "tenant_label needs tenant_label_allow" in errors(response)
    response = post_driver(
        client,
        name="labels",
        bind="0.0.0.0:18603",
        tenant=actors.tenant_a.pk,
        options='{"tenant_label": true, "tenant_label_allow": "tenant-b"}',
    )
    assert "names tenants you do not administer: tenant-b" in errors(response)
    response = post_driver(client, name="mine", bind="0.0.0.0:18604", tenant=actors.tenant_a.pk)
    assert response.status_code == 200
    assert "driver-token" in response.content.decode()


def test_viewers_do_not_get_into_the_admin(client, actors):
    client.force_login(actors.bob)  # viewer of A and B
    response = client.get("/admin/ingest/driver/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_it_rotates_and_revokes_tokens(client, actors):
    driver, old = make_driver("http", "0.0.0.0:18700", tenant=actors.tenant_a)
    client.force_login(actors.alice)
    assert "Rotate token" in client.get(f"/admin/ingest/driver/{driver.pk}/change/").content.decode()
    confirm = client.get(f"/admin/ingest/driver/{driver.pk}/rotate-token/")
    assert confirm.status_code == 200
    assert "refused (401)" in confirm.content.decode()
    response = client.post(f"/admin/ingest/driver/{driver.pk}/rotate-token/")
    new = re.search(r'id="driver-token"[^>]*>(lgs_[A-Za-z0-9_-]+)<', response.content.decode()).group(1)
    driver.refresh_from_db()
    assert driver.token_matches(new)
    assert not driver.token_matches(old)
    response = client.post(f"/admin/ingest/driver/{driver.pk}/revoke-token/")
    assert response.status_code == 302
    driver.refresh_from_db()
    assert driver.token_hash == ""
    assert not driver.token_matches(new)
    assert "revoked" in client.get("/admin/ingest/driver/").content.decode()


def test_kinds_without_tokens_get_none(client, actors):
    client.force_login(actors.admin)
    response = post_driver(client, name="z", kind="zmq", bind="tcp://0.0.0.0:16399", tenant=None)
    assert response.status_code == 302
    assert Driver.objects.get(name="z").token_hash == ""
    driver = Driver.objects.get(name="z")
    assert client.post(f"/admin/ingest/driver/{driver.pk}/rotate-token/").status_code == 404
