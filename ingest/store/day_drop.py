"""Dropping a whole day of `logs` without stalling the writer.

`DROP TABLE` on an attached partition takes ACCESS EXCLUSIVE on `logs` itself: it waits for
the longest running search, and the writer's next COPY queues behind it. Instead the day is
detached CONCURRENTLY (SHARE UPDATE EXCLUSIVE on `logs`, which neither inserts nor reads
conflict with) and dropped once it is a table of its own.

Races with late lines, in order:
- the `log_partitions` row goes first, so a writer that meets the vanished day (its insert
  fails, see BatchWriter) re-creates it through `partitions.ensure_day`, which needs the
  advisory lock held here until the old table is gone. The writer waits for it at most
  100 ms, then spools the batch (acknowledged, durable) and replays it once the day is gone;
- once detached nothing can be written into the day, and the containers present are
  checked again: if a line of a container that keeps this day arrived since the decision,
  the day is attached again instead of dropped.

Every step can be interrupted and is finished by the next run: an interrupted detach is
FINALIZEd, a detached leftover is checked and dropped (or attached again).
"""

from collections.abc import Callable
from datetime import date, timedelta

from psycopg import sql

from ingest.store import bucket_counts, day_counts
from ingest.store.partitions import partition_name, relation_state
from ingest.store.presence import present_ckeys


def drop_day_if(conn, day: date, removable: Callable[[set[int]], bool]) -> str:
    """Drops `day` if `removable(containers present)` holds; `conn` must be in autocommit.

    Returns "dropped", "kept" (not removable, the day stays attached) or "absent".
    """
    name = partition_name(day)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        try:
            state = relation_state(cur, name)
            if state is None:
                cur.execute("DELETE FROM log_partitions WHERE name = %s", (name,))
                day_counts.forget_day(cur, day)
                bucket_counts.forget_day(cur, day)
                return "absent"
            cur.execute("SELECT sealed_at FROM log_partitions WHERE name = %s", (name,))
            row = cur.fetchone()
            sealed_at = row[0] if row else None
            if state == "attached":
                if not removable(present_ckeys(cur, name)):
                    return "kept"
                cur.execute("DELETE FROM log_partitions WHERE name = %s", (name,))
                cur.execute(
                    sql.SQL("ALTER TABLE logs DETACH PARTITION {} CONCURRENTLY").format(sql.Identifier(name))
                )
            elif state == "detaching":
                cur.execute("DELETE FROM log_partitions WHERE name = %s", (name,))
                cur.execute(
                    sql.SQL("ALTER TABLE logs DETACH PARTITION {} FINALIZE").format(sql.Identifier(name))
                )
            # A table of its own now: nothing writes into it any more, so this check is final.
            if not removable(present_ckeys(cur, name)):
                _attach_again(cur, day, name, sealed_at)
                return "kept"
            cur.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(name)))
            day_counts.forget_day(cur, day)
            bucket_counts.forget_day(cur, day)
            return "dropped"
        finally:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))


def _attach_again(cur, day: date, name: str, sealed_at) -> None:
    start = day.isoformat() + " 00:00:00+00"
    end = (day + timedelta(days=1)).isoformat() + " 00:00:00+00"
    # Validates the range by reading the day once; happens only when a kept container's late
    # line raced the decision.
    cur.execute(
        sql.SQL("ALTER TABLE logs ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name), sql.Literal(start), sql.Literal(end)
        )
    )
    cur.execute(
        "INSERT INTO log_partitions (name, day, sealed_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET sealed_at = EXCLUDED.sealed_at",
        (name, day, sealed_at),
    )
