"""Rows per container per 5-minute and per 1-hour bucket of a day, for histograms.

An unfiltered or container-only histogram over a week would otherwise count every row
(~1.5 s for 10M rows); from this rollup it sums some 30k small rows. It is built when a day
is sealed, rebuilt after retention deleted rows from the day (and forgotten before the
delete starts, so no reader counts rows already gone), and rebuilt every few minutes for the
days not sealed yet (`roll_up_unsealed`).

Exactness: the rollup counts the rows with id <= the day's `max_id`, a watermark taken from
the id sequence after every transaction that could still insert a lower id has ended (the
writer reserves its ids inside the transaction that inserts them). Every line that arrives
later has a higher id, so a reader adds those by an id range, which the BRIN on id finds
quickly.

Buckets use the same `date_bin` origin as search/histogram.py, and 5 minutes and 1 hour
divide every histogram bucket but 1 minute, so the histogram's buckets sum exactly.
"""

import time
from datetime import date

from psycopg import sql

from ingest.store.partitions import partition_name
from ingest.store.schema import ID_BLOCK

ORIGIN = "2000-01-01 00:00:00+00"
WAIT_LIMIT_S = 60.0

CREATE_BUCKET_COUNTS = """
CREATE TABLE IF NOT EXISTS log_bucket_days (
    day      date        PRIMARY KEY,
    max_id   bigint      NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS log_bucket_counts (
    day    date        NOT NULL,
    span   smallint    NOT NULL,
    ckey   bigint      NOT NULL,
    bucket timestamptz NOT NULL,
    rows   integer     NOT NULL,
    PRIMARY KEY (day, span, ckey, bucket)
);
"""
DROP_BUCKET_COUNTS = "DROP TABLE IF EXISTS log_bucket_counts; DROP TABLE IF EXISTS log_bucket_days;"

# One statement: both spans and the watermark come from the same snapshot.
_BUILD = """
WITH fine AS (
    SELECT ckey, date_bin('5 minutes', ts, %(origin)s::timestamptz) AS bucket, count(*) AS rows
    FROM {day} WHERE id <= %(mark)s GROUP BY 1, 2
), five AS (
    INSERT INTO log_bucket_counts (day, span, ckey, bucket, rows)
    SELECT %(day)s, 5, ckey, bucket, rows FROM fine
), hour AS (
    INSERT INTO log_bucket_counts (day, span, ckey, bucket, rows)
    SELECT %(day)s, 60, ckey, date_bin('1 hour', bucket, %(origin)s::timestamptz), sum(rows)
    FROM fine GROUP BY 1, 2, 3, 4
)
INSERT INTO log_bucket_days (day, max_id) VALUES (%(day)s, %(mark)s)
"""

_IN_FLIGHT = (
    "SELECT count(*) FROM pg_snapshot_xip(%s::pg_snapshot) x "
    "WHERE pg_xact_status(x) = 'in progress' AND x IS DISTINCT FROM pg_current_xact_id_if_assigned()"
)


def store_buckets(conn, day: date, day_table: str) -> None:
    """(Re)builds the rollup of `day`."""
    mark = id_watermark(conn)
    with conn.transaction(), conn.cursor() as cur:
        # Sealing and the hot-day task may rebuild the same day at once.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"log_bucket_counts:{day}",))
        forget_day(cur, day)
        cur.execute(
            sql.SQL(_BUILD).format(day=sql.Identifier(day_table)),
            {"origin": ORIGIN, "day": day, "mark": mark},
        )


def id_watermark(conn) -> int:
    """An id such that no row with a lower or equal id can still appear: the highest id handed
    out so far, returned once the transactions running now (which may hold ids below it) ended."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT CASE WHEN is_called THEN last_value + %s - 1 ELSE last_value - 1 END, "
            "pg_current_snapshot()::text FROM logs_id_seq",
            (ID_BLOCK,),
        )
        mark, snapshot = cur.fetchone()
        deadline = time.monotonic() + WAIT_LIMIT_S
        while True:
            cur.execute(_IN_FLIGHT, (snapshot,))
            if cur.fetchone()[0] == 0:
                return mark
            if time.monotonic() > deadline:
                raise TimeoutError("transactions older than the rollup still run; try again later")
            time.sleep(0.05)


def roll_up_unsealed(conn, today: date) -> list[date]:
    """Rebuilds the rollup of every day not sealed yet (up to today): run every few minutes,
    so a histogram counts only the last minutes of the hot day from `logs`. A rebuild reads
    the day once (~0.3 s for 1.4M lines), which is why it is periodic and not per search."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT day FROM log_partitions WHERE sealed_at IS NULL AND day <= %s ORDER BY day", (today,)
        )
        days = [row[0] for row in cur.fetchall()]
    for day in days:
        store_buckets(conn, day, partition_name(day))
    return days


def forget_day(cur, day: date) -> None:
    cur.execute("DELETE FROM log_bucket_days WHERE day = %s", (day,))
    cur.execute("DELETE FROM log_bucket_counts WHERE day = %s", (day,))


def days_missing(cur) -> list[date]:
    """Sealed days without a rollup: sealed before rollups existed, or a rebuild was cut short."""
    cur.execute(
        "SELECT p.day FROM log_partitions p LEFT JOIN log_bucket_days b ON b.day = p.day "
        "WHERE p.sealed_at IS NOT NULL AND b.day IS NULL ORDER BY p.day"
    )
    return [row[0] for row in cur.fetchall()]
