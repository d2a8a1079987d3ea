"""The live-tail consumer against a real ingest process, Postgres and the Redis channel layer."""

import asyncio

import pytest
from django.test import Client

from tests.search.tail.support import TailClient, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_refuses_an_anonymous_socket(channel_prefix):
    client = TailClient([(b"origin", b"http://localhost")])
    connected, code = await client.connect()
    assert not connected
    assert code == 4401


async def test_it_refuses_a_wrong_token(channel_prefix, actors):
    client = TailClient.with_token("lsu_not-a-token")
    connected, code = await client.connect()
    assert (connected, code) == (False, 4401)


async def test_it_sends_recent_history_then_live_lines(pusher, actors):
    await pusher.push("tenant-a", [f"old {i}" for i in range(5)])
    client = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    assert (await client.connect())[0]
    messages = await client.subscribe("container:web-1", recent=3)
    assert [m["type"] for m in messages][-1] == "live"
    assert client.texts() == ["old 2", "old 3", "old 4"]
    await pusher.push("tenant-a", [f"new {i}" for i in range(4)])
    assert await client.until_lines(7) == ["old 2", "old 3", "old 4", "new 0", "new 1", "new 2", "new 3"]
    (container,) = client.containers.values()
    assert (container["name"], container["tenant"]) == ("web-1", "tenant-a")
    assert all(m["source"] in ("history", "live") for m in client.messages if m["type"] == "lines")
    await client.close()


async def test_it_accepts_the_session_login(pusher, actors):
    def session_cookie():
        http = Client()
        http.force_login(actors.alice)
        return http.cookies["sessionid"].value

    cookie = await asyncio.to_thread(session_cookie)
    client = TailClient([(b"origin", b"http://localhost"), (b"cookie", f"sessionid={cookie}".encode())])
    assert (await client.connect())[0]
    await client.subscribe("")
    await pusher.push("tenant-a", ["hello session"])
    assert await client.until_lines(1) == ["hello session"]
    await client.close()


async def test_it_filters_live_lines_with_the_query(pusher, actors):
    client = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    await client.connect()
    await client.subscribe('stream:stderr "timeout" -healthcheck')
    await pusher.push("tenant-a", ["timeout one", "healthcheck timeout"], stream="stderr")
    await pusher.push("tenant-a", ["timeout on stdout"], stream="stdout")
    await pusher.push("tenant-a", ["Timeout two", "fine"], stream="stderr")
    assert await client.until_lines(2) == ["timeout one", "Timeout two"]
    assert await client.comm.receive_nothing(timeout=4)  # past two sweeps: nothing else matches
    await client.close()


async def test_it_answers_a_bad_query_with_the_position(pusher, actors):
    client = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    await client.connect()
    (error,) = await client.subscribe("level>=loud")
    assert error["type"] == "error"
    assert error["position"] == 7
    assert "level" in error["message"]
    await client.comm.send_to(text_data="not json")
    assert (await client.receive())["type"] == "error"
    await client.comm.send_json_to({"type": "subscribe", "recent": "lots"})
    assert "recent" in (await client.receive())["message"]
    await client.close()


async def test_it_pages_into_history_by_ts_and_id(pusher, actors):
    await pusher.push("tenant-a", [f"line {i:02d}" for i in range(30)])
    client = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    await client.connect()
    await client.subscribe("", recent=10)
    assert client.texts() == [f"line {i:02d}" for i in range(20, 30)]
    oldest = client.lines[0]
    pages = []
    before = {"ts_us": oldest[2], "id": oldest[1]}
    while True:
        await client.comm.send_json_to({"type": "earlier", "before": before, "limit": 7})
        (page,) = await client.until(lambda m: m["type"] == "earlier")
        pages.append([line[6] for line in page["lines"]])
        if not page["more"]:
            break
        before = {"ts_us": page["lines"][-1][2], "id": page["lines"][-1][1]}
    earlier = [text for page in pages for text in page]
    assert earlier == [f"line {i:02d}" for i in range(19, -1, -1)]
    await client.close()


async def test_it_never_sends_another_tenants_lines(pusher, actors):
    alice = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    bob = TailClient.with_token(await asyncio.to_thread(token_for, actors.bob))
    for client in (alice, bob):
        await client.connect()
    # B's container exists before alice subscribes, so a crafted resume can name its key.
    await pusher.push("tenant-b", ["b before"], container="secret")
    await bob.subscribe("", recent=5)
    b_ckey = next(int(k) for k, c in bob.containers.items() if c["tenant"] == "tenant-b")
    crafted = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    await crafted.connect()
    await alice.subscribe("tenant:tenant-b OR container:secret", recent=100)
    await crafted.subscribe(
        "",
        recent=100,
        resume={str(b_ckey): 0},
        group="tail.t.tenant-b",
        tenant="tenant-b",
        groups=["tail.c." + str(b_ckey)],
    )
    assert alice.lines == []
    assert crafted.lines == []
    await pusher.push("tenant-b", ["b secret 1", "b secret 2"], container="secret")
    await pusher.push("tenant-a", ["a marker"])
    await bob.until_lines(4)
    assert set(bob.texts()) == {"b before", "b secret 1", "b secret 2", "a marker"}
    assert await crafted.until_lines(1) == ["a marker"]
    for client in (alice, crafted):
        assert await client.comm.receive_nothing(timeout=4)  # past two sweeps of the store
    assert alice.lines == []
    assert crafted.texts() == ["a marker"]
    for client in (alice, bob, crafted):
        await client.close()


