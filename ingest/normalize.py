"""Normalisation, in one place, of every Record on its way to the store.

Decisions made here (and only here):
- text: lines are stored as valid UTF-8 without NUL. Invalid sequences become U+FFFD and NUL
  becomes U+2400 (SYMBOL FOR NULL); in both cases the original bytes are kept in `raw` and a
  flag says what happened, so the transformation is deterministic and reversible.
- size: lines over LOGSITE_MAX_LINE_BYTES are cut at a character boundary, flagged TRUNCATED and
  the original length is kept in attrs; nothing is dropped for being long.
- time: the driver's own timestamp is kept (ns precision: µs in `ts`, the rest in `ts_ns`)
  unless it is implausible, in which case the receive time is used and the original kept.
- level: a driver-supplied severity wins; otherwise the start of the line is scanned.
"""

import json
import math
import re
import time
from dataclasses import dataclass, field

from ingest.levels import severity_from_line
from ingest.native.load import native
from ingest.record import DEDUP_ATTR, Record
from ingest.store.schema import FLAG_INVALID_UTF8, FLAG_NUL_ESCAPED, FLAG_TRUNCATED, STREAM_CODES

NUL_REPLACEMENT = "\u2400".encode()
_FUTURE_SLACK_NS = 3600 * 10**9
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


@dataclass(slots=True)
class Limits:
    max_line_bytes: int
    max_ts_age_ns: int


@dataclass(slots=True, frozen=True)
class ContainerMeta:
    tenant: str
    container_id: str
    service: str
    name: str
    image: str
    host: str
    labels_json: str
    driver_id: int | None


@dataclass(slots=True)
class Batch:
    """Normalised rows plus the distinct containers they belong to.

    rows: (meta_index, ts_ns, received_ns, stream, level, flags, line, attrs_json, raw)
    keys: (row index, de-duplication key) for the rows that have one (see store/dedup.py)
    """

    metas: list[ContainerMeta]
    rows: list[tuple]
    keys: list[tuple[int, str]] = field(default_factory=list)
    # The batch's identity in the ledger (log_batches.spool_ref), fixed before its first commit
    # attempt and spooled with it: a COMMIT whose answer was lost is then not stored again.
    ref: str | None = None


def _cut_utf8(data: bytes, limit: int) -> bytes:
    cut = limit
    # Step back over continuation bytes so the cut never splits a character. A character has
    # at most 3 of them: stepping further would only walk through invalid input, and a long
    # run of stray continuation bytes would otherwise empty the line.
    floor = max(limit - 3, 0)
    while cut > floor and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut]


def normalize_line(line: bytes | str, max_bytes: int) -> tuple[bytes, int, bytes | None, int]:
    """Returns (utf8 text without NUL, flags, original bytes if lossy, original length)."""
    if isinstance(line, str):
        # surrogatepass keeps lone surrogates as (invalid) bytes; the UTF-8 check below then
        # replaces them like any other invalid input instead of raising.
        data = line.encode("utf-8", "surrogatepass")
    else:
        data = bytes(line)
    size = len(data)
    flags = 0
    if size > max_bytes:
        data = _cut_utf8(data, max_bytes)
        flags |= FLAG_TRUNCATED
    raw = None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raw = data
            data = data.decode("utf-8", "replace").encode("utf-8")
            flags |= FLAG_INVALID_UTF8
    if b"\x00" in data:
        if raw is None:
            raw = data
        data = data.replace(b"\x00", NUL_REPLACEMENT)
        flags |= FLAG_NUL_ESCAPED
    return data, flags, raw, size


