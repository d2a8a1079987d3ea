"""`GET /api/v1/containers/<container>/logs`: one container's lines as NDJSON.

This is what Logsite's Docker plugin calls to answer `docker logs` (ReadLogs), so logs stay
readable after the container and the host's files are gone. It accepts a user's API token or
session, or the plugin's own driver token — which can only read containers that came in
through that driver.

Parameters: since / until (RFC 3339), tail (N newest; -1 or absent = all), after_id (only
lines committed after that id: how `docker logs -f` polls). Each output line is
`{"id", "ts" (RFC 3339, ns), "stream", "line"}`, oldest first.
"""

import json
from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from accounts.access import visible_tenants
from ingest.models import Container, Driver, hash_token
from ingest.store.schema import STREAM_NAMES
from ingest.timeparse import ns_to_rfc3339, rfc3339_to_ns

CHUNK_ROWS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TAIL = 1_000_000


def _driver_for_token(request) -> Driver | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith("lgs_"):
        return None
    return Driver.objects.filter(token_hash=hash_token(token), enabled=True).first()


def _containers(request, container: str) -> list[int] | HttpResponse:
    driver = _driver_for_token(request)
    if driver is not None:
        scope = Container.objects.filter(driver=driver)
    elif request.user.is_authenticated:
        scope = Container.objects.filter(tenant__in=visible_tenants(request.user))
    else:
        return JsonResponse({"error": "authentication required"}, status=401)
    # Docker passes the full 64-hex id; zmq-logger stores 12; names work for people.
    matches = scope.filter(container_id=container) | scope.filter(name=container.lstrip("/"))
    if len(container) >= 12:
        matches = matches | scope.filter(container_id=container[:12])
    return list(matches.values_list("id", flat=True))


def _parse_params(request) -> dict | HttpResponse:
    params = {}
    try:
        for key in ("since", "until"):
            value = request.GET.get(key)
            if value and not value.startswith("0001-01-01"):
                params[key] = rfc3339_to_ns(value)
        tail = int(request.GET.get("tail", "-1"))
        after_id = request.GET.get("after_id")
        params["after_id"] = int(after_id) if after_id else None
    except ValueError as e:
        return JsonResponse({"error": f"bad parameter: {e}"}, status=400)
    params["tail"] = min(tail, MAX_TAIL) if tail >= 0 else None
    return params


@login_not_required  # driver tokens authenticate here; the view itself refuses anonymous calls
def container_logs(request, container: str):
    ckeys = _containers(request, container)
    if isinstance(ckeys, HttpResponse):
        return ckeys
    params = _parse_params(request)
    if isinstance(params, HttpResponse):
        return params
    if not ckeys:
        return JsonResponse({"error": f"no container {container!r} visible to you"}, status=404)
    return StreamingHttpResponse(_stream(ckeys, **params), content_type="application/x-ndjson")


def _split_ns(ns: int) -> tuple[datetime, int]:
    """Unix ns -> (the microsecond `ts` column value, the `ts_ns` remainder), both exact.

    to_timestamp() goes through a double and rounds to the microsecond, so a line asked for
    by its own timestamp (as `docker logs --since` does) could fall outside the bound.
    """
    micros, rest = divmod(ns, 1000)
    return _EPOCH + timedelta(microseconds=micros), rest


def _where(ckeys, since, until, after_id) -> tuple[str, list]:
    clauses, args = ["ckey = ANY(%s)"], [ckeys]
    # The first comparison alone is an index range; the second settles the boundary microsecond.
    if since is not None:
        ts, rest = _split_ns(since)
        clauses.append("ts >= %s AND (ts > %s OR ts_ns >= %s)")
        args += [ts, ts, rest]
    if until is not None:
        ts, rest = _split_ns(until)
        clauses.append("ts <= %s AND (ts < %s OR ts_ns <= %s)")
        args += [ts, ts, rest]
    if after_id is not None:
        clauses.append("id > %s")
        args.append(after_id)
    return " AND ".join(clauses), args


def _stream(ckeys, since=None, until=None, tail=None, after_id=None):
    where, args = _where(ckeys, since, until, after_id)
    columns = "id, (extract(epoch from ts) * 1000000)::bigint * 1000 + ts_ns, stream, line"
    if tail is not None:
        sql = f"SELECT * FROM (SELECT {columns} FROM logs WHERE {where} ORDER BY ts DESC, id DESC LIMIT %s) t"
        sql += " ORDER BY 2, 1"
        args = [*args, tail]
    elif after_id is not None:
        # Following: commit order, so a line committed late with an older ts is not skipped.
        sql = f"SELECT {columns} FROM logs WHERE {where} ORDER BY id"
    else:
        sql = f"SELECT {columns} FROM logs WHERE {where} ORDER BY ts, id"
    with connection.cursor() as cur:
        cur.execute(sql, args)
        while rows := cur.fetchmany(CHUNK_ROWS):
            yield "".join(
                json.dumps(
                    {"id": i, "ts": ns_to_rfc3339(ts), "stream": STREAM_NAMES.get(s, "stdout"), "line": line}
                )
                + "\n"
                for i, ts, s, line in rows
            )
