"""The hot days' block indexes: which blocks a day gets, merging, rebuilding an interrupted
build, the beat task, and sealing dropping them (ingest/store/hot_index.py)."""

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from ingest import tasks
from ingest.record import Record
from ingest.schedules import SCHEDULES
from ingest.store import hot_index, partitions, sealing
from ingest.store.hot_index import Block
from ingest.store.writer import conninfo_from_settings
from tests.support.celery_worker import run_task
from tests.support.rows import RowWriter, day_ns, drop_all_days

DAY = datetime(2026, 3, 5, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def spans(blocks: list[Block]) -> list[tuple[int, int]]:
    return [(b.start // 60, b.end // 60) for b in blocks]


def test_a_day_gets_merged_slots_then_the_cooled_blocks_of_the_open_slot():
    wanted = hot_index.wanted_blocks(DAY.date(), at(15.5), [60, 360], timedelta(0))
    assert spans(wanted) == [(14, 15), (13, 14), (12, 13), (6, 12), (0, 6)]  # newest first
    # A block is due only `delay` after it ended; a whole slot replaces its blocks.
    late = hot_index.wanted_blocks(DAY.date(), at(18.05), [60, 360], timedelta(minutes=5))
    assert spans(late) == [(16, 17), (15, 16), (14, 15), (13, 14), (12, 13), (6, 12), (0, 6)]
    assert spans(hot_index.wanted_blocks(DAY.date(), at(18.1), [60, 360], timedelta(0))) == [
        (12, 18),
        (6, 12),
        (0, 6),
    ]
    assert spans(hot_index.wanted_blocks(DAY.date(), at(30), [60, 360], timedelta(0))) == [
        (18, 24),
        (12, 18),
        (6, 12),
        (0, 6),
    ]
    assert hot_index.wanted_blocks(DAY.date(), at(-2), [60, 360], timedelta(0)) == []
    quarter = hot_index.wanted_blocks(DAY.date(), at(1), [15, 60], timedelta(0))
    assert [(b.start, b.end) for b in quarter] == [(0, 60)]
    # Three levels: the coarsest blocks that ended, then the next finer, then the finest.
    three = hot_index.wanted_blocks(DAY.date(), at(13.9), [15, 60, 360], timedelta(0))
    assert [(b.start, b.end) for b in three] == [
        (810, 825),
        (795, 810),
        (780, 795),
        (720, 780),
        (360, 720),
        (0, 360),
    ]


def test_block_sizes_must_tile_a_day():
    for sizes in ([7, 14], [60, 90], [0, 60], [60, 420], [60, 30], [60, 60], []):
        with pytest.raises(ValueError, match=r"must|no block"):
            hot_index.check_sizes(sizes)
    hot_index.check_sizes([15, 120])
    hot_index.check_sizes([15, 60, 360])


def test_index_names_say_their_block():
    block = Block(DAY.date(), 18 * 60, 24 * 60)
    name = block.index_name("logs_p20260305_h3")
    assert name == "logs_p20260305_h3_trgm_1800_2400"
    assert hot_index.parse_index_name(name) == ("logs_p20260305_h3", block)
    assert block.hi == DAY + timedelta(days=1)
    assert hot_index.parse_index_name(sealing.trgm_index_name("logs_p20260305_h3")) is None
    assert hot_index.parse_index_name("logs_p20260305_h3_ckey_ts_id") is None


def write_day(day, rows: int, step_s: float) -> None:
    rnd = random.Random(5)
    words = ["GET", "POST", "/api", "200", "500", "retry", "cache", "miss"]
    records = [
        Record(
            line=" ".join(rnd.choices(words, k=6)) + (" rare-needle" if n % 997 == 0 else "") + f" #{n}",
            ts_ns=day_ns(day, n * step_s),
            container_id=f"c{n % 5}",
            tenant="tenant-a",
        )
        for n in range(rows)
    ]
    writer = RowWriter()
    try:
        writer.write(records)
    finally:
        writer.close()


def block_indexes(day) -> dict[str, bool]:
    with connection.cursor() as cur:
        return {
            block.index_name(leaf): valid
            for (leaf, block), valid in hot_index.day_indexes(cur.cursor, day).items()
        }


def leaves(day) -> list[str]:
    with connection.cursor() as cur:
        return partitions.leaf_names(cur.cursor, partitions.partition_name(day))


def block_names(day, *hours: tuple[int, int]) -> set[str]:
    return {Block(day, a * 60, b * 60).index_name(leaf) for leaf in leaves(day) for a, b in hours}


@pytest.mark.django_db(transaction=True)
def test_blocks_are_built_merged_rebuilt_and_dropped_by_sealing():
    drop_all_days()
    day = DAY.date()
    write_day(day, 8000, 10)  # 00:00 .. 22:13
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as conn:
        done = hot_index.index_day(conn, day, at(5.5), [60, 360], timedelta(0))
        assert done["blocks_built"] == ["0400-0500", "0300-0400", "0200-0300", "0100-0200", "0000-0100"]
        assert block_indexes(day) == dict.fromkeys(block_names(day, *[(h, h + 1) for h in range(5)]), True)

        # The slot is over: its merged block is built, then the hour blocks go.
        done = hot_index.index_day(conn, day, at(7.25), [60, 360], timedelta(0))
        assert done["blocks_built"] == ["0600-0700", "0000-0600"]
        assert done["indexes_dropped"] == 5 * len(leaves(day))
        assert set(block_indexes(day)) == block_names(day, (0, 6), (6, 7))

        # A build that was interrupted left an invalid index: it is built again.
        broken = Block(day, 360, 420).index_name(leaves(day)[1])
        with connection.cursor() as cur:
            cur.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (broken,))
        assert hot_index.index_day(conn, day, at(7.25), [60, 360], timedelta(0))["blocks_built"] == [
            "0600-0700"
        ]
        assert all(block_indexes(day).values())
        idle = hot_index.index_day(conn, day, at(7.25), [60, 360], timedelta(0))
        assert (idle["blocks_built"], idle["indexes_dropped"]) == ([], 0)

        # The search finds the blocks valid on every leaf.
        with connection.cursor() as cur:
            assert hot_index.indexed_spans(cur.cursor) == [(at(0), at(6)), (at(6), at(7))]

        # Sealing builds the full index, then drops the blocks.
        result = sealing.seal_day(conn, day)
    assert result["blocks_dropped"] == 2 * len(leaves(day))
    assert block_indexes(day) == {}
    with connection.cursor() as cur:
        assert hot_index.indexed_spans(cur.cursor) == []
        cur.execute(
            "SELECT count(*) FROM pg_index WHERE indexrelid = ANY(%s::regclass[]) AND indisvalid",
            ([sealing.trgm_index_name(leaf) for leaf in leaves(day)],),
        )
        assert cur.fetchone()[0] == len(leaves(day))


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_indexes_the_hot_days_cooled_blocks(celery_worker):
    drop_all_days()
    today = timezone.now().date()
    yesterday = today - timedelta(days=1)
    write_day(yesterday, 3000, 28.8)  # the whole day
    write_day(today, 10, 1)
    assert ("logsite: index hot blocks", "ingest.index_hot_blocks", 60) in SCHEDULES

    result = run_task(tasks.index_hot_blocks, celery_worker)

    built = {d["day"]: d["blocks_built"] for d in result["days"]}
    assert built[yesterday.isoformat()] == ["1800-2400", "1200-1800", "0600-1200", "0000-0600"]
    assert set(block_indexes(yesterday)) == block_names(yesterday, (0, 6), (6, 12), (12, 18), (18, 24))
    assert all(block_indexes(yesterday).values())
    # Today's blocks are whatever had cooled when the task ran: all valid, none yet open.
    now = timezone.now()
    assert all(block_indexes(today).values())
    for name in block_indexes(today):
        assert hot_index.parse_index_name(name)[1].hi <= now
    assert run_task(tasks.index_hot_blocks, celery_worker)["days"] == []  # idempotent
