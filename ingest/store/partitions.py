"""Create and drop `logs` partitions: one per UTC day, split by HASH(ckey).

Creation is idempotent and cheap when the partition exists, so the writer can call it for
every day it sees (cached in memory) and Celery beat can create days ahead; an insert never
fails for a new day or a new container. Retention drops days through ingest/store/day_drop.py.
"""

from datetime import date, timedelta

from django.conf import settings
from psycopg import sql

from ingest.store.schema import LINE_STATISTICS

DAY_US = 86_400_000_000


def partition_name(day: date) -> str:
    return f"logs_p{day:%Y%m%d}"


def ensure_day(cur, day: date, hash_partitions: int | None = None) -> bool:
    """Create the partition for `day` if missing. Returns True when it was created.

    The day is built as a standalone table and then attached: `CREATE TABLE ... PARTITION OF`
    would hold ACCESS EXCLUSIVE on `logs` (queueing the writer and every search behind the
    longest running query), while ATTACH needs only SHARE UPDATE EXCLUSIVE on `logs`.
    """
    name = partition_name(day)
    cur.execute("SELECT 1 FROM log_partitions WHERE name = %s", (name,))
    if cur.fetchone():
        return False
    modulus = hash_partitions or settings.LOGSITE_HASH_PARTITIONS
    # Concurrent writers may race to create the same day, and retention holds the same lock
    # while it drops a day; it serialises only this rare DDL, never the COPY path.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
    cur.execute("SELECT 1 FROM log_partitions WHERE name = %s", (name,))
    if cur.fetchone():
        return False
    state = relation_state(cur, name)
    if state is None:
        cur.execute(
            sql.SQL("CREATE TABLE {} (LIKE logs INCLUDING DEFAULTS) PARTITION BY HASH (ckey)").format(
                sql.Identifier(name)
            )
        )
    for remainder in range(modulus):
        _ensure_leaf(cur, name, modulus, remainder)
    # Not inherited from `logs`; set on the day, it reaches every leaf (see LINE_STATISTICS).
    cur.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN line SET STATISTICS {}").format(
            sql.Identifier(name), sql.Literal(LINE_STATISTICS)
        )
    )
    if state != "attached":
        start = day.isoformat() + " 00:00:00+00"
        end = (day + timedelta(days=1)).isoformat() + " 00:00:00+00"
        cur.execute(
            sql.SQL("ALTER TABLE logs ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(name), sql.Literal(start), sql.Literal(end)
            )
        )
    cur.execute("INSERT INTO log_partitions (name, day) VALUES (%s, %s) ON CONFLICT DO NOTHING", (name, day))
    return True


def _ensure_leaf(cur, name: str, modulus: int, remainder: int) -> None:
    child = f"{name}_h{remainder}"
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES WITH (MODULUS {}, REMAINDER {})"
        ).format(sql.Identifier(child), sql.Identifier(name), sql.Literal(modulus), sql.Literal(remainder))
    )
    create_leaf_indexes(cur, child)


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
    cur.execute(ts_brin_sql(table))


def ts_brin_sql(table: str, concurrently: bool = False) -> sql.Composed:
    """A search walking a few seconds of all containers finds them through this BRIN (rows
    arrive in about ts order) instead of one btree descent per container and leaf (~1 ms per
    leaf for 200 containers); 32 pages a range keeps a window's recheck to a few thousand rows."""
    return sql.SQL(
        "CREATE INDEX {} IF NOT EXISTS {} ON {} USING brin (ts) WITH (pages_per_range = 32)"
    ).format(
        sql.SQL("CONCURRENTLY" if concurrently else ""),
        sql.Identifier(table + "_ts_brin"),
        sql.Identifier(table),
    )


def relation_state(cur, name: str) -> str | None:
    """None (no such table), "standalone", "attached" or "detaching" (a DETACH ... CONCURRENTLY
    that was interrupted)."""
    cur.execute(
        "SELECT c.relispartition, i.inhdetachpending FROM pg_class c "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'logs'::regclass "
        "WHERE c.oid = to_regclass(%s)",
        (name,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    if not row[0]:
        return "standalone"
    return "detaching" if row[1] else "attached"


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


def day_of(name: str) -> date | None:
    """The day of a `logs_pYYYYMMDD` name, None for any other name."""
    if len(name) != len("logs_p20240101") or not name.startswith("logs_p") or not name[6:].isdigit():
        return None
    try:
        return date(int(name[6:10]), int(name[10:12]), int(name[12:14]))
    except ValueError:
        return None


def day_tables(cur) -> dict[date, tuple[str, str]]:
    """Every day table that exists, attached or not: day -> (name, state)."""
    cur.execute(
        "SELECT c.relname, c.relispartition, i.inhdetachpending FROM pg_class c "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'logs'::regclass "
        "WHERE c.relkind = 'p' AND c.relnamespace = current_schema()::regnamespace AND c.relname LIKE %s",
        ("logs_p%",),
    )
    days = {}
    for relname, is_partition, detaching in cur.fetchall():
        day = day_of(relname)
        if day is not None:
            days[day] = (
                relname,
                "standalone" if not is_partition else "detaching" if detaching else "attached",
            )
    return days


def leaf_names(cur, table: str) -> list[str]:
    cur.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
        (table,),
    )
    return [row[0] for row in cur.fetchall()]


def drop_day(cur, day: date) -> None:
    """Plain DROP: holds ACCESS EXCLUSIVE on `logs` meanwhile, so only for tests and offline
    use; retention detaches first (ingest/store/day_drop.py)."""
    name = partition_name(day)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    cur.execute("DELETE FROM log_partitions WHERE name = %s", (name,))