async def test_it_resumes_without_gap_or_duplicate_after_the_socket_dies(pusher, actors):
    token = await asyncio.to_thread(token_for, actors.alice)
    expected = [f"seq {i:04d}" for i in range(600)]

    async def produce():
        for start in range(0, len(expected), 20):
            container = "web-1" if start % 40 == 0 else "web-2"
            await pusher.push("tenant-a", expected[start : start + 20], container=container)
            await asyncio.sleep(0.02)

    first = TailClient.with_token(token)
    await first.connect()
    await first.subscribe("")
    producer = asyncio.create_task(produce())
    await first.until_lines(100)
    await first.close()  # mid-stream: the producer keeps going
    held = first.texts()
    assert len(held) < len(expected), "the socket should die before the producer is done"
    second = TailClient.with_token(token)
    await second.connect()
    await second.subscribe("", resume=first.last_ids())
    await producer
    await second.until_lines(len(expected) - len(held), timeout=60)
    assert await second.comm.receive_nothing(timeout=3)
    got = held + second.texts()
    assert len(got) == len(set(got)), "a line was sent twice"
    assert sorted(got) == expected
    await second.close()


async def test_it_refills_from_the_store_what_fanout_did_not_deliver(pusher, actors):
    client = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    await client.connect()
    await client.subscribe("container:web-1")
    await pusher.push("tenant-a", ["live 1"])
    await client.until_lines(1)
    # Committed through the writer's own pieces but never published: what a fan-out lost to a
    # Redis hiccup looks like to the consumer.
    await asyncio.to_thread(commit_without_fanout, "tenant-a", "web-1-id", "web-1", ["lost 1", "lost 2"])
    await pusher.push("tenant-a", ["live 2"])
    await client.until_lines(4)
    assert sorted(client.texts()) == ["live 1", "live 2", "lost 1", "lost 2"]
    sources = {line[6]: m["source"] for m in client.messages if m["type"] == "lines" for line in m["lines"]}
    assert sources["lost 1"] == sources["lost 2"] == "refill"
    assert await client.comm.receive_nothing(timeout=4)
    await client.close()


async def test_it_refills_a_lost_batch_behind_more_delivered_lines_than_one_sweep_reads(
    pusher, actors, monkeypatch
):
    # A sweep reads at most SWEEP_LIMIT ids. Lines that fan-out did deliver must not use that
    # up: only the writer batch that came up short is read, however many lines sit above the
    # floor (10k lines/s keep ~65,000 there).
    from search.tail import store

    monkeypatch.setattr(store, "SWEEP_LIMIT", 10)
    await pusher.push("tenant-a", ["before"])  # the container exists: its group is joined at once
    client = TailClient.with_token(await asyncio.to_thread(token_for, actors.alice))
    await client.connect()
    await client.subscribe("container:web-1")
    for n in range(3):
        await pusher.push("tenant-a", [f"live {n}.{i}" for i in range(20)])
    await client.until_lines(60)
    await asyncio.to_thread(commit_without_fanout, "tenant-a", "web-1-id", "web-1", ["lost 1", "lost 2"])
    await client.until_lines(62, timeout=10)
    assert sorted(client.texts()[60:]) == ["lost 1", "lost 2"]
    sources = {line[6]: m["source"] for m in client.messages if m["type"] == "lines" for line in m["lines"]}
    assert {sources.pop("lost 1"), sources.pop("lost 2")} == {"refill"}
    assert set(sources.values()) == {"live"}
    assert await client.comm.receive_nothing(timeout=4)
    await client.close()


def commit_without_fanout(tenant: str, container_id: str, name: str, lines: list[str]) -> None:
    import time

    from django.db import connection

    from ingest.normalize import Limits, normalize_batch
    from ingest.record import Record
    from ingest.store.containers import ContainerKeys
    from ingest.store.copy import COPY_SQL, encode_rows

    records = [
        Record(line=line, ts_ns=time.time_ns(), tenant=tenant, container_id=container_id, container_name=name)
        for line in lines
    ]
    batch = normalize_batch(records, Limits(max_line_bytes=1 << 20, max_ts_age_ns=86400 * 10**9))
    connection.ensure_connection()
    conn = connection.connection
    with conn.transaction(), conn.cursor() as cur:
        ckeys = ContainerKeys().resolve(cur, batch.metas)
        cur.execute("SELECT nextval('logs_id_seq')")
        first_id = cur.fetchone()[0]
        with cur.copy(COPY_SQL) as copy:
            copy.write(encode_rows(batch.rows, ckeys, first_id))
