"""Streaming export of a whole result (NDJSON or CSV) with bounded memory.

The rows come from a server-side cursor on its own async connection and leave as they are
fetched, so exporting millions of lines holds one fetch of rows in memory, never the result.
"""

import csv
import io
import json
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from ingest.store.schema import STREAM_NAMES
from ingest.store.writer import conninfo_from_settings
from search.querylang import Node
from search.querylang.sql import build_where, new_params

FETCH_ROWS = 2000
CSV_COLUMNS = [
    "ts",
    "tenant",
    "service",
    "container_id",
    "container_name",
    "image",
    "stream",
    "level",
    "line",
]
# Spreadsheets run cells that start with these as formulas; log lines are untrusted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_sql(node: Node, tenants: list[str], ckeys: list[int], now: datetime):
    p = new_params()
    where = build_where(node, tenants, ckeys, p, now=now)
    stmt = sql.SQL(
        "SELECT l.id, l.ts, l.stream, l.level, l.line, l.attrs, "
        "c.tenant, c.service, c.container_id, c.name, c.image "
        "FROM logs l JOIN containers c ON c.id = l.ckey WHERE {} ORDER BY l.ts, l.id"
    ).format(where)
    return stmt, p.values


def _record(row) -> dict:
    row_id, ts, stream, level, line, attrs, tenant, service, cid, name, image = row
    return {
        "id": row_id,
        "ts": ts.astimezone(UTC).isoformat(),
        "tenant": tenant,
        "service": service,
        "container_id": cid,
        "container_name": name,
        "image": image,
        "stream": STREAM_NAMES.get(stream, "unknown"),
        "level": level,
        "line": line,
        "attrs": attrs,
    }


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


async def stream_rows(
    node: Node, tenants: list[str], ckeys: list[int], fmt: str, now: datetime | None = None
):
    stmt, params = export_sql(node, tenants, ckeys, now or datetime.now(UTC))
    if fmt == "csv":
        yield ",".join(CSV_COLUMNS) + "\r\n"
    conn = await psycopg.AsyncConnection.connect(conninfo_from_settings())
    async with conn, conn.transaction(), conn.cursor(name="logsite_export") as cur:
        await cur.execute(stmt, params)
        while rows := await cur.fetchmany(FETCH_ROWS):
            if fmt == "csv":
                buf = io.StringIO()
                writer = csv.writer(buf)
                for row in rows:
                    rec = _record(row)
                    writer.writerow([_csv_cell(rec[c]) for c in CSV_COLUMNS])
                yield buf.getvalue()
            else:
                yield "".join(json.dumps(_record(r), ensure_ascii=False) + "\n" for r in rows)
