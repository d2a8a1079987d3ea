"""search/executor.py against real Postgres: the windowed walk and the histogram (with and
without the sealed days' rollup) give exactly what the in-memory matcher gives, and the plans
prune and use the trigram index."""

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from ingest.store import bucket_counts
from ingest.store.copy import COPY_SQL, encode_rows
from ingest.store.partitions import partition_name
from ingest.store.writer import conninfo_from_settings
from search import executor
from search.querylang import compile_matcher, parse
from search.querylang.sql import build_search_sql
from search.session import search_cursor
from tests.search.querylang import dataset as ds
from tests.search.querylang.test_sql import ALL_TENANTS, QUERIES, python_ids

pytestmark = pytest.mark.django_db

ROLLED = [ds.DAY0.date(), (ds.DAY0 + timedelta(days=1)).date()]


@pytest.fixture(scope="module")
def rolled(dataset, django_db_blocker):
    """The dataset with a rollup for its first two days, as sealing leaves them."""
    with django_db_blocker.unblock():
        connection.ensure_connection()
        conn = connection.connection
        for day in ROLLED:
            bucket_counts.store_buckets(conn, day, partition_name(day))
        try:
            yield dataset
        finally:
            with connection.cursor() as cur:
                for day in ROLLED:
                    bucket_counts.forget_day(cur, day)


def walked_ids(node, limit, newest_first):
    ids, before = [], None
    while True:
        page = executor.search_page(ALL_TENANTS, node, limit, before, newest_first, now=ds.NOW)
        ids += [r["id"] for r in page.rows]
        if page.next_before is None:
            return ids
        before = page.next_before


@pytest.mark.parametrize("query", QUERIES)
def test_the_walk_pages_exactly_what_the_matcher_accepts(dataset, query):
    node = parse(query)
    for newest_first in (True, False):
        assert walked_ids(node, 23, newest_first) == python_ids(dataset, node, ALL_TENANTS, newest_first)


def test_the_walk_finds_lines_stamped_after_now(dataset):
    node = parse("")
    newest = python_ids(dataset, node, ALL_TENANTS)[:5]
    later = {r["id"] for r in dataset.rows if r["ts_ns"] > ds.NOW.timestamp() * 10**9}
    assert set(newest) <= later  # the dataset runs past NOW, so the first page is all "future"
    assert [r["id"] for r in executor.search_page(ALL_TENANTS, node, 5, now=ds.NOW).rows] == newest


