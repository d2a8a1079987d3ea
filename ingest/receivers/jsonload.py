"""JSON decoding for receivers: orjson's speed, the standard library's rules and errors.

json.loads costs about as much per NDJSON line as the rest of the write path together;
orjson is several times faster. orjson is stricter (it refuses NaN/Infinity, lone surrogates,
a UTF-8 BOM, deep nesting) and reads integers beyond 64 bits as floats; in all those cases
the standard library decides, so what is accepted, the values produced and every error
message stay exactly json.loads's (tests/ingest/test_jsonload.py checks that).
"""

import json

import orjson

# orjson reads every integer within int64/uint64 exactly; one beyond becomes a float at least
# this large. A float that large (rare in logs) is therefore decoded again by json.
_EXACT_LIMIT = 2.0**63


def loads(data: bytes, fallback=json.loads):
    """`fallback` decides every case orjson refuses or might read differently."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return fallback(data)
    if no_huge_float(value):
        return value
    return fallback(data)


def no_huge_float(value) -> bool:
    kind = type(value)
    if kind is float:
        return -_EXACT_LIMIT < value < _EXACT_LIMIT
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return True
    return all(type(item) is str or no_huge_float(item) for item in items)
