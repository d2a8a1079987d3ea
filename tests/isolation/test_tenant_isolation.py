import pytest

from ingest.models import Container, MultilineRule
from ingest.record import Record
from tests.base import make_driver
from tests.isolation.probes import (
    B_CONTAINER_NAME,
    B_DRIVER_NAME,
    B_SECRET_LINE,
    B_TARGET_NAME,
    PROBES,
    World,
    b_forward_target,
)
from tests.support.seed import write_records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(actors, clean_logs, tmp_path):
    a_driver, _ = make_driver("http", "127.0.0.1:18801", tenant=actors.tenant_a)
    b_driver, _ = make_driver("http", "127.0.0.1:18802", tenant=actors.tenant_b)
    b_driver.name = B_DRIVER_NAME
    b_driver.save()
    unbound, _ = make_driver("zmq", "tcp://127.0.0.1:18803")
    unbound.name = "unbound-zmq"
    unbound.save()
    write_records(
        [
            Record(
                line="a line",
                tenant="tenant-a",
                container_id="a" * 64,
                container_name="a-web",
                driver_id=a_driver.id,
            ),
            Record(
                line=B_SECRET_LINE,
                tenant="tenant-b",
                container_id="b" * 64,
                container_name=B_CONTAINER_NAME,
                driver_id=b_driver.id,
            ),
        ],
        tmp_path / "spool",
    )
    b_rule = MultilineRule.objects.create(
        tenant=actors.tenant_b, name="b-rule", pattern="*", start_pattern=r"\S"
    )
    return World(
        actors=actors,
        a_driver=a_driver,
        b_driver=b_driver,
        unbound_driver=unbound,
        a_container=Container.objects.get(tenant="tenant-a"),
        b_container=Container.objects.get(tenant="tenant-b"),
        b_rule=b_rule,
    )


@pytest.mark.parametrize("probe", PROBES)
def test_a_user_of_tenant_a_gets_nothing_of_tenant_b(probe, client, world):
    client.force_login(world.actors.alice)
    probe(client, world)


def test_the_probes_would_see_tenant_b_as_a_member_of_b(client, world):
    """The suite can fail: the same requests show B's data to a user who may read B."""
    client.force_login(world.actors.bob)  # viewer of A and B
    assert B_CONTAINER_NAME in client.get("/status/").content.decode()
    response = client.get(f"/api/v1/containers/{world.b_container.container_id}/logs")
    assert B_SECRET_LINE in b"".join(response.streaming_content).decode()
    assert client.get(f"/drivers/{world.b_driver.pk}/connect/").status_code == 200
    target = b_forward_target(world)
    assert B_TARGET_NAME in client.get("/forward/status").content.decode()
    client.force_login(world.actors.admin)
    assert client.get(f"/admin/ingest/driver/{world.b_driver.pk}/change/").status_code == 200
    assert client.get(f"/admin/forward/target/{target.pk}/change/").status_code == 200