def python_histogram(dataset, query, bucket: timedelta) -> Counter:
    matches = compile_matcher(parse(query), now=ds.NOW)
    origin = datetime(2000, 1, 1, tzinfo=UTC)
    counts: Counter = Counter()
    for r in dataset.rows:
        if matches(r):
            ts = datetime.fromtimestamp(r["ts_ns"] // 1000 / 10**6, UTC)
            counts[origin + (ts - origin) // bucket * bucket] += 1
    return counts


def histogram(query, bucket):
    found = executor.histogram(ALL_TENANTS, query, bucket, now=ds.NOW)
    return Counter({b["bucket"]: b["count"] for b in found})


HISTOGRAM_QUERIES = [
    *("", "container:web-1", "label:env=prod OR image:node*"),
    *("-tenant:beta", "error", "since:1d"),
]
SIZES = {
    "1m": timedelta(minutes=1),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


@pytest.mark.parametrize("query", HISTOGRAM_QUERIES)
def test_histograms_count_exactly_with_the_rollup(rolled, query):
    for name, size in SIZES.items():
        assert histogram(query, name) == python_histogram(rolled, query, size), (query, name)


def test_histograms_of_container_queries_read_the_rollup(rolled):
    # Proof by tampering: a rollup count the rows do not have shows up, then goes with a rebuild.
    expected = python_histogram(rolled, "container:web-1", SIZES["1d"])
    with connection.cursor() as cur:
        cur.execute("UPDATE log_bucket_counts SET rows = rows + 1000 WHERE day = %s", (ROLLED[0],))
    try:
        tampered = histogram("container:web-1", "1d")
        assert tampered[ds.DAY0] == expected[ds.DAY0] + 1000 * _rollup_rows(ROLLED[0], "container:web-1")
        assert histogram("error", "1d") == python_histogram(rolled, "error", SIZES["1d"])  # a line filter
        assert histogram("container:web-1", "1m") == python_histogram(rolled, "container:web-1", SIZES["1m"])
    finally:
        connection.ensure_connection()
        bucket_counts.store_buckets(connection.connection, ROLLED[0], partition_name(ROLLED[0]))
    assert histogram("container:web-1", "1d") == expected


def _rollup_rows(day, query) -> int:
    with connection.cursor() as cur:
        ckeys = executor.matching_ckeys(cur, parse(query), ALL_TENANTS)
        cur.execute(
            "SELECT count(*) FROM log_bucket_counts WHERE day = %s AND span = 60 AND ckey = ANY(%s)",
            (day, ckeys),
        )
        return cur.fetchone()[0]


def test_a_late_line_in_a_rolled_up_day_is_counted(rolled):
    ts = ds.DAY0 + timedelta(hours=3, minutes=7)
    before = histogram("", "1h")
    row_id = _write_late_line(ts)
    try:
        after = histogram("", "1h")
        assert after - before == Counter({ts.replace(minute=0): 1})
    finally:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM logs WHERE id = %s", (row_id,))
    assert histogram("", "1h") == before


def _write_late_line(ts: datetime, conn=None) -> int:
    """Inserts one line as the writer does (ids reserved in the inserting transaction); with
    `conn`, leaves that transaction open."""
    if conn is None:
        connection.ensure_connection()
        with connection.connection.transaction():
            return _write_late_line(ts, connection.connection)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM containers WHERE tenant = 'acme' ORDER BY id LIMIT 1")
        ckey = cur.fetchone()[0]
        cur.execute("SELECT nextval('logs_id_seq')")
        row_id = cur.fetchone()[0]
        ts_ns = int(ts.timestamp()) * 10**9
        row = (0, ts_ns, ts_ns, 1, 6, 0, b"late line", None, None)
        with cur.copy(COPY_SQL) as copy:
            copy.write(encode_rows([row], [ckey], row_id))
    return row_id


def test_a_rollup_waits_for_lines_in_flight_with_lower_ids(rolled):
    # Writer A holds a lower id than writer B, but commits after B: a rollup built in between
    # must neither miss A's line (below its max_id) nor count a line twice.
    ts = ds.DAY0 + timedelta(hours=5, minutes=1)
    before = histogram("", "1h")
    conninfo = conninfo_from_settings()
    rows = []
    with psycopg.connect(conninfo) as writer_a:
        rows.append(_write_late_line(ts, writer_a))
        with psycopg.connect(conninfo) as writer_b:
            rows.append(_write_late_line(ts, writer_b))
        assert rows[0] < rows[1]
        with psycopg.connect(conninfo, autocommit=True) as sealer:
            app = f"rollup-{rows[0]}"
            sealer.execute("SELECT set_config('application_name', %s, false)", (app,))
            done = []
            thread = threading.Thread(
                target=lambda: done.append(
                    bucket_counts.store_buckets(sealer, ROLLED[0], partition_name(ROLLED[0]))
                )
            )
            thread.start()
            try:
                _wait_until_waiting(app)
                assert not done  # it waits for writer A
            finally:
                writer_a.commit()
                thread.join(30)
            assert done == [None]
    try:
        assert histogram("", "1h") - before == Counter({ts.replace(minute=0): 2})
    finally:
        # Committed by other connections, so removed by one too (the test's own transaction
        # is rolled back at its end).
        with psycopg.connect(conninfo, autocommit=True) as cleaner:
            cleaner.execute("DELETE FROM logs WHERE id = ANY(%s)", (rows,))
            bucket_counts.store_buckets(cleaner, ROLLED[0], partition_name(ROLLED[0]))
    assert histogram("", "1h") == before


def _wait_until_waiting(app: str) -> None:
    """Until the rollup's connection is polling for the transactions it waits for."""
    with connection.cursor() as cur:
        for _ in range(600):
            # The test's transaction would otherwise see one cached copy of the statistics.
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s",
                (app, "%pg_snapshot_xip%"),
            )
            if cur.fetchone():
                return
            time.sleep(0.05)
    raise AssertionError("the rollup never started waiting")


def test_forgetting_a_day_falls_back_to_counting_its_rows(rolled):
    with connection.cursor() as cur:
        bucket_counts.forget_day(cur, ROLLED[1])
        assert bucket_counts.days_missing(cur) == []  # the test days are not marked sealed
    try:
        assert histogram("", "1h") == python_histogram(rolled, "", SIZES["1h"])
    finally:
        bucket_counts.store_buckets(connection.connection, ROLLED[1], partition_name(ROLLED[1]))


def test_the_search_session_turns_jit_off_and_plans_with_the_values(dataset):
    with search_cursor() as cur:
        cur.execute("SELECT current_setting('jit'), current_setting('plan_cache_mode')")
        assert cur.fetchone() == ("off", "force_custom_plan")


def _plan(query, window, seqscan=True) -> dict:
    node = parse(query)
    with search_cursor() as cur:
        ckeys = executor.matching_ckeys(cur, node, ALL_TENANTS)
        stmt, params = build_search_sql(node, ALL_TENANTS, ckeys, 100, now=ds.NOW, window=window)
        cur.execute("SELECT set_config('enable_seqscan', %s, true)", ("on" if seqscan else "off",))
        cur.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + stmt, params)
        plan = cur.fetchone()[0]
    return plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_a_window_prunes_to_its_day_and_a_container_to_one_hash_part(dataset):
    day = ds.DAY0 + timedelta(days=1)
    plan = _plan("container:web-1 tenant:acme", (day + timedelta(hours=1), day + timedelta(hours=2)))
    scanned = {n["Relation Name"] for n in _nodes(plan) if n.get("Relation Name", "").startswith("logs_p")}
    assert len(scanned) == 1, scanned
    assert next(iter(scanned)).startswith(partition_name(day.date()) + "_h")


@pytest.mark.parametrize("query", ["istanbul", '"k kelvin"', "İi", "STRASSE", "ΣΑΣ"])
def test_the_ascii_prefilter_keeps_lines_that_only_lower_to_the_term(dataset, query):
    # "İstanbul" and "K kelvin" (Kelvin sign) lower to ASCII: an ASCII term matches them only
    # through the exact ILIKE, which the fast COLLATE "C" prefilter must not reject first.
    node = parse(query)
    expected = python_ids(dataset, node, ALL_TENANTS)
    assert expected, query
    for seqscan in ("on", "off"):
        with connection.cursor() as cur:
            cur.execute("SELECT set_config('enable_seqscan', %s, false)", (seqscan,))
        try:
            assert walked_ids(node, 1000, True) == expected
        finally:
            with connection.cursor() as cur:
                cur.execute("SELECT set_config('enable_seqscan', 'on', false)")


def test_the_hot_day_task_rolls_up_unsealed_days_and_counts_stay_exact(rolled):
    connection.ensure_connection()
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as conn:
        days = bucket_counts.roll_up_unsealed(conn, (ds.DAY0 + timedelta(days=ds.DAYS - 1)).date())
        try:
            assert days == [(ds.DAY0 + timedelta(days=d)).date() for d in range(ds.DAYS)]
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM log_bucket_days")
                assert cur.fetchone()[0] == ds.DAYS
            for query in HISTOGRAM_QUERIES:
                assert histogram(query, "15m") == python_histogram(rolled, query, SIZES["15m"]), query
        finally:
            with conn.cursor() as cur:
                bucket_counts.forget_day(cur, days[-1])