def _clean_text(value: str, limit: int = 1024) -> str:
    value = value.replace("\x00", "\u2400")
    return value.encode("utf-8", "replace").decode("utf-8")[:limit] if value else value


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # its name: "NaN", "Infinity" or "-Infinity"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dump_json(value: dict) -> str:
    """JSON acceptable to Postgres jsonb (which refuses \\u0000, lone surrogates, NaN, Infinity)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        # Python emits NaN/Infinity as bare tokens that are not JSON; jsonb would refuse the
        # whole COPY (and with it every other line of the batch), so keep them as strings.
        text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), default=str)
    if "\\u0000" in text:
        text = _JSON_NUL.sub(lambda m: m.group(1) + "\\u2400", text)
    return text.encode("utf-8", "replace").decode("utf-8")


def normalize_batch(records: list[Record], limits: Limits, now_ns: int | None = None) -> Batch:
    now_ns = now_ns or time.time_ns()
    oldest_ok = now_ns - limits.max_ts_age_ns
    newest_ok = now_ns + _FUTURE_SLACK_NS
    meta_index: dict[tuple, int] = {}
    metas: list[ContainerMeta] = []
    rows: list[tuple] = []
    keys: list[tuple[int, str]] = []
    max_bytes = limits.max_line_bytes

    def meta_of(rec: Record) -> int:
        key = (rec.tenant, rec.container_id, rec.container_name, rec.service, rec.image, rec.driver_id)
        idx = meta_index.get(key)
        if idx is None:
            idx = meta_index[key] = new_meta(rec)
        return idx

    def new_meta(rec: Record) -> int:
        metas.append(_container_meta(rec))
        return len(metas) - 1

    def add_row(rec: Record, idx: int | None) -> None:
        if idx is None:
            idx = meta_of(rec)
        line = rec.line
        # Most lines are short, ASCII and free of NUL: normalize_line would return them as they
        # are, and skipping the call is a tenth of this loop's cost.
        if type(line) is bytes and len(line) <= max_bytes and line.isascii() and b"\x00" not in line:
            flags, raw = 0, None
        elif type(line) is str and len(line) <= max_bytes and line.isascii() and "\x00" not in line:
            line, flags, raw = line.encode(), 0, None
        else:
            line, flags, raw, size = normalize_line(line, max_bytes)
        attrs = rec.attrs
        if flags & FLAG_TRUNCATED:
            attrs = dict(attrs or {}, _truncated_from_bytes=size)
        received = rec.received_ns or now_ns
        ts = rec.ts_ns
        if ts is None:
            ts = received
        elif not oldest_ok <= ts <= newest_ok:
            attrs = dict(attrs or {}, _driver_ts_ns=ts)
            ts = received
        level = rec.level
        if level is None:
            level = severity_from_line(line)
        elif not 0 <= level <= 7:
            level = None
        stream = STREAM_CODES.get(rec.stream, 0)
        if attrs and DEDUP_ATTR in attrs:
            keys.append((len(rows), _clean_text(str(attrs[DEDUP_ATTR]), 512)))
        rows.append((idx, ts, received, stream, level, flags, line, dump_json(attrs) if attrs else None, raw))

    if native is not None and type(records) is list:
        # The common case in C; add_row builds every other row (the definition of a row).
        native.normalize_into(
            records,
            rows,
            meta_index,
            new_meta,
            add_row,
            max_bytes,
            oldest_ok,
            newest_ok,
            now_ns,
            STREAM_CODES,
        )
    else:
        for rec in records:
            add_row(rec, None)
    return Batch(metas, rows, keys)


def _container_meta(rec: Record) -> ContainerMeta:
    tenant = _clean_text(rec.tenant or "default", 128).strip() or "default"
    cid = _clean_text(rec.container_id or rec.container_name or rec.host or "-", 128)
    name = _clean_text(rec.container_name, 255).lstrip("/")
    return ContainerMeta(
        tenant=tenant,
        container_id=cid,
        service=_clean_text(rec.service, 128),
        name=name,
        image=_clean_text(rec.image, 512),
        host=_clean_text(rec.host, 255),
        labels_json=dump_json({str(k): str(v) for k, v in rec.labels.items()}) if rec.labels else "{}",
        driver_id=rec.driver_id,
    )
