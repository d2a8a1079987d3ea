"""Sealing changes how a day is searched, never what a search finds."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ingest import tasks
from ingest.record import Record
from ingest.store import partitions
from ingest.store.sealing import trgm_index_name
from tests.support.celery_worker import run_task
from tests.support.rows import RowWriter, day_ns, drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = [
    "GET",
    "POST",
    "/api/v1/items",
    "200",
    "404",
    "500",
    "ms",
    "user=42",
    "retry",
    "cache",
    "hit",
    "miss",
]
SPECIAL = [
    "ERROR 503 upstream connection reset by peer",
    "WARN request timeout after 30000 ms",
    "grüße aus Köln: Straße gesperrt",
    "progress 100% done_ok",
    "rare-needle-7f3a found once",
    "line with a literal \\ backslash and 'quotes'",
    "conn reset while reading",
    "TimeOut in mixed case",
]
# (operator, pattern): ILIKE, LIKE and regex, including patterns a trigram index cannot narrow.
QUERIES = [
    ("ILIKE", "%timeout%"),
    ("ILIKE", "%rare-needle-7f3a%"),
    ("ILIKE", "%grüße%"),
    ("ILIKE", "%ab%"),
    ("LIKE", "%100\\%%"),
    ("LIKE", "%done\\_ok%"),
    ("ILIKE", "%\\\\%"),
    ("~", "conn(ection)? reset"),
    ("~*", "error [0-9]{3}"),
    ("~", "^WARN .* [0-9]+ ms #[0-9]+$"),
    ("~*", "straße|STRASSE"),
    ("~", "."),
]


@pytest.fixture
def days(transactional_db):
    drop_all_days()
    today = timezone.now().date()
    old = today - timedelta(days=3)
    rnd = random.Random(9)
    records = []
    for day in (old, today):
        for n in range(20_000):
            text = rnd.choice(SPECIAL) if n % 500 == 0 else " ".join(rnd.choices(WORDS, k=8))
            records.append(
                Record(line=f"{text} #{n}", ts_ns=day_ns(day, n), container_id=f"c{n % 7}", tenant="tenant-a")
            )
    rows = RowWriter()
    try:
        rows.write(records)
    finally:
        rows.close()
    return old, today


def search_results() -> dict[tuple[str, str], list[int]]:
    out = {}
    with connection.cursor() as cur:
        for op, pattern in QUERIES:
            cur.execute(f"SELECT id FROM logs WHERE line {op} %s ORDER BY id", (pattern,))
            out[(op, pattern)] = [r[0] for r in cur.fetchall()]
    return out


def explain(query: str, params: tuple) -> str:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + query, params)
        return "\n".join(r[0] for r in cur.fetchall())


def test_it_seals_without_changing_any_search_result(days, celery_worker):
    old, today = days
    before = search_results()
    assert [q for q in QUERIES if not before[q]] == [("ILIKE", "%ab%")]  # the others do find lines
    old_name = partitions.partition_name(old)

    result = run_task(tasks.seal_partitions, celery_worker)

    assert [s["day"] for s in result["sealed"]] == [old.isoformat()]
    assert search_results() == before
    with connection.cursor() as cur:
        cur.execute("SELECT day FROM log_partitions WHERE sealed_at IS NOT NULL")
        assert [r[0] for r in cur.fetchall()] == [old]
        leaves = partitions.leaf_names(cur.cursor, old_name)
        cur.execute(
            "SELECT count(*) FROM pg_index WHERE indexrelid = ANY(%s::regclass[]) AND indisvalid",
            ([trgm_index_name(leaf) for leaf in leaves],),
        )
        assert cur.fetchone()[0] == len(leaves)
        cur.execute("SELECT sum(rows) FROM log_day_counts WHERE day = %s", (old,))
        assert cur.fetchone()[0] == 20_000
        # The histogram rollup, in both spans.
        cur.execute(
            "SELECT span, sum(rows) FROM log_bucket_counts WHERE day = %s GROUP BY 1 ORDER BY 1", (old,)
        )
        assert cur.fetchall() == [(5, 20_000), (60, 20_000)]
    # The planner uses the trigram index on the sealed day and cannot on the hot one.
    query = "SELECT id FROM logs WHERE line ILIKE %s AND ts >= %s AND ts < %s"
    sealed_plan = explain(query, ("%rare-needle-7f3a%", old, old + timedelta(days=1)))
    assert "_line_trgm" in sealed_plan, sealed_plan
    hot_plan = explain(query, ("%rare-needle-7f3a%", today, today + timedelta(days=1)))
    assert "_line_trgm" not in hot_plan, hot_plan

    # A late line for the sealed day is found through the index like the others.
    rows = RowWriter()
    try:
        rows.write([Record(line="late rare-needle-7f3a", ts_ns=day_ns(old, 7), container_id="c1")])
    finally:
        rows.close()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM logs WHERE line ILIKE %s AND ts >= %s", ("%rare-needle-7f3a%", old))
        assert cur.fetchone()[0] == len(before[("ILIKE", "%rare-needle-7f3a%")]) + 1

    idle = {"sealed": [], "skipped": [], "rolled_up": []}
    assert run_task(tasks.seal_partitions, celery_worker) == idle  # idempotent


def test_it_rebuilds_an_index_an_interrupted_seal_left_invalid(days, celery_worker):
    old, today = days
    run_task(tasks.seal_partitions, celery_worker)
    leaf = partitions.leaf_names(connection.cursor().cursor, partitions.partition_name(old))[0]
    with connection.cursor() as cur:
        # What a CREATE INDEX CONCURRENTLY cancelled half-way leaves behind.
        cur.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (trgm_index_name(leaf),)
        )
        cur.execute("UPDATE log_partitions SET sealed_at = NULL")

    result = run_task(tasks.seal_partitions, celery_worker)

    assert result["sealed"][0]["indexes_built"] == 1
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", (trgm_index_name(leaf),)
        )
        assert cur.fetchone()[0] is True

    # An operator may seal a day now, whatever the hot window says.
    result = run_task(tasks.seal_partition, celery_worker, today.isoformat())
    assert result["sealed"][0]["day"] == today.isoformat()
    with connection.cursor() as cur:
        cur.execute("SELECT day FROM log_partitions WHERE sealed_at IS NOT NULL ORDER BY day")
        assert [r[0] for r in cur.fetchall()] == [old, today]
