"""Pipeline acknowledgement semantics, driven from a real writer-side thread.

The writer side here is the test: it takes batches and reports them durable or lost exactly as
ingest/store/writer.py does, so each ack rule can be checked at the moment it matters.
"""

import asyncio
import threading

import pytest

from ingest.pipeline import NotDurable, Overloaded, Pipeline
from ingest.record import Record

WAIT_S = 30  # only bounds a broken test; nothing here is timed


def records(n: int, prefix: str = "l") -> list[Record]:
    return [Record(line=f"{prefix}{i}") for i in range(n)]


def take(pipeline: Pipeline) -> tuple[list[Record], int]:
    batch, start = pipeline.take(idle_timeout=WAIT_S)
    assert batch, "no batch became due"
    return batch, start


async def settle():
    # Resolutions arrive through call_soon_threadsafe: let the loop run them.
    for _ in range(3):
        await asyncio.sleep(0)


async def test_it_acks_a_submit_spanning_batches_only_when_all_are_durable():
    pipeline = Pipeline(queue_limit=1000, batch_lines=10, batch_wait_s=0.001)
    submit = asyncio.ensure_future(pipeline.submit(records(25)))
    await settle()
    sizes = []
    for _ in range(3):
        batch, start = await asyncio.to_thread(take, pipeline)
        sizes.append(len(batch))
        assert not submit.done(), "acknowledged before every batch was durable"
        pipeline.finished(start, start + len(batch))
        await settle()
    assert sizes == [10, 10, 5]
    assert submit.done()
    await submit  # resolved, no exception


async def test_it_fails_the_whole_submit_when_one_of_its_batches_is_lost():
    pipeline = Pipeline(queue_limit=1000, batch_lines=10, batch_wait_s=0.001)
    submit = asyncio.ensure_future(pipeline.submit(records(30)))
    await settle()
    for number in range(3):
        batch, start = await asyncio.to_thread(take, pipeline)
        pipeline.finished(start, start + len(batch), error="disk on fire" if number == 1 else None)
        await settle()
    with pytest.raises(NotDurable, match="disk on fire"):
        await submit


async def test_it_fails_only_the_submits_that_overlap_a_lost_batch():
    pipeline = Pipeline(queue_limit=1000, batch_lines=100, batch_wait_s=0.001)
    first = asyncio.ensure_future(pipeline.submit(records(5, "a")))
    await settle()
    batch, start = await asyncio.to_thread(take, pipeline)
    second = asyncio.ensure_future(pipeline.submit(records(5, "b")))
    third = asyncio.ensure_future(pipeline.submit(records(5, "c")))
    await settle()
    pipeline.finished(start, start + len(batch), error="lost")
    await settle()
    with pytest.raises(NotDurable):
        await first
    assert not second.done()
    assert not third.done()
    batch, start = await asyncio.to_thread(take, pipeline)
    assert [r.line for r in batch] == [f"b{i}" for i in range(5)] + [f"c{i}" for i in range(5)]
    pipeline.finished(start, start + len(batch))
    await settle()
    await second
    await third


async def test_it_resolves_submits_in_order_around_offers():
    pipeline = Pipeline(queue_limit=1000, batch_lines=4, batch_wait_s=0.001)
    assert pipeline.offer(Record(line="o1"))
    submit = asyncio.ensure_future(pipeline.submit(records(3)))
    await settle()
    assert pipeline.offer(Record(line="o2"))
    batch, start = await asyncio.to_thread(take, pipeline)
    assert [r.line for r in batch] == ["o1", "l0", "l1", "l2"]
    pipeline.finished(start, start + len(batch))
    await settle()
    await submit
    batch, _ = await asyncio.to_thread(take, pipeline)
    assert [r.line for r in batch] == ["o2"]


