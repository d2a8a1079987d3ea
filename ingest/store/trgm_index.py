"""Building a trigram GIN index on a leaf of `logs`: a sealed day's whole leaf, or a hot block
of it (a partial index). Always CONCURRENTLY, so writers never wait; an invalid index left by an
interrupted build is dropped and built again."""

from psycopg import sql

CREATE = "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} USING gin (line gin_trgm_ops)"


def ensure(cur, name: str, leaf: str, valid: bool | None, where: sql.Composable | None = None) -> bool:
    """`valid`: the index's pg_index.indisvalid, None when it does not exist. True when built."""
    if valid:
        return False
    if valid is not None:
        drop(cur, name)
    create = sql.SQL(CREATE).format(sql.Identifier(name), sql.Identifier(leaf))
    cur.execute(create if where is None else sql.SQL("{} WHERE {}").format(create, where))
    return True


def drop(cur, name: str) -> None:
    cur.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
