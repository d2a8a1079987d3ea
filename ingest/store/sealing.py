"""Sealing a day once it left the hot window: trigram index, frozen and analysed.

A pg_trgm GIN index makes inserts ~14x slower, so the day being written has none; once a day
only receives the odd late line it gets one per hash leaf, which is what makes ILIKE and
regex search on it fast. CREATE INDEX CONCURRENTLY takes only SHARE UPDATE EXCLUSIVE on the
leaf, so late lines for the day (and the writer's whole batch with them) never wait for the
build. VACUUM (FREEZE, ANALYZE) sets the visibility map (index-only counts) and freezes the
rows now, while they are in cache, instead of in a later anti-wraparound pass over old data.
Histograms then read the day from a 5-minute rollup (ingest/store/bucket_counts.py).
The index keeps GIN's fastupdate (the default): a late line with many distinct trigrams costs
~10x more when inserted straight into the index, while the pending list it waits in costs a
search of the day little (measured: docs/decisions/0002-retention.md).
The hot day's partial block indexes (hot_index.py) are dropped once the full index is valid.
Each step is idempotent; an interrupted concurrent build leaves an invalid index that the
next run drops and builds again.
"""

import time
from datetime import date, timedelta

from psycopg import sql

from ingest.store import bucket_counts, day_counts, hot_index, trgm_index
from ingest.store.partitions import leaf_names, partition_name, relation_state, ts_brin_sql


def trgm_index_name(leaf: str) -> str:
    return f"{leaf}_line_trgm"


def days_due(cur, today: date, hot_days: int) -> list[date]:
    """Unsealed days wholly older than the hot window: `hot_days` days before today stay hot."""
    cur.execute(
        "SELECT day FROM log_partitions WHERE sealed_at IS NULL AND day < %s ORDER BY day",
        (today - timedelta(days=hot_days),),
    )
    return [row[0] for row in cur.fetchall()]


def seal_day(conn, day: date, maintenance_work_mem: str | None = None) -> dict | None:
    """Seals `day`; `conn` must be in autocommit. Returns what was done, None if no such day."""
    name = partition_name(day)
    with conn.cursor() as cur:
        if relation_state(cur, name) != "attached":
            return None
        if maintenance_work_mem:
            cur.execute("SELECT set_config('maintenance_work_mem', %s, false)", (maintenance_work_mem,))
        built, dropped, index_s, vacuum_s = 0, 0, 0.0, 0.0
        for leaf in leaf_names(cur, name):
            started = time.monotonic()
            built += _ensure_trgm_index(cur, leaf)
            # The full index answers every window now; the hot blocks' would only cost inserts.
            dropped += hot_index.drop_leaf_blocks(cur, leaf)
            # Days created before the ts BRIN existed get it here.
            cur.execute(ts_brin_sql(leaf, concurrently=True))
            index_s += time.monotonic() - started
            started = time.monotonic()
            cur.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(sql.Identifier(leaf)))
            vacuum_s += time.monotonic() - started
        # Partitioned tables get no autovacuum ANALYZE; the day's own statistics help plans
        # that read the whole day.
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
        rows = day_counts.store_counts(cur, day, name)
        bucket_counts.store_buckets(conn, day, name)
        cur.execute("UPDATE log_partitions SET sealed_at = now() WHERE name = %s", (name,))
    return {
        "day": day.isoformat(),
        "indexes_built": built,
        "blocks_dropped": dropped,
        "rows": rows,
        "index_s": round(index_s, 1),
        "vacuum_s": round(vacuum_s, 1),
    }


def _ensure_trgm_index(cur, leaf: str) -> bool:
    index = trgm_index_name(leaf)
    cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (index,))
    row = cur.fetchone()
    return trgm_index.ensure(cur, index, leaf, None if row is None else row[0])
