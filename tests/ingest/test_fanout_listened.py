"""Fan-out on the real Redis channel layer: per-container and per-tenant groups, listeners only."""

import pytest
from channels.layers import get_channel_layer

from ingest import fanout
from ingest.normalize import Batch, ContainerMeta
from ingest.store.writer import CommittedBatch


def meta(tenant: str, cid: str, name: str = "") -> ContainerMeta:
    return ContainerMeta(tenant, cid, "svc", name, "img", "host", "{}", None)


def row(idx: int, line: str) -> tuple:
    return (idx, 1_700_000_000_000_000_000, 1_700_000_000_000_000_000, 1, None, 0, line.encode(), None, None)


@pytest.fixture
async def layer():
    layer = get_channel_layer()
    yield layer
    await layer.flush()


async def joined(layer, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def test_it_sends_a_container_only_its_own_lines(layer):
    web = await joined(layer, fanout.container_group(101))
    first = CommittedBatch(
        Batch([meta("t1", "web"), meta("t1", "db")], [row(0, "w1"), row(1, "d1"), row(0, "w2")]),
        [101, 102],
        50,
    )
    second = CommittedBatch(Batch([meta("t1", "web")], [row(0, "w3")]), [101], 60)
    await fanout.publish(layer, first)
    await fanout.publish(layer, second)

    # Nothing about "db" arrives in between: the second message is the second batch.
    one, two = await layer.receive(web), await layer.receive(web)
    assert [line[5] for line in one["lines"]["101"]] == ["w1", "w2"]
    assert [line[0] for line in one["lines"]["101"]] == [50, 52]
    assert one["containers"][0]["container_id"] == "web"
    assert [line[5] for line in two["lines"]["101"]] == ["w3"]


async def test_it_sends_a_tenant_every_container_and_keeps_a_renamed_one_whole(layer):
    tenant = await joined(layer, fanout.tenant_group("t1"))
    container = await joined(layer, fanout.container_group(7))
    # Two metas for one container key: the container was renamed within the batch.
    batch = Batch(
        [meta("t1", "web", "old"), meta("t1", "web", "new"), meta("t1", "db"), meta("t2", "other")],
        [row(0, "a"), row(1, "b"), row(2, "c"), row(3, "x"), row(0, "d")],
    )
    await fanout.publish(layer, CommittedBatch(batch, [7, 7, 8, 9], 1))

    message = await layer.receive(tenant)
    assert {ckey: [line[5] for line in lines] for ckey, lines in message["lines"].items()} == {
        "7": ["a", "b", "d"],
        "8": ["c"],
    }
    assert [line[5] for line in (await layer.receive(container))["lines"]["7"]] == ["a", "b", "d"]


async def test_it_knows_which_groups_have_members(layer):
    await joined(layer, fanout.container_group(1))
    await joined(layer, fanout.tenant_group("t2"))
    groups = {fanout.container_group(n) for n in (1, 2, 3)} | {fanout.tenant_group(t) for t in ("t1", "t2")}

    assert await fanout.listened_groups(layer, groups) == {
        fanout.container_group(1),
        fanout.tenant_group("t2"),
    }
