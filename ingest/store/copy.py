"""Encoding of normalised rows into PostgreSQL's binary COPY format.

Built by hand with struct rather than psycopg's per-row `write_row`: this is the hottest loop of
ingest and a pre-packed fixed prefix per row is several times cheaper (see bench/ingest.py).
When built, ingest/native/rowcodec.c does the same ~10x cheaper still.
"""

import struct

from ingest.native.load import native
from ingest.store.schema import LOG_COLUMNS

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
COPY_SQL = "COPY logs ({}) FROM STDIN (FORMAT BINARY)".format(", ".join(LOG_COLUMNS))

# Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
PG_EPOCH_US = 946_684_800_000_000

_PREFIX = struct.Struct(">hiqiqiqihiqih").pack  # count, ckey, id, ts, ts_ns, received_at, stream
_LEN = struct.Struct(">i").pack
_NULL = _LEN(-1)
_LEVEL = {None: _NULL, **{n: struct.pack(">ih", 2, n) for n in range(8)}}
_FLAGS = {n: struct.pack(">ih", 2, n) for n in range(8)}
_FIELD_COUNT = len(LOG_COLUMNS)


def encode_rows(rows, ckeys: list[int], first_id: int) -> bytes:
    """rows as produced by normalize_batch; ckeys maps meta_index -> container key."""
    if native is not None and type(rows) is list and type(ckeys) is list:
        return native.encode_rows(rows, ckeys, first_id, _FIELD_COUNT)
    return encode_rows_python(rows, ckeys, first_id)


def encode_rows_python(rows, ckeys: list[int], first_id: int) -> bytes:
    """The definition of the payload (rowcodec.c's encode_rows must give the same bytes)."""
    out = [HEADER]
    append = out.append
    row_id = first_id
    for idx, ts_ns, received_ns, stream, level, flags, line, attrs, raw in rows:
        ts_us, ns = divmod(ts_ns, 1000)
        append(
            _PREFIX(
                _FIELD_COUNT,
                8,
                ckeys[idx],
                8,
                row_id,
                8,
                ts_us - PG_EPOCH_US,
                2,
                ns,
                8,
                received_ns // 1000 - PG_EPOCH_US,
                2,
                stream,
            )
        )
        append(_LEVEL[level])
        append(_FLAGS[flags])
        append(_LEN(len(line)))
        append(line)
        if attrs is None:
            append(_NULL)
        else:
            data = attrs.encode()
            append(_LEN(len(data) + 1) + b"\x01")  # jsonb binary format version 1
            append(data)
        if raw is None:
            append(_NULL)
        else:
            append(_LEN(len(raw)))
            append(raw)
        row_id += 1
    append(TRAILER)
    return b"".join(out)
