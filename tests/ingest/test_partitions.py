"""Partitions of `logs`: created on demand and ahead, and pruned to one container's buckets."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection

from ingest.normalize import Limits
from ingest.pipeline import Pipeline
from ingest.record import Record
from ingest.store import partitions
from ingest.store.schema import LINE_STATISTICS
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings

pytestmark = pytest.mark.django_db(transaction=True)

# Days no other test writes to, so "created on demand" really means created by this test.
PAST_DAY = date(2001, 2, 3)
AHEAD_DAY = date(2098, 12, 30)
HOUR_NS = 3600 * 10**9


@pytest.fixture
def days(clean_logs):
    """Days a test touches; their partitions are dropped after it."""
    touched: list[date] = []
    yield touched
    with connection.cursor() as cur:
        for day in touched:
            partitions.drop_day(cur, day)


def day_ns(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 10**9 + hour * HOUR_NS


def write(tmp_path, records: list[Record]) -> None:
    """Through the real writer thread, as `manage.py ingest` does."""
    pipeline = Pipeline(queue_limit=len(records) + 1, batch_lines=5000, batch_wait_s=0.01)
    # Old timestamps are kept only within max_ts_age; these tests write decades back.
    limits = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=60 * 365 * 86_400 * 10**9)
    writer = BatchWriter(pipeline, conninfo_from_settings(), Spool(tmp_path / "spool", "t"), limits, "t")
    writer.start()
    assert pipeline.offer_many(records) == 0
    pipeline.close()
    writer.join(60)
    assert pipeline.counters.committed == len(records), pipeline.counters


def leaves_of(day: date) -> set[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE isleaf",
            (partitions.partition_name(day),),
        )
        return {row[0] for row in cur.fetchall()}


def day_exists(day: date) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (partitions.partition_name(day),))
        return cur.fetchone()[0]


def expected_leaves(day: date) -> set[str]:
    return {f"{partitions.partition_name(day)}_h{r}" for r in range(settings.LOGSITE_HASH_PARTITIONS)}


def ckey_of(container_id: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM containers WHERE container_id = %s", (container_id,))
        return cur.fetchone()[0]


def bucket_of(ckey: int, day: date) -> str:
    """The hash leaf Postgres routes `ckey` to, asked independently of where rows went."""
    modulus = settings.LOGSITE_HASH_PARTITIONS
    with connection.cursor() as cur:
        for remainder in range(modulus):
            cur.execute(
                "SELECT satisfies_hash_partition(%s::regclass, %s, %s, %s::bigint)",
                (partitions.partition_name(day), modulus, remainder, ckey),
            )
            if cur.fetchone()[0]:
                return f"{partitions.partition_name(day)}_h{remainder}"
    raise AssertionError(f"no bucket for ckey {ckey}")


def relation_names(plan: dict) -> set[str]:
    names = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", []):
        names |= relation_names(child)
    return names


def test_it_creates_a_new_day_with_all_its_buckets_on_first_write(tmp_path, days):
    days.append(PAST_DAY)
    with connection.cursor() as cur:
        partitions.drop_day(cur, PAST_DAY)
    assert not day_exists(PAST_DAY)

    write(tmp_path, [Record(line=f"l{i}", ts_ns=day_ns(PAST_DAY, 5), container_id="c1") for i in range(10)])

    assert leaves_of(PAST_DAY) == expected_leaves(PAST_DAY)
    with connection.cursor() as cur:
        cur.execute("SELECT day FROM log_partitions WHERE name = %s", (partitions.partition_name(PAST_DAY),))
        assert cur.fetchone() == (PAST_DAY,)
        cur.execute("SELECT DISTINCT tableoid::regclass::text FROM logs")
        assert [row[0] for row in cur.fetchall()] == [bucket_of(ckey_of("c1"), PAST_DAY)]


def test_a_new_day_plans_line_searches_without_a_full_histogram(tmp_path, days):
    days.append(PAST_DAY)
    with connection.cursor() as cur:
        partitions.drop_day(cur, PAST_DAY)
        partitions.ensure_day(cur, PAST_DAY)
        cur.execute(
            "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE a.attname = 'line' AND c.relname LIKE %s",
            (partitions.partition_name(PAST_DAY) + "%",),
        )
        targets = dict(cur.fetchall())
    assert set(targets) == expected_leaves(PAST_DAY) | {partitions.partition_name(PAST_DAY)}
    assert set(targets.values()) == {LINE_STATISTICS}


def test_it_stores_new_containers_in_every_bucket_of_an_existing_day(tmp_path, days):
    days.append(PAST_DAY)
    write(tmp_path, [Record(line="first", ts_ns=day_ns(PAST_DAY), container_id="old")])
    # 200 containers never seen before: with 8 buckets, each one gets some (a miss is ~1e-11).
    write(
        tmp_path,
        [Record(line="new", ts_ns=day_ns(PAST_DAY, 1), container_id=f"new-{i}") for i in range(200)],
    )
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text, count(*) FROM logs WHERE line = 'new' GROUP BY 1")
        per_leaf = dict(cur.fetchall())
    assert set(per_leaf) == expected_leaves(PAST_DAY)
    assert sum(per_leaf.values()) == 200


def test_it_creates_days_ahead_once(days):
    wanted = [AHEAD_DAY + timedelta(days=n) for n in range(3)]
    days.extend(wanted)
    with connection.cursor() as cur:
        for day in wanted:
            partitions.drop_day(cur, day)
        assert partitions.ensure_days_ahead(cur, AHEAD_DAY, days_ahead=2) == wanted
        assert partitions.ensure_days_ahead(cur, AHEAD_DAY, days_ahead=2) == []
        assert set(wanted) <= set(partitions.existing_days(cur))
        leaf = f"{partitions.partition_name(wanted[-1])}_h0"
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (leaf,))
        indexes = [row[0] for row in cur.fetchall()]
    for day in wanted:
        assert leaves_of(day) == expected_leaves(day)
    assert len(indexes) == 3
    assert "(ckey, ts, id)" in indexes[0]
    assert "USING brin (id)" in indexes[1]
    assert "USING brin (ts)" in indexes[2]


def test_it_prunes_a_container_query_to_its_bucket_of_the_days_in_range(tmp_path, days):
    three = [PAST_DAY + timedelta(days=n) for n in range(3)]
    days.extend(three)
    records = [
        Record(line=f"{c} {d} {h}", ts_ns=day_ns(day, h), container_id=c)
        for c in ("web", "db", "cache", "worker")
        for d, day in enumerate(three)
        for h in range(0, 24, 2)
    ]
    write(tmp_path, records)
    ckey = ckey_of("web")
    since = datetime(three[1].year, three[1].month, three[1].day, tzinfo=UTC)
    until = since + timedelta(days=2)
    query = (
        "SELECT id, ts, line FROM logs WHERE ckey = %s AND ts >= %s AND ts < %s "
        "ORDER BY ts DESC, id DESC LIMIT 100"
    )
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + query, (ckey, since, until))
        plan = cur.fetchone()[0]
        cur.execute(query, (ckey, since, until))
        lines = [row[2] for row in cur.fetchall()]

    assert relation_names(plan[0]["Plan"]) == {bucket_of(ckey, three[1]), bucket_of(ckey, three[2])}
    assert lines == [f"web {d} {h}" for d in (2, 1) for h in range(22, -1, -2)]
