"""Rows per container per day, for the storage page.

Counting a large day on every page view would read it all, so sealed days are counted once
when they are sealed (and again after retention deleted rows from them) into
`log_day_counts`; days still being written are counted on the fly — exactly while they are
small, from a page sample scaled up once they are not.
"""

from datetime import date

from psycopg import sql

from ingest.store.presence import count_rows

CREATE_DAY_COUNTS = """
CREATE TABLE IF NOT EXISTS log_day_counts (
    day        date        NOT NULL,
    ckey       bigint      NOT NULL,
    rows       bigint      NOT NULL,
    counted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, ckey)
);
"""
DROP_DAY_COUNTS = "DROP TABLE IF EXISTS log_day_counts;"

# Below this much heap a day is counted exactly; above it a page sample of about this size.
EXACT_BELOW_BYTES = 32 * 1024 * 1024


def store_counts(cur, day: date, day_table: str) -> int:
    """Recounts `day` into log_day_counts; returns the number of rows counted."""
    counts = count_rows(cur, day_table)
    cur.execute("DELETE FROM log_day_counts WHERE day = %s", (day,))
    if counts:
        cur.executemany(
            "INSERT INTO log_day_counts (day, ckey, rows) VALUES (%s, %s, %s)",
            [(day, ckey, rows) for ckey, rows in counts.items()],
        )
    return sum(counts.values())


def stored_counts(cur, days: list[date]) -> dict[date, dict[int, int]]:
    cur.execute("SELECT day, ckey, rows FROM log_day_counts WHERE day = ANY(%s)", (days,))
    out: dict[date, dict[int, int]] = {}
    for day, ckey, rows in cur.fetchall():
        out.setdefault(day, {})[ckey] = rows
    return out


def forget_day(cur, day: date) -> None:
    cur.execute("DELETE FROM log_day_counts WHERE day = %s", (day,))


def live_counts(cur, day_table: str) -> tuple[dict[int, int], bool]:
    """(rows per container, estimated?) for a day that is still being written."""
    cur.execute(
        "SELECT coalesce(sum(pg_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
        "WHERE i.inhparent = to_regclass(%s)",
        (day_table,),
    )
    heap = cur.fetchone()[0]
    if heap <= EXACT_BELOW_BYTES:
        return count_rows(cur, day_table), False
    percent = max(0.5, min(100.0, 100.0 * EXACT_BELOW_BYTES / heap))
    cur.execute(
        sql.SQL("SELECT ckey, count(*) FROM {} TABLESAMPLE SYSTEM (%s) GROUP BY ckey").format(
            sql.Identifier(day_table)
        ),
        (percent,),
    )
    return {ckey: round(n * 100 / percent) for ckey, n in cur.fetchall()}, True
