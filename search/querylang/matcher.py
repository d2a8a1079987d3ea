"""compile_matcher(): AST → a predicate over one line, for the live tail.

It must say yes to exactly the lines the SQL in sql.py returns (tests/search/querylang/
test_sql.py runs both over the same rows). A row is a dict, or any object with attributes
(an ingest Record), carrying:

    line, stream ("stdout"/"stderr" or 1/2), level (0..7 or None), attrs (dict or None),
    ts (aware datetime) -- or, when there is no ts, ts_ns (Unix nanoseconds, as in Record),
    tenant, service, container_id, container_name, image, host, labels (dict)

Missing keys count as empty. Times compare at microsecond precision, as stored in Postgres.
"""

import json
import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
)
from .regex import compile_python, translate
from .textmatch import fold, glob_matches
from .values import resolve_time

Getter = Callable[[str], object]
Predicate = Callable[[Getter], bool]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)
# Stored rows always have a time; a live row without one sorts before every bound.
_NO_TIME = -(2**63)
_STREAM_CODES = {"stdout": 1, "stderr": 2}
_MISSING = object()
_ORDER = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def compile_matcher(node: Node, now: datetime | None = None) -> Callable[[object], bool]:
    """`now` anchors relative times (since:2h); the SQL compiler must get the same value."""
    predicate = _compile(node, now or datetime.now(UTC))

    def matches(row: object) -> bool:
        if isinstance(row, dict):
            return predicate(row.get)
        return predicate(lambda name: getattr(row, name, None))

    return matches


def _compile(node: Node, now: datetime) -> Predicate:
    if isinstance(node, And):
        parts = [_compile(t, now) for t in node.terms]
        return lambda get: all(p(get) for p in parts)
    if isinstance(node, Or):
        parts = [_compile(t, now) for t in node.terms]
        return lambda get: any(p(get) for p in parts)
    if isinstance(node, Not):
        inner = _compile(node.term, now)
        return lambda get: not inner(get)
    if isinstance(node, Text):
        needle = fold(node.value)
        return lambda get: needle in fold(_text(get("line")))
    if isinstance(node, Regex):
        pattern = compile_python(translate(node.pattern, node.ignore_case))
        return lambda get: pattern.search(_text(get("line"))) is not None
    if isinstance(node, ContainerIs):
        return _container(node.value)
    if isinstance(node, LabelIs):
        return _label(node.key, node.value)
    if isinstance(node, MetaIs):
        field, glob = node.field, node.value
        return lambda get: glob_matches(glob, _text(get(field)))
    if isinstance(node, StreamIs):
        accepted = {node.stream, _STREAM_CODES[node.stream]}
        return lambda get: get("stream") in accepted
    if isinstance(node, LevelIs):
        return _level(node.op, node.severity)
    if isinstance(node, JsonCmp):
        return _json(node)
    if isinstance(node, TimeBound):
        bound = _micros(resolve_time(node.at, now))
        if node.edge == "since":
            return lambda get: _row_micros(get) >= bound
        return lambda get: _row_micros(get) < bound
    raise TypeError(f"not a query node: {node!r}")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _container(value: str) -> Predicate:
    if "*" in value:
        return lambda get: (
            glob_matches(value, _text(get("container_name")))
            or glob_matches(value, _text(get("container_id")))
        )
    return lambda get: _text(get("container_name")) == value or _text(get("container_id")).startswith(value)


def _label(key: str, glob: str | None) -> Predicate:
    def predicate(get: Getter) -> bool:
        labels = get("labels")
        if not isinstance(labels, dict) or key not in labels:
            return False
        if glob is None:
            return True
        value = labels[key]
        if value is None:  # ->> turns JSON null into SQL NULL
            return False
        return glob_matches(glob, value if isinstance(value, str) else json.dumps(value))

    return predicate


def _level(op: str, severity: int) -> Predicate:
    # "Higher" means more important, which is a *lower* syslog number.
    compare = {
        "=": lambda v: v == severity,
        ">=": lambda v: v <= severity,
        ">": lambda v: v < severity,
        "<=": lambda v: v >= severity,
        "<": lambda v: v > severity,
    }[op]

    def predicate(get: Getter) -> bool:
        level = get("level")
        return isinstance(level, int) and compare(level)

    return predicate


def _json(node: JsonCmp) -> Predicate:
    path, op, kind, wanted = node.path, node.op, node.kind, node.value
    order = _ORDER.get(op)
    bound = wanted if isinstance(wanted, Decimal) else None

    def equal(found: object) -> bool:
        if kind == "number":
            return _number(found) == wanted
        if kind == "string":
            return isinstance(found, str) and found == wanted
        if kind == "bool":
            return isinstance(found, bool) and found == wanted
        return found is None

    def predicate(get: Getter) -> bool:
        found = _lookup(get("attrs"), path)
        if found is _MISSING:
            return False
        if op == "!=":
            return not equal(found)
        if op == "=" or (op == ":" and kind != "string"):
            return equal(found)
        if op == ":":
            return isinstance(found, str) and glob_matches(str(wanted), found)
        number = _number(found)
        return number is not None and order is not None and bound is not None and order(number, bound)

    return predicate


def _lookup(doc: object, path: tuple[str, ...]) -> object:
    """What Postgres' `attrs #> path` finds: object keys, array indexes (negative from the end)."""
    if doc is None:
        return _MISSING
    for step in path:
        if isinstance(doc, dict):
            if step not in doc:
                return _MISSING
            doc = doc[step]
        elif isinstance(doc, list):
            index = _array_index(step)
            if index is None or not -len(doc) <= index < len(doc):
                return _MISSING
            doc = doc[index]
        else:
            return _MISSING
    return doc


def _array_index(step: str) -> int | None:
    digits = step[1:] if step.startswith("-") else step
    # int() alone would also take "1_0" and non-ASCII digits; Postgres takes neither.
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(step)


def _number(value: object) -> Decimal | None:
    """A JSON number as Postgres' numeric sees it. Floats go through repr(), which is the text
    json.dumps writes and so the text Postgres parsed when the row was stored."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return Decimal(repr(value))
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _ONE_MICRO


def _row_micros(get: Getter) -> int:
    ts = get("ts")
    if isinstance(ts, datetime):
        return _micros(ts)
    ts_ns = get("ts_ns")
    if isinstance(ts_ns, int):
        return ts_ns // 1000
    return _NO_TIME
