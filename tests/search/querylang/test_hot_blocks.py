"""The hot days' block indexes (ingest/store/hot_index.py) change how a search runs, never what
it finds: the walk over a day with some blocks indexed, one block valid on only some leaves
(a build under way), one invalid everywhere (an interrupted build) and late lines inserted
into indexed hours gives exactly what the in-memory matcher gives, and the plans use a
block's index only for windows inside it."""

import random
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from ingest.normalize import normalize_batch
from ingest.record import Record
from ingest.store import hot_index
from ingest.store.containers import ContainerKeys
from ingest.store.copy import COPY_SQL, encode_rows
from ingest.store.partitions import leaf_names, partition_name
from ingest.store.writer import CommittedBatch, conninfo_from_settings
from search import executor
from search.querylang import parse
from search.session import search_cursor
from tests.search.querylang import dataset as ds
from tests.search.querylang.test_executor import (
    HISTOGRAM_QUERIES,
    SIZES,
    _nodes,
    _plan,
    histogram,
    python_histogram,
    walked_ids,
)
from tests.search.querylang.test_sql import ALL_TENANTS, QUERIES, python_ids

pytestmark = pytest.mark.django_db

HOT = ds.DAY0 + timedelta(days=ds.DAYS - 1)  # the newest day: NOW is 18:00 on it
MIDDLE = ds.DAY0 + timedelta(days=1)
LATE_WORDS = ["error late", "timeout after index", "İstanbul late", "100% late"]


def _late_lines(dataset, hours: list[int]) -> None:
    """Lines for hours whose block is already indexed, written the way the writer writes them
    (normalize, container keys, binary COPY) and added to the dataset as the tail sees them."""
    rnd = random.Random(11)
    by_name = {(r["tenant"], r["container_name"]): r for r in dataset.rows}
    records = []
    for n, hour in enumerate(hours * 6):
        tenant, service, name, image, host, labels = ds.CONTAINERS[n % len(ds.CONTAINERS)]
        seen = by_name[(tenant, name)]
        ts = HOT + timedelta(hours=hour, seconds=rnd.randrange(3600))
        records.append(
            Record(
                line=f"{rnd.choice(LATE_WORDS)} #{n}",
                ts_ns=int(ts.timestamp()) * 10**9 + ts.microsecond * 1000,
                tenant=tenant,
                service=service,
                container_id=seen["container_id"],
                container_name=name,
                image=image,
                host=host,
                stream="stderr",
                level=3,
                labels=labels,
            )
        )
    batch = normalize_batch(records, ds.LIMITS)
    with psycopg.connect(conninfo_from_settings()) as conn, conn.cursor() as cur:
        ckeys = ContainerKeys().resolve(cur, batch.metas)
        cur.execute("SELECT nextval('logs_id_seq')")
        first_id = cur.fetchone()[0]
        with cur.copy(COPY_SQL) as copy:
            copy.write(encode_rows(batch.rows, ckeys, first_id))
    messages = ds.build_messages(CommittedBatch(batch, ckeys, first_id))
    labels_by_key = {(c[0], c[2]): {k: str(v) for k, v in c[5].items()} for c in ds.CONTAINERS}
    for ckey in set(ckeys):
        message = messages[ds.container_group(ckey)]
        container = message["containers"][0]
        dataset.rows += ds.tail_rows(message, labels_by_key[(container["tenant"], container["name"])])


def _set_valid(names: list[str], valid: bool) -> None:
    with connection.cursor() as cur:
        # What a CREATE INDEX CONCURRENTLY still running (or cancelled) looks like to others.
        cur.execute(
            "UPDATE pg_index SET indisvalid = %s WHERE indexrelid = ANY(%s::regclass[])", (valid, names)
        )


@pytest.fixture(scope="module")
def blocks(dataset, django_db_blocker):
    with django_db_blocker.unblock():
        with psycopg.connect(conninfo_from_settings(), autocommit=True) as conn:
            # The middle day as the task leaves it at the end of the day (four merged blocks)...
            hot_index.index_day(conn, MIDDLE.date(), MIDDLE + timedelta(days=1), [60, 360], timedelta(0))
            # ...and the newest as it leaves it at 15:30: 00-06, 06-12, hours 12..15, then the
            # quarters 15:00-15:15 and 15:15-15:30.
            hot_index.index_day(conn, HOT.date(), HOT + timedelta(hours=15.5), [15, 60, 360], timedelta(0))
        with connection.cursor() as cur:
            leaves = leaf_names(cur.cursor, partition_name(HOT.date()))
        hour = {h: hot_index.Block(HOT.date(), h * 60, h * 60 + 60) for h in range(24)}
        _set_valid([hour[13].index_name(leaves[0])], False)  # under way: valid on the others
        _set_valid([hour[14].index_name(leaf) for leaf in leaves], False)
        _late_lines(dataset, [1, 7, 12, 13, 14, 15])
        with connection.cursor() as cur:
            cur.execute("ANALYZE logs")
        yield dataset


