"""Create and drop `logs` partitions: one per UTC day, split by HASH(ckey).

Creation is idempotent and cheap when the partition exists, so the writer can call it for
every day it sees (cached in memory) and Celery beat can create days ahead; an insert never
fails for a new day or a new container.
"""

from datetime import date, timedelta

from django.conf import settings
from psycopg import sql

DAY_US = 86_400_000_000


def partition_name(day: date) -> str:
    return f"logs_p{day:%Y%m%d}"


def ensure_day(cur, day: date, hash_partitions: int | None = None) -> bool:
    """Create the partition for `day` if missing. Returns True when it was created."""
    name = partition_name(day)
    cur.execute("SELECT 1 FROM log_partitions WHERE name = %s", (name,))
    if cur.fetchone():
        return False
    modulus = hash_partitions or settings.LOGSITE_HASH_PARTITIONS
    # Concurrent writers may race to create the same day; the advisory lock serialises only
    # this rare DDL, never the COPY path.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
    cur.execute("SELECT 1 FROM log_partitions WHERE name = %s", (name,))
    if cur.fetchone():
        return False
    start = day.isoformat()
    end = (day + timedelta(days=1)).isoformat()
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF logs "
            "FOR VALUES FROM ({}) TO ({}) PARTITION BY HASH (ckey)"
        ).format(sql.Identifier(name), sql.Literal(start + " 00:00:00+00"), sql.Literal(end + " 00:00:00+00"))
    )
    for remainder in range(modulus):
        child = f"{name}_h{remainder}"
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES WITH (MODULUS {}, REMAINDER {})"
            ).format(
                sql.Identifier(child), sql.Identifier(name), sql.Literal(modulus), sql.Literal(remainder)
            )
        )
        create_leaf_indexes(cur, child)
    cur.execute("INSERT INTO log_partitions (name, day) VALUES (%s, %s) ON CONFLICT DO NOTHING", (name, day))
    return True


def create_leaf_indexes(cur, table: str) -> None:
    # The btree serves container-scoped paging (ckey, ts, id); the BRIN on id lets the
    # forwarder read a batch's id range without a second btree's insert cost.
    cur.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (ckey, ts, id)").format(
            sql.Identifier(table + "_ckey_ts_id"), sql.Identifier(table)
        )
    )
    cur.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING brin (id)").format(
            sql.Identifier(table + "_id_brin"), sql.Identifier(table)
        )
    )


def ensure_days_ahead(cur, today: date, days_ahead: int | None = None) -> list[date]:
    ahead = days_ahead if days_ahead is not None else settings.LOGSITE_PARTITION_DAYS_AHEAD
    created = []
    for offset in range(ahead + 1):
        day = today + timedelta(days=offset)
        if ensure_day(cur, day):
            created.append(day)
    return created


def existing_days(cur) -> list[date]:
    cur.execute("SELECT day FROM log_partitions ORDER BY day")
    return [row[0] for row in cur.fetchall()]


def drop_day(cur, day: date) -> None:
    name = partition_name(day)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    cur.execute("DELETE FROM log_partitions WHERE name = %s", (name,))
