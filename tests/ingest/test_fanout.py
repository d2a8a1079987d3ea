"""Fan-out through the real Redis channel layer: only groups with members are sent to."""

import random
import time

from channels.layers import get_channel_layer

from ingest import fanout
from ingest.normalize import Limits, normalize_batch
from ingest.record import Record
from ingest.store.writer import CommittedBatch

LIMITS = Limits(max_line_bytes=1024, max_ts_age_ns=86400 * 10**9)


def committed_batch() -> tuple[CommittedBatch, list[int]]:
    now = time.time_ns()
    records = [
        Record(line="a1", ts_ns=now, tenant="fan-a", container_id="c-a"),
        Record(line="b1", ts_ns=now, tenant="fan-b", container_id="c-b"),
        Record(line="a2", ts_ns=now, tenant="fan-a", container_id="c-a"),
    ]
    ckeys = random.sample(range(10**9, 2 * 10**9), 2)  # no other test's groups
    return CommittedBatch(normalize_batch(records, LIMITS), ckeys, 100), ckeys


async def test_it_sends_only_to_groups_that_have_members():
    layer = get_channel_layer()
    committed, (ckey_a, ckey_b) = committed_batch()
    container_watcher, tenant_watcher = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(fanout.container_group(ckey_a), container_watcher)
    await layer.group_add(fanout.tenant_group("fan-b"), tenant_watcher)
    try:
        groups = fanout.group_names(committed)
        assert sorted(groups) == sorted(
            [
                fanout.container_group(ckey_a),
                fanout.container_group(ckey_b),
                fanout.tenant_group("fan-a"),
                fanout.tenant_group("fan-b"),
            ]
        )
        assert await fanout.listened_groups(layer, groups) == [
            fanout.container_group(ckey_a),
            fanout.tenant_group("fan-b"),
        ]

        await fanout.publish(layer, committed)

        to_container = await layer.receive(container_watcher)
        assert [line[5] for line in to_container["lines"][str(ckey_a)]] == ["a1", "a2"]
        assert [line[0] for line in to_container["lines"][str(ckey_a)]] == [100, 102]
        to_tenant = await layer.receive(tenant_watcher)
        assert list(to_tenant["lines"]) == [str(ckey_b)]
        assert to_tenant["containers"][0]["container_id"] == "c-b"
    finally:
        await layer.group_discard(fanout.container_group(ckey_a), container_watcher)
        await layer.group_discard(fanout.tenant_group("fan-b"), tenant_watcher)


async def test_it_asks_nothing_of_a_layer_it_cannot_ask():
    class Plain:  # a channel layer without Redis groups (e.g. an in-memory one)
        pass

    committed, _ = committed_batch()
    groups = fanout.group_names(committed)
    assert await fanout.listened_groups(Plain(), groups) == groups
