import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings

from ingest.normalize import Batch, ContainerMeta
from ingest.rates import SEEN_KEY, RateCounter, read_rates
from ingest.store.writer import CommittedBatch


@pytest.fixture
def clean_redis():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in [*client.scan_iter(match="logsite:rates:*"), SEEN_KEY]:
        client.delete(key)
    yield client
    client.close()


def committed(rows_per_container: dict[int, int], driver_id=7) -> CommittedBatch:
    metas = [ContainerMeta("t", f"c{ckey}", "", "", "", "", "{}", driver_id) for ckey in rows_per_container]
    rows = [
        (idx, 0, 0, 1, None, 0, b"x" * 10, None, None)
        for idx, n in enumerate(rows_per_container.values())
        for _ in range(n)
    ]
    return CommittedBatch(Batch(metas, rows), list(rows_per_container), 1)


def flush(counter: RateCounter, now: float) -> None:
    async def run():
        client = aioredis.from_url(settings.REDIS_URL)
        try:
            await counter.flush(client, now=now)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_it_counts_per_container_and_driver_and_windows_the_buckets(clean_redis):
    t0 = 1_800_000_000.0  # a multiple of 300: the start of a 5-minute and of a 1-minute bucket
    counter = RateCounter()
    counter.count(committed({1: 60, 2: 6}))
    flush(counter, t0 + 10)  # first minute
    counter.count(committed({1: 120}))
    flush(counter, t0 + 70)  # second minute
    rates = read_rates(clean_redis, ["c:1", "c:2", "d:7", "c:3"], now=t0 + 90)
    # 1-minute window (t0+30, t0+90]: all of minute 2 plus half of minute 1
    assert rates["c:1"].lines_1m == pytest.approx(120 + 60 * 0.5)
    assert rates["c:1"].bytes_1m == pytest.approx(10 * (120 + 30))
    assert rates["c:1"].lines_1h == 180
    assert rates["c:1"].per_s_1h == pytest.approx(180 / 3600)
    assert rates["d:7"].lines_1h == 186
    assert rates["c:2"].last_seen == pytest.approx(t0 + 10)
    assert rates["c:3"].lines_1h == 0
    assert rates["c:3"].last_seen is None
    # an hour later the first five minutes have left the window, proportionally
    later = read_rates(clean_redis, ["c:1"], now=t0 + 3600 + 150)
    assert later["c:1"].lines_1h == pytest.approx(180 * 0.5)
    assert later["c:1"].lines_1m == 0


def test_counts_survive_a_failed_flush():
    counter = RateCounter()
    counter.count(committed({5: 3}))

    async def run():
        client = aioredis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
        with pytest.raises(redis.RedisError):
            await counter.flush(client, now=1.0)
        await client.aclose()

    asyncio.run(run())
    assert counter.take() == {"c:5": [3, 30], "d:7": [3, 30]}
