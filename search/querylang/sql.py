"""AST → parameterised SQL for Postgres. Values only ever travel as placeholders.

A search runs in two steps, because `logs` is partitioned by container key:

1. `container_sql(node, tenants)` asks the small `containers` table for the keys of the
   caller's containers that the query can match at all (label, name, image, tenant, service,
   host filters).
2. `build_search_sql(node, tenants, ckeys, ...)` reads `logs` for exactly those keys, so the
   planner prunes the other hash partitions, with the line-level filters (text, regex,
   stream, level, json, time) and keyset pagination on (ts, id).

`ckeys` must come from step 1 for the same query (a subset is fine): the top-level container
filters are not repeated in step 2. Container filters nested under OR or a negated group
(`container:a OR "x"`) are checked in step 2 by a subquery on `containers`.

Every predicate here is two-valued (never NULL), so NOT means the same as in matcher.py.
"""

import json
from datetime import UTC, datetime

from psycopg import sql

from .nodes import (
    And,
    ContainerIs,
    JsonCmp,
    LabelIs,
    LevelIs,
    MetaIs,
    Node,
    Not,
    Or,
    Regex,
    StreamIs,
    Text,
    TimeBound,
    is_container_level,
)
from .regex import translate
from .textmatch import glob_to_like, like_escape
from .values import format_json_number, resolve_time

MAX_LIMIT = 10_000
# A constant list of more container keys than this almost surely names every hash leaf (8 by
# default), so it prunes nothing, while planning it costs ~0.1 ms a leaf (200 keys: a third of
# a rare term's planning); the tenant-checked key array filters the rows just the same.
PRUNE_KEYS_MAX = 64
LOG_COLUMNS = ("ckey", "id", "ts", "ts_ns", "stream", "level", "flags", "line", "attrs")
_STREAM_CODES = {"stdout": 1, "stderr": 2}
# "Higher" levels are more important, which is a *lower* syslog number.
_LEVEL_SQL_OP = {"=": "=", ">=": "<=", ">": "<", "<=": ">=", "<": ">"}
_NUMBER_SQL_OP = {">": ">", ">=": ">=", "<": "<", "<=": "<="}

Params = dict[str, object]
_LOWERS_TO_ASCII = str.maketrans({"i": "_", "I": "_", "k": "_", "K": "_"})


class _Params:
    """Hands out named placeholders and keeps their values, so fragments compose in any order."""

    def __init__(self) -> None:
        self.values: Params = {}

    def __call__(self, value: object) -> sql.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.Placeholder(name)


def container_sql(node: Node, tenants: list[str]) -> tuple[sql.Composed, Params]:
    """SELECT the keys of the caller's containers that can hold matching lines."""
    p = _Params()
    where: list[sql.Composable] = [sql.SQL("c.tenant = ANY({}::text[])").format(p(list(tenants)))]
    if _constrains_containers(node):
        where.append(_container_filter(node, p))
    query = sql.SQL("SELECT c.id FROM containers c WHERE {} ORDER BY c.id").format(
        sql.SQL(" AND ").join(where)
    )
    return query, p.values


