"""The tail's reads from the store. Synchronous: the consumer calls these through
database_sync_to_async. Every read is scoped to the caller's tenants again, whatever keys a
client (or a bug) passes in."""

import json
from datetime import datetime

from django.db import connection
from psycopg import sql as pgsql

from accounts.access import visible_tenants
from ingest.store.schema import ID_BLOCK
from search.querylang.nodes import And, Node, TimeBound
from search.querylang.sql import MAX_LIMIT, build_search_sql, container_sql
from search.tail.rows import from_store

SWEEP_LIMIT = 20_000
_CONTAINER_COLUMNS = "id, tenant, service, container_id, name, image, host, labels"
_ROW_COLUMNS = "l.ckey, l.id, l.ts, l.ts_ns, l.stream, l.level, l.flags, l.line, l.attrs"
_SCOPED_KEYS = (
    "l.ckey = ANY(%(ckeys)s::bigint[]) AND l.ckey = ANY(ARRAY(SELECT c.id FROM containers c"
    " WHERE c.id = ANY(%(ckeys)s::bigint[]) AND c.tenant = ANY(%(tenants)s::text[])))"
)


def tenants_of(user) -> list[str]:
    return visible_tenants(user)


def _container_dict(row) -> dict:
    ckey, tenant, service, container_id, name, image, host, labels = row
    if isinstance(labels, str):
        labels = json.loads(labels)
    return {
        "ckey": ckey,
        "tenant": tenant,
        "service": service,
        "container_id": container_id,
        "name": name,
        "image": image,
        "host": host,
        "labels": labels or {},
    }


def matching_containers(node: Node, tenants: list[str]) -> dict[int, dict]:
    """The caller's containers that can hold lines matching `node`, by key."""
    if not tenants:
        return {}
    query, params = container_sql(node, tenants)
    with connection.cursor() as cur:
        cur.execute(
            pgsql.SQL("SELECT {} FROM containers WHERE id IN ({})").format(
                pgsql.SQL(_CONTAINER_COLUMNS), query
            ),
            params,
        )
        return {row[0]: _container_dict(row) for row in cur.fetchall()}


def container(ckey: int, tenants: list[str]) -> dict | None:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {_CONTAINER_COLUMNS} FROM containers WHERE id = %s AND tenant = ANY(%s::text[])",
            [ckey, tenants],
        )
        row = cur.fetchone()
    return _container_dict(row) if row else None


def id_snapshot() -> int:
    """The first id of the newest reserved block: every row committed so far is below it or in
    that block."""
    with connection.cursor() as cur:
        cur.execute("SELECT last_value, is_called FROM logs_id_seq")
        last_value, is_called = cur.fetchone()
    return last_value if is_called else 0


def floors_now(ckeys: list[int], snapshot: int) -> dict[int, int]:
    """Per container, the newest id committed so far: where "new" starts for a fresh tail.

    Only the newest block (ids >= snapshot) can hold rows above snapshot - 1, so the BRIN(id)
    index keeps this cheap however long the history is."""
    floors = dict.fromkeys(ckeys, snapshot - 1)
    if not ckeys:
        return floors
    with connection.cursor() as cur:
        cur.execute(
            "SELECT ckey, max(id) FROM logs WHERE ckey = ANY(%s::bigint[]) AND id >= %s GROUP BY ckey",
            [ckeys, snapshot],
        )
        for ckey, top in cur.fetchall():
            floors[ckey] = max(floors[ckey], top)
    return floors


def _search(node, tenants, ckeys, limit, before=None, newest_first=True, now=None) -> list[list]:
    if not ckeys:
        return []
    query, params = build_search_sql(
        node, tenants, ckeys, min(limit, MAX_LIMIT), before=before, newest_first=newest_first, now=now
    )
    with connection.cursor() as cur:
        cur.execute(query, params)
        return [from_store(*row) for row in cur.fetchall()]


def recent(node, tenants, ckeys, count: int, now: datetime) -> list[list]:
    """The newest `count` matching lines, oldest first."""
    return list(reversed(_search(node, tenants, ckeys, count, now=now)))


def since(node, tenants, ckeys, start: datetime, limit: int, now: datetime) -> list[list]:
    """Matching lines from `start` on, oldest first, at most `limit`."""
    bounded = And((node, TimeBound("since", start)))
    return _search(bounded, tenants, ckeys, limit, newest_first=False, now=now)


def earlier(node, tenants, ckeys, before: tuple[datetime, int], limit: int, now: datetime) -> list[list]:
    """One page of matching lines strictly before (ts, id), newest first."""
    return _search(node, tenants, ckeys, limit, before=before, newest_first=True, now=now)


def block_counts(floors: dict[int, int], tenants: list[str], below: int) -> list[tuple[int, int, int]]:
    """(ckey, block, lines) of stored lines above each container's floor and below `below`. A
    block is the ID_BLOCK ids one writer batch reserves, so this is a count per container per
    batch."""
    if not floors:
        return []
    ckeys = list(floors)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT l.ckey, (l.id - 1) / {ID_BLOCK} AS block, count(*) FROM logs l"
            " JOIN unnest(%(ckeys)s::bigint[], %(floors)s::bigint[]) AS w(ckey, floor)"
            " ON l.ckey = w.ckey AND l.id > w.floor"
            # The lowest floor bound lets the BRIN(id) index skip old blocks.
            f" WHERE l.id > %(low)s AND l.id < %(below)s AND {_SCOPED_KEYS} GROUP BY 1, 2",
            {
                "ckeys": ckeys,
                "floors": [floors[k] for k in ckeys],
                "low": min(floors.values()),
                "below": below,
                "tenants": tenants,
            },
        )
        return cur.fetchall()


def ids_in_blocks(
    wanted: list[tuple[int, int]], floors: dict[int, int], tenants: list[str]
) -> list[tuple[int, int]]:
    """(ckey, id) of stored lines above the floor in the given (ckey, block)s, in id order, at
    most SWEEP_LIMIT."""
    if not wanted:
        return []
    ckeys = [ckey for ckey, _block in wanted]
    blocks = [block for _ckey, block in wanted]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT l.ckey, l.id FROM logs l"
            " JOIN unnest(%(ckeys)s::bigint[], %(blocks)s::bigint[], %(floors)s::bigint[])"
            " AS w(ckey, block, floor)"
            f" ON l.ckey = w.ckey AND l.id > w.floor AND l.id > w.block * {ID_BLOCK}"
            f" AND l.id <= (w.block + 1) * {ID_BLOCK}"
            f" WHERE l.id > %(low)s AND l.id <= %(high)s AND {_SCOPED_KEYS} ORDER BY l.id LIMIT %(limit)s",
            {
                "ckeys": ckeys,
                "blocks": blocks,
                "floors": [floors[k] for k in ckeys],
                "low": min(blocks) * ID_BLOCK,
                "high": (max(blocks) + 1) * ID_BLOCK,
                "tenants": tenants,
                "limit": SWEEP_LIMIT,
            },
        )
        return cur.fetchall()


def rows_by_id(ckeys: list[int], ids: list[int], tenants: list[str]) -> list[list]:
    if not ids:
        return []
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {_ROW_COLUMNS} FROM logs l WHERE l.id = ANY(%(ids)s::bigint[])"
            f" AND l.id >= %(low)s AND l.id <= %(high)s AND {_SCOPED_KEYS} ORDER BY l.id",
            {"ids": ids, "low": min(ids), "high": max(ids), "ckeys": ckeys, "tenants": tenants},
        )
        return [from_store(*row) for row in cur.fetchall()]
