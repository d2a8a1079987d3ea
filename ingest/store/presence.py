"""Which containers have rows in a day, and how many — without reading the day.

`present_ckeys` walks the (ckey, ts, id) btree of each hash leaf from one distinct key to the
next (a "skip scan" spelled as a recursive CTE), so its cost grows with the number of
containers in the day, not with its rows. Retention decides from it at the moment it acts.
"""

from psycopg import sql

from ingest.store.partitions import leaf_names

_SKIP_SCAN = """
WITH RECURSIVE k(ckey) AS (
    (SELECT ckey FROM {leaf} ORDER BY ckey LIMIT 1)
    UNION ALL
    SELECT (SELECT l.ckey FROM {leaf} l WHERE l.ckey > k.ckey ORDER BY l.ckey LIMIT 1)
    FROM k WHERE k.ckey IS NOT NULL
)
SELECT ckey FROM k WHERE ckey IS NOT NULL
"""


def present_ckeys(cur, day_table: str) -> set[int]:
    """Container keys with at least one row in `day_table` (attached or detached)."""
    keys: set[int] = set()
    for leaf in leaf_names(cur, day_table):
        cur.execute(sql.SQL(_SKIP_SCAN).format(leaf=sql.Identifier(leaf)))
        keys.update(row[0] for row in cur.fetchall())
    return keys


def count_rows(cur, day_table: str, ckeys: list[int] | None = None) -> dict[int, int]:
    """Exact rows per container (an index-only scan once the day is sealed and frozen)."""
    query = sql.SQL("SELECT ckey, count(*) FROM {} {} GROUP BY ckey").format(
        sql.Identifier(day_table),
        sql.SQL("WHERE ckey = ANY(%s)") if ckeys is not None else sql.SQL(""),
    )
    cur.execute(query, (ckeys,) if ckeys is not None else None)
    return dict(cur.fetchall())
