"""Reading a ledger batch's rows: the ts bounds the reader trusts, and the binary fetch."""

import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction

from forward import filters
from forward.cursor import Position
from forward.rows import TS_SLACK, RowReader
from ingest.store.writer import LEDGER_SQL
from tests.forward.writers import make_writer, records, write

# Microseconds since the Unix epoch: around now, at second and day edges, and the extremes a
# timestamptz can hold that Python can check (year 1 to year 9999).
MICROS = [
    1_764_000_000_000_000,
    1_764_000_000_999_999,
    1_764_000_001_000_001,
    1_799_999_999_999_999,
    0,
    -1,
    253_402_300_799_999_999,
    253_402_300_799_000_001,
    -62_135_596_800_000_000,
    -62_135_596_799_999_999,
]


class _Rollback(Exception):
    pass


@pytest.mark.django_db
def test_the_writers_ledger_bounds_are_within_a_tenth_of_the_slack():
    """The reader narrows each batch's ts range by only TS_SLACK: the writer's own float
    conversion (its LEDGER_SQL, as it runs) must never move a bound by more than that."""
    returning = (
        " RETURNING (extract(epoch FROM ts_min) * 1e6)::int8, (extract(epoch FROM ts_max) * 1e6)::int8"
    )
    worst = 0
    try:
        with transaction.atomic(), connection.cursor() as cur:
            for us in MICROS:
                cur.execute(LEDGER_SQL + returning, ("slack-probe", 1, 1, 1, us, us, None))
                ts_min, ts_max = cur.fetchone()
                worst = max(worst, abs(ts_min - us), abs(ts_max - us))
            raise _Rollback
    except _Rollback:
        pass
    assert worst * 10 <= TS_SLACK / timedelta(microseconds=1), f"off by {worst} µs"


def test_rows_at_the_edges_of_a_batch_are_read(actors, clean_logs, tmp_path):
    """Lines a whole second apart and at µs edges, several containers: with the narrow slack
    every row of every batch is read once, in id order, with its exact ns time and metadata."""
    writer = make_writer(tmp_path, "edges")
    recs = records("edge", 40, tenant=actors.tenant_a.slug, containers=4)
    base = (time.time_ns() // 10**9 - 10) * 10**9
    for i, rec in enumerate(recs):
        rec.ts_ns = base + (i % 7) * 1_000_000_000 + (999_999_999 if i % 2 else 1)
        rec.attrs = {"req": i, "path": f"/item/{i}"} if i % 3 == 0 else None
    write(writer, recs[:25])
    write(writer, recs[25:])
    conditions, params = filters.container_conditions(actors.tenant_a.slug, "", "")
    with psycopg.Cursor(connection.connection) as cur:
        chunk = RowReader(cur, actors.tenant_a.slug, conditions, params).read(Position(0, 0, 0), 1000, 10**7)
    assert [row.line for row in chunk.rows] == [rec.line for rec in recs]
    assert [row.ts_ns for row in chunk.rows] == [rec.ts_ns for rec in recs]
    assert [row.container_name for row in chunk.rows] == [rec.container_name.lstrip("/") for rec in recs]
    assert {row.tenant for row in chunk.rows} == {actors.tenant_a.slug}
    assert [row.labels for row in chunk.rows] == [{"app": "demo"}] * len(recs)
    # jsonb comes back parsed, whichever connection the reader runs on.
    assert [row.attrs for row in chunk.rows] == [rec.attrs for rec in recs]
    assert [row.stream for row in chunk.rows] == [rec.stream for rec in recs]


def _read_all(cur, tenant, matcher, max_rows, max_bytes, sent_of):
    """Reads until caught up; after each chunk the cursor moves as if `sent_of(chunk)` rows of
    it were acknowledged. Returns the lines in the order they were handed out."""
    conditions, params = filters.container_conditions(tenant, "", "")
    reader = RowReader(cur, tenant, conditions, params, matcher)
    position, out = Position(0, 0, 0), []
    for _ in range(1000):
        chunk = reader.read(position, max_rows, max_bytes)
        if not chunk.rows and chunk.end == position:
            return out
        # Within the budgets: at most max_rows, and only the last row may reach max_bytes.
        assert len(chunk.rows) <= max_rows
        assert sum(len(row.line) for row in chunk.rows[:-1]) < max_bytes
        assert chunk.nbytes == sum(len(row.line) for row in chunk.rows)
        sent = sent_of(chunk)
        out.extend(row.line for row in chunk.rows[:sent])
        position = chunk.position_after(sent)
    raise AssertionError("the reader never caught up")


@pytest.mark.parametrize("query", ["", 'stream:stderr -"line 1"'])
@pytest.mark.parametrize(("max_rows", "max_bytes"), [(1000, 10**7), (7, 10**7), (1000, 90), (5, 40), (1, 1)])
def test_budgets_and_partial_sends_resume_exactly_where_they_stopped(
    actors, clean_logs, tmp_path, query, max_rows, max_bytes
):
    """Byte and row budgets cut batches anywhere, a filter leaves gaps, a send may stop part
    way: read back to back, every wanted line comes exactly once, in order."""
    tenant = actors.tenant_a.slug
    writer = make_writer(tmp_path, "budgets")
    batches = [
        records("line", 23, tenant=tenant, containers=3),
        records("other", 9, tenant="tenant-b", containers=2),
        records("line x" * 5, 17, tenant=tenant, containers=2) + records("other-b", 4, tenant="tenant-b"),
        records("line", 1, tenant=tenant),
    ]
    for recs in batches:
        write(writer, recs)
    matcher = filters.line_matcher(query)
    wanted = [
        rec.line
        for recs in batches
        for rec in recs
        if rec.tenant == tenant and (matcher is None or matcher(_as_row(rec)))
    ]
    assert wanted, "the filter must leave something to forward"
    with psycopg.Cursor(connection.connection) as cur:
        assert _read_all(cur, tenant, matcher, max_rows, max_bytes, lambda c: len(c.rows)) == wanted
        # Only part of every chunk acknowledged (at least one row, so it moves on).
        half = lambda c: len(c.rows) // 2 or len(c.rows)  # noqa: E731
        assert _read_all(cur, tenant, matcher, max_rows, max_bytes, half) == wanted


def _as_row(rec):
    from forward.sinks.row import ForwardRow

    return ForwardRow(rec.ts_ns, rec.line, rec.stream, rec.level, rec.tenant, rec.service)