def test_the_extent_lists_the_blocks_valid_on_some_leaf(blocks):
    with search_cursor() as cur:
        extent = executor.stored_extent(cur, list(blocks.ckeys))
    hot = [(lo - HOT, hi - HOT) for lo, hi in extent.hot_blocks if lo >= HOT]
    hours = [(0, 6), (6, 12), (12, 13), (13, 14), (15, 15.25), (15.25, 15.5)]  # 14-15 is invalid everywhere
    assert hot == [(timedelta(hours=a), timedelta(hours=b)) for a, b in hours]
    assert len([span for span in extent.hot_blocks if span[0] < HOT]) == 4


@pytest.mark.parametrize("query", QUERIES)
def test_the_walk_over_indexed_blocks_pages_exactly_what_the_matcher_accepts(blocks, query):
    node = parse(query)
    for newest_first in (True, False):
        expected = python_ids(blocks, node, ALL_TENANTS, newest_first)
        assert walked_ids(node, 23, newest_first) == expected
    assert walked_ids(node, 1000, True) == python_ids(blocks, node, ALL_TENANTS, True)


@pytest.mark.parametrize("query", [*HISTOGRAM_QUERIES, "late", "timeout OR level>=error"])
def test_histograms_cut_at_the_blocks_count_exactly(blocks, query):
    for size in ("15m", "1h"):
        assert histogram(query, size) == python_histogram(blocks, query, SIZES[size]), (query, size)


def _only_trigram_indexes() -> None:
    """Leaves the hot day's leaves only their trigram block indexes (and a disabled seq scan):
    on rows this few the ts BRIN and the (ckey, ts, id) btree beat any trigram index. The
    test's transaction rolls the DROP back."""
    with connection.cursor() as cur:
        for leaf in leaf_names(cur.cursor, partition_name(HOT.date())):
            cur.execute(f'DROP INDEX IF EXISTS "{leaf}_ts_brin", "{leaf}_ckey_ts_id"')
        cur.execute("SELECT set_config('enable_seqscan', 'off', true)")


@pytest.mark.parametrize("query", ["late", "error", "container:web-1 timeout", '"100%"', "İSTANBUL"])
def test_late_lines_in_indexed_hours_are_found_through_the_index(blocks, query):
    node = parse(query)
    expected = python_ids(blocks, node, ALL_TENANTS)
    assert expected
    _only_trigram_indexes()
    assert walked_ids(node, 5, True) == expected
    assert walked_ids(node, 5, False) == python_ids(blocks, node, ALL_TENANTS, False)


def _trgm_used(query, window) -> set[str]:
    """The block indexes the plan of one window reads."""
    _only_trigram_indexes()
    plan = _plan(query, window, seqscan=False)
    used = {n["Index Name"] for n in _nodes(plan) if "_trgm_" in n.get("Index Name", "")}
    return {name.rsplit("_trgm_", 1)[-1] for name in used}


def test_a_window_inside_a_block_uses_its_index_and_no_other(blocks):
    assert _trgm_used(
        "timeout", (HOT + timedelta(hours=12, minutes=5), HOT + timedelta(hours=12, minutes=50))
    ) == {"1200_1300"}
    # A window inside a merged block uses it; one across two blocks can use neither.
    assert _trgm_used("timeout", (HOT + timedelta(hours=7), HOT + timedelta(hours=8))) == {"0600_1200"}
    assert _trgm_used("timeout", (HOT + timedelta(hours=11), HOT + timedelta(hours=13))) == set()


def test_an_invalid_block_index_is_not_used(blocks):
    assert _trgm_used("timeout", (HOT + timedelta(hours=14), HOT + timedelta(hours=15))) == set()
    # Valid on all leaves but one: those use it.
    assert _trgm_used("timeout", (HOT + timedelta(hours=13), HOT + timedelta(hours=14))) == {"1300_1400"}
