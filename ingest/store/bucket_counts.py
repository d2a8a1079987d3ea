"""Rows per container per 5-minute bucket of a sealed day, for histograms and counts.

An unfiltered or container-only histogram over a week would otherwise count every row
(~3 s for 10M rows); from this rollup it sums a few hundred thousand small rows. It is built
when a day is sealed and rebuilt after retention deleted rows from the day (and forgotten
before the delete starts, so no reader sees counts of rows already gone). Lines that arrive
in a sealed day later get ids above the day's `max_id` (ids come from one rising sequence),
so a reader adds them by an id range the day's BRIN on id finds quickly.

5 minutes divides every histogram bucket longer than a minute, and buckets here use the same
`date_bin` origin as search/executor.py, so coarser buckets sum exactly.
"""

from datetime import date

from psycopg import sql

BUCKET = "5 minutes"
ORIGIN = "2000-01-01 00:00:00+00"

CREATE_BUCKET_COUNTS = """
CREATE TABLE IF NOT EXISTS log_bucket_days (
    day      date        PRIMARY KEY,
    max_id   bigint      NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS log_bucket_counts (
    day    date        NOT NULL,
    ckey   bigint      NOT NULL,
    bucket timestamptz NOT NULL,
    rows   integer     NOT NULL,
    PRIMARY KEY (day, ckey, bucket)
);
"""
DROP_BUCKET_COUNTS = "DROP TABLE IF EXISTS log_bucket_counts; DROP TABLE IF EXISTS log_bucket_days;"

# One statement, so the counts and max_id come from the same snapshot.
_BUILD = """
WITH counted AS (
    SELECT ckey, date_bin(%(bucket)s::interval, ts, %(origin)s::timestamptz) AS bucket,
           count(*) AS rows, max(id) AS max_id
    FROM {day} GROUP BY 1, 2
), stored AS (
    INSERT INTO log_bucket_counts (day, ckey, bucket, rows)
    SELECT %(day)s, ckey, bucket, rows FROM counted
)
INSERT INTO log_bucket_days (day, max_id) SELECT %(day)s, coalesce(max(max_id), 0) FROM counted
"""


def store_buckets(conn, day: date, day_table: str) -> None:
    """(Re)builds the rollup of `day` in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        forget_day(cur, day)
        cur.execute(
            sql.SQL(_BUILD).format(day=sql.Identifier(day_table)),
            {"bucket": BUCKET, "origin": ORIGIN, "day": day},
        )


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
