"""Deleting some containers' rows from one day, for days that mix retention policies.

Chosen over rewriting the day (docs/decisions/0002-retention.md): it takes no lock beyond the
deleted rows, so the writer (late lines) and searches go on, and it runs in chunks that each
commit, so a long delete holds nothing for long and an interrupted one simply continues at
the next run. The space is reused by the day's late lines and returned for good when the
whole day is dropped — a mixed day only exists until the longest policy present expires.
"""

from psycopg import sql

from ingest.store.partitions import leaf_names

CHUNK_ROWS = 10_000

# ctid = ANY(ARRAY(...)) turns each chunk into a TID scan of rows found through the
# (ckey, ts, id) btree; the leaf (not the day) is named so the ctids are unambiguous.
_DELETE_CHUNK = (
    "DELETE FROM {leaf} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {leaf} WHERE ckey = ANY(%s) LIMIT %s))"
)


def delete_rows(conn, day_table: str, ckeys: list[int], chunk_rows: int = CHUNK_ROWS) -> int:
    """Deletes every row of `ckeys` from `day_table`; `conn` must be in autocommit."""
    deleted = 0
    with conn.cursor() as cur:
        for leaf in leaf_names(cur, day_table):
            query = sql.SQL(_DELETE_CHUNK).format(leaf=sql.Identifier(leaf))
            from_leaf = 0
            while True:
                cur.execute(query, (ckeys, chunk_rows))
                from_leaf += cur.rowcount
                if cur.rowcount < chunk_rows:
                    break
            if from_leaf:
                # Makes the freed space reusable and keeps the visibility map (index-only
                # counts) right; VACUUM takes no lock that inserts or reads wait for.
                cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(leaf)))
            deleted += from_leaf
    return deleted
