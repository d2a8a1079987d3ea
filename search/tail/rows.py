"""One wire shape for a tail line, whichever way it arrived (fan-out message or the store).

A line goes to the client as [ckey, id, ts_us, stream, level, flags, line, attrs] and the
container it belongs to once per socket as {ckey: {name, service, ...}}. The matcher needs the
container fields next to the line, so `matcher_row` joins the two. Times travel as Unix
microseconds, the store's precision, because a JavaScript number holds those exactly and
nanoseconds it does not.
"""

import json
from datetime import UTC, datetime, timedelta

from ingest.store.schema import STREAM_NAMES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)

CONTAINER_FIELDS = ("tenant", "service", "container_id", "name", "image", "host")


def ts_us_of(ts: datetime) -> int:
    return (ts - _EPOCH) // _ONE_MICRO


def datetime_of(ts_us: int) -> datetime:
    """The stored timestamp of a wire ts_us, for keyset paging."""
    return _EPOCH + timedelta(microseconds=ts_us)


def attrs_of(value) -> dict | None:
    # Fan-out carries attrs as the JSON text the writer stored; the store may hand either.
    if value is None or isinstance(value, dict):
        return value
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def from_fanout(ckey: int, line: list) -> list:
    row_id, ts_ns, stream, level, flags, text, attrs = line
    return [ckey, row_id, ts_ns // 1000, stream, level, flags, text, attrs_of(attrs)]


def from_store(ckey, row_id, ts, _ts_ns, stream, level, flags, text, attrs) -> list:
    return [
        ckey,
        row_id,
        ts_us_of(ts),
        STREAM_NAMES.get(stream, "unknown"),
        level,
        flags,
        text,
        attrs_of(attrs),
    ]


def matcher_row(line: list, container: dict) -> dict:
    return {
        "line": line[6],
        "stream": line[3],
        "level": line[4],
        "attrs": line[7],
        "ts_ns": line[2] * 1000,
        "tenant": container.get("tenant"),
        "service": container.get("service"),
        "container_id": container.get("container_id"),
        "container_name": container.get("name"),
        "image": container.get("image"),
        "host": container.get("host"),
        "labels": container.get("labels") or {},
    }


def public_container(container: dict) -> dict:
    """What the client is told about a container (labels included: they are shown, escaped)."""
    return {k: container.get(k) for k in (*CONTAINER_FIELDS, "labels")}
