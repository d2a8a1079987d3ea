"""Asking the store which records of a re-sent batch it already holds.

systemd-journal-upload re-sends a whole batch when it did not get a 2xx, so entries may arrive
twice. Each journal record carries attrs["dedup_key"] (boot id + cursor). The question goes to
`logs` itself, scoped to the records' containers and time range so it walks the (ckey, ts, id)
btree: a row is there exactly when it was committed, so no second table can drift from it.

Limits (at-least-once remains possible): a record still in the spool (Postgres was down when
it was acknowledged) is not seen until replayed, and a record whose own time was implausible
is stored at its receive time, outside the range asked for.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import psycopg

from ingest.normalize import _container_meta
from ingest.record import Record

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_QUERY = (
    "SELECT l.attrs->>%(attr)s FROM logs l JOIN containers c ON c.id = l.ckey "
    "WHERE c.tenant = %(tenant)s AND c.container_id = ANY(%(cids)s) "
    "AND l.ts BETWEEN %(ts_min)s AND %(ts_max)s AND l.attrs->>%(attr)s = ANY(%(keys)s)"
)


def _ts(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


class StoredKeys:
    def __init__(self, conninfo: str, attr: str = "dedup_key"):
        self.conninfo = conninfo
        self.attr = attr
        self._conn: psycopg.AsyncConnection | None = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def new_only(self, records: list[Record]) -> list[Record]:
        """The records whose key is not stored yet. Raises psycopg.Error if Postgres cannot say."""
        groups: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            if record.attrs and record.attrs.get(self.attr) and record.ts_ns is not None:
                groups[record.tenant].append(record)
        if not groups:
            return records
        stored: set[str] = set()
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            for tenant, keyed in groups.items():
                params = {
                    "attr": self.attr,
                    "tenant": tenant,
                    # The same container key the writer derives, so the lookup hits its rows.
                    "cids": sorted({_container_meta(r).container_id for r in keyed}),
                    "ts_min": _ts(min(r.ts_ns for r in keyed)),
                    "ts_max": _ts(max(r.ts_ns for r in keyed)),
                    "keys": [r.attrs[self.attr] for r in keyed],
                }
                async with self._conn.cursor() as cur:
                    await cur.execute(_QUERY, params)
                    stored.update(row[0] for row in await cur.fetchall())
        except psycopg.Error:
            await self.close()
            raise
        if not stored:
            return records
        return [r for r in records if not (r.attrs and r.attrs.get(self.attr) in stored)]