def test_it_drops_and_counts_offers_when_full():
    pipeline = Pipeline(queue_limit=3, batch_lines=100, batch_wait_s=10)
    results = [pipeline.offer(Record(line=str(i))) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert pipeline.counters.dropped == 2
    assert pipeline.counters.accepted == 3
    assert pipeline.pending() == 3


def test_it_drops_and_counts_the_overflow_of_offer_many():
    pipeline = Pipeline(queue_limit=5, batch_lines=100, batch_wait_s=0.001)
    assert pipeline.offer_many(records(3)) == 0
    assert pipeline.offer_many(records(4, "x")) == 2
    assert pipeline.counters.dropped == 2
    assert pipeline.pending() == 5
    batch, _ = pipeline.take(idle_timeout=0)
    assert [r.line for r in batch] == ["l0", "l1", "l2", "x0", "x1"]


async def test_it_refuses_a_submit_that_does_not_fit():
    pipeline = Pipeline(queue_limit=10, batch_lines=100, batch_wait_s=10)
    pipeline.offer_many(records(8))
    with pytest.raises(Overloaded):
        await pipeline.submit(records(3))
    assert pipeline.pending() == 8
    assert pipeline.counters.dropped == 0  # the sender was told; it will retry


async def test_it_refuses_submits_after_close_and_drains_what_is_queued():
    pipeline = Pipeline(queue_limit=100, batch_lines=100, batch_wait_s=3600)
    pipeline.offer_many(records(3))
    pipeline.close()
    with pytest.raises(Overloaded):
        await pipeline.submit(records(1))
    assert not pipeline.offer(Record(line="late"))
    batch, _ = pipeline.take(idle_timeout=WAIT_S)
    assert len(batch) == 3  # a closed pipeline hands out what it holds without waiting
    assert pipeline.take(idle_timeout=WAIT_S) == ([], 3)


def test_it_hands_out_a_partial_batch_after_the_batch_wait():
    # The writer is parked on a long idle wait; the first queued record must wake it so the
    # batch wait (not the idle wait) decides when a small batch goes out.
    pipeline = Pipeline(queue_limit=100, batch_lines=1000, batch_wait_s=0.01)
    got = []
    writer = threading.Thread(target=lambda: got.append(pipeline.take(idle_timeout=3600)), daemon=True)
    writer.start()
    while not pipeline._wake._waiters:  # the writer is parked in take() (CPython Condition)
        writer.join(0.001)
    pipeline.offer(Record(line="lonely"))
    writer.join(WAIT_S)
    woke = bool(got)
    pipeline.close()  # releases a writer that is still parked, so a failure does not hang the run
    assert woke, "a lone record waited for the idle timeout instead of the batch wait"
    [(batch, start)] = got
    assert [r.line for r in batch] == ["lonely"]
    assert start == 0


async def test_it_takes_a_submit_larger_than_the_queue_when_the_queue_is_empty():
    pipeline = Pipeline(queue_limit=10, batch_lines=100, batch_wait_s=0.001)
    submit = asyncio.ensure_future(pipeline.submit(records(25)))
    await settle()
    batch, start = await asyncio.to_thread(take, pipeline)
    assert len(batch) == 25
    # While lines wait, a submit that does not fit is refused (the sender retries later).
    pipeline.offer_many(records(5, "o"))
    with pytest.raises(Overloaded):
        await pipeline.submit(records(6))
    pipeline.finished(start, start + len(batch))
    await asyncio.wait_for(submit, WAIT_S)


def test_it_ends_a_batch_early_at_the_byte_cap_but_never_empty():
    pipeline = Pipeline(queue_limit=100, batch_lines=50, batch_wait_s=0.001, batch_bytes=1000)
    pipeline.offer_many([Record(line=b"x" * 300) for _ in range(10)] + [Record(line=b"y" * 5000)])
    sizes = [len(take(pipeline)[0]) for _ in range(5)]
    assert sizes == [3, 3, 3, 1, 1]  # the 5,000-byte line alone, not refused