def build_search_sql(
    node: Node,
    tenants: list[str],
    ckeys: list[int],
    limit: int,
    before: tuple[datetime, int] | None = None,
    newest_first: bool = True,
    now: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
    indexed: bool = False,
) -> tuple[sql.Composed, Params]:
    """One page of matching lines, newest first (or oldest first).

    `before` is the (ts, id) of the last row of the previous page; the page holds the rows
    strictly past it in the chosen order. `now` anchors since:2h and must be the value given
    to compile_matcher when the two are compared. `window` [start, end) restricts the page to
    one slice of time (one day's partition) so a caller can walk partitions newest first.
    `indexed` says a trigram index covers the whole window, which makes the ASCII prefilter of
    words (see _line_filter) planning cost only."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    p = _Params()
    where = build_where(
        node,
        tenants,
        ckeys,
        p,
        now=now,
        window=window,
        # Unindexed windows keep it: without it the planner misjudges how many rows the key
        # array leaves and reads the window through the (ckey, ts, id) btree, one descent per
        # container and leaf, instead of the ts BRIN.
        key_list=len(ckeys) <= PRUNE_KEYS_MAX or not indexed,
        prefilter=not indexed,
    )
    if before is not None:
        ts_ph, id_ph = p(before[0]), p(int(before[1]))
        # The plain ts bound is redundant with the row comparison but lets the planner prune days.
        if newest_first:
            past = "l.ts <= {} AND (l.ts, l.id) < ({}, {})"
        else:
            past = "l.ts >= {} AND (l.ts, l.id) > ({}, {})"
        where = sql.SQL("{} AND " + past).format(where, ts_ph, ts_ph, id_ph)
    direction = sql.SQL("DESC" if newest_first else "ASC")
    query = sql.SQL("SELECT {} FROM logs l WHERE {} ORDER BY l.ts {}, l.id {} LIMIT {}").format(
        sql.SQL(", ").join(sql.Identifier("l", c) for c in LOG_COLUMNS),
        where,
        direction,
        direction,
        p(limit),
    )
    return query, p.values


def build_where(
    node: Node,
    tenants: list[str],
    ckeys: list[int],
    p: "_Params | None" = None,
    now: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
    key_list: bool = True,
    prefilter: bool = True,
) -> sql.Composed:
    """The WHERE clause (over `logs l`) shared by pages, counts, histograms and exports.
    Without `key_list` the keys are checked only through the tenant-checked array."""
    now = now or datetime.now(UTC)
    p = p if p is not None else _Params()
    tenant_ph = p(list(tenants))
    ckeys_ph = p([int(k) for k in ckeys])
    where: list[sql.Composable] = [
        # This keeps other tenants out even if a caller passes someone else's keys...
        sql.SQL(
            "l.ckey = ANY(ARRAY(SELECT c.id FROM containers c"
            " WHERE c.id = ANY({}::bigint[]) AND c.tenant = ANY({}::text[])))"
        ).format(ckeys_ph, tenant_ph),
    ]
    if key_list:
        # ...and a constant list lets the planner prune hash partitions.
        where.insert(0, sql.SQL("l.ckey = ANY({}::bigint[])").format(ckeys_ph))
    terms = node.terms if isinstance(node, And) else (node,)
    where += [_line_filter(t, p, tenant_ph, now, prefilter) for t in terms if not is_container_level(t)]
    if window is not None:
        where.append(sql.SQL("l.ts >= {} AND l.ts < {}").format(p(window[0]), p(window[1])))
    return sql.SQL(" AND ").join(where)


def new_params() -> "_Params":
    return _Params()


# --- containers ---------------------------------------------------------------------------------


def _constrains_containers(node: Node) -> bool:
    if is_container_level(node):
        return True
    if isinstance(node, And):
        return any(_constrains_containers(t) for t in node.terms)
    if isinstance(node, Or):
        return all(_constrains_containers(t) for t in node.terms)
    return False


def _container_filter(node: Node, p: _Params) -> sql.Composable:
    """What `node` requires of a container: exact for container-only parts; for mixed parts a
    looser condition (line filters count as true), which step 2 then narrows."""
    if isinstance(node, And):
        parts = [_container_filter(t, p) for t in node.terms if _constrains_containers(t)]
        return _join(parts, "AND")
    if isinstance(node, Or):
        return _join([_container_filter(t, p) for t in node.terms], "OR")
    if isinstance(node, Not):
        return sql.SQL("NOT ({})").format(_container_filter(node.term, p))
    return _container_atom(node, p)


def _container_atom(node: Node, p: _Params) -> sql.Composable:
    if isinstance(node, ContainerIs):
        if "*" in node.value:
            glob = p(glob_to_like(node.value))
            return sql.SQL("(c.name LIKE {} OR c.container_id LIKE {})").format(glob, glob)
        return sql.SQL("(c.name = {} OR c.container_id LIKE {})").format(
            p(node.value), p(like_escape(node.value) + "%")
        )
    if isinstance(node, LabelIs):
        if node.value is None:
            return sql.SQL("c.labels ? {}").format(p(node.key))
        return sql.SQL("COALESCE((c.labels ->> {}) LIKE {}, false)").format(
            p(node.key), p(glob_to_like(node.value))
        )
    if isinstance(node, MetaIs):
        column = sql.Identifier("c", node.field)
        if "*" in node.value:
            return sql.SQL("{} LIKE {}").format(column, p(glob_to_like(node.value)))
        return sql.SQL("{} = {}").format(column, p(node.value))
    raise TypeError(f"not a container filter: {node!r}")


# --- lines --------------------------------------------------------------------------------------


def _line_filter(
    node: Node, p: _Params, tenant_ph: sql.Placeholder, now: datetime, prefilter: bool = True
) -> sql.Composable:
    if isinstance(node, And):
        return _join([_line_filter(t, p, tenant_ph, now, prefilter) for t in node.terms], "AND")
    if isinstance(node, Or):
        return _join([_line_filter(t, p, tenant_ph, now, prefilter) for t in node.terms], "OR")
    if isinstance(node, Not):
        return sql.SQL("NOT ({})").format(_line_filter(node.term, p, tenant_ph, now, prefilter))
    if isinstance(node, ContainerIs | LabelIs | MetaIs):
        return sql.SQL(
            "l.ckey IN (SELECT c.id FROM containers c WHERE c.tenant = ANY({}::text[]) AND {})"
        ).format(tenant_ph, _container_atom(node, p))
    if isinstance(node, Text):
        # '%' || value || '%' with the value LIKE-escaped: pg_trgm's GIN index can serve it.
        exact = sql.SQL("l.line ILIKE '%%' || {} || '%%'").format(p(like_escape(node.value)))
        if not node.value.isascii() or not prefilter:
            return exact
        # ILIKE lowers every character of the line (~0.7 us a line); under COLLATE "C" it
        # lowers ASCII only and runs ~2.5x faster. For an ASCII term the two agree but for
        # the two characters that lower to ASCII letters (U+0130 -> i, U+212A -> k), so
        # with i and k as `_` the fast form rejects what the exact one would, first; where
        # the trigram index serves the exact form it only rechecks the index's candidates
        # (and costs ~0.05 ms a leaf to plan, so windows a trigram index covers go without).
        loose = like_escape(node.value).translate(_LOWERS_TO_ASCII)
        return sql.SQL("(l.line COLLATE \"C\" ILIKE '%%' || {} || '%%' AND {})").format(p(loose), exact)
    if isinstance(node, Regex):
        # Case-insensitivity is already spelled out in the pattern (see regex.py), hence ~.
        return sql.SQL("l.line ~ {}").format(p(translate(node.pattern, node.ignore_case)))
    if isinstance(node, StreamIs):
        return sql.SQL("l.stream = {}").format(p(_STREAM_CODES[node.stream]))
    if isinstance(node, LevelIs):
        return sql.SQL("COALESCE(l.level {} {}, false)").format(
            sql.SQL(_LEVEL_SQL_OP[node.op]), p(node.severity)
        )
    if isinstance(node, TimeBound):
        op = sql.SQL(">=" if node.edge == "since" else "<")
        return sql.SQL("l.ts {} {}").format(op, p(resolve_time(node.at, now)))
    if isinstance(node, JsonCmp):
        return _json_filter(node, p)
    raise TypeError(f"not a query node: {node!r}")


def _json_filter(node: JsonCmp, p: _Params) -> sql.Composable:
    found = sql.SQL("(l.attrs #> {}::text[])").format(p(list(node.path)))
    if node.op in _NUMBER_SQL_OP:
        # CASE, not AND: Postgres may evaluate AND's operands in any order, and the cast
        # fails on anything but a number.
        return sql.SQL(
            "CASE WHEN jsonb_typeof({0}) = 'number' THEN {0}::numeric {1} {2} ELSE false END"
        ).format(found, sql.SQL(_NUMBER_SQL_OP[node.op]), p(node.value))
    if node.op == ":" and node.kind == "string":
        return sql.SQL("COALESCE(jsonb_typeof({0}) = 'string' AND ({0} #>> '{{}}') LIKE {1}, false)").format(
            found, p(glob_to_like(str(node.value)))
        )
    # jsonb equality: numbers numerically, strings exactly, and never across types.
    op = sql.SQL("<>" if node.op == "!=" else "=")
    return sql.SQL("COALESCE({} {} {}::jsonb, false)").format(found, op, p(_json_text(node)))


def _json_text(node: JsonCmp) -> str:
    if node.kind == "number":
        return format_json_number(node.value)  # type: ignore[arg-type]
    return json.dumps(node.value)


def _join(parts: list[sql.Composable], op: str) -> sql.Composable:
    if not parts:
        return sql.SQL("TRUE")
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("(") + sql.SQL(f" {op} ").join(parts) + sql.SQL(")")
