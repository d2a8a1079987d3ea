"""jsonload.loads must behave exactly like json.loads: same values, same types, same errors."""

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from ingest.receivers import jsonload

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def canonical(value):
    """Comparable form that tells 1 from 1.0 and NaN from NaN, and keeps key order."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, list):
        return ("list", [canonical(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(k, canonical(v)) for k, v in value.items()])
    return (type(value).__name__, value)


def outcome(loads, data: bytes):
    try:
        return ("ok", canonical(loads(data)))
    except (ValueError, RecursionError) as e:
        return ("error", type(e).__name__, str(e))


def same_as_json(data: bytes) -> None:
    assert outcome(jsonload.loads, data) == outcome(json.loads, data)


@given(values, st.booleans())
def test_it_decodes_every_json_document_like_json(value, ascii_only):
    same_as_json(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@given(values, st.integers(min_value=0, max_value=200), st.binary(min_size=1, max_size=4))
def test_it_fails_on_damaged_documents_like_json(value, at, junk):
    data = json.dumps(value).encode()
    at = min(at, len(data))
    same_as_json(data[:at] + junk + data[at:])


@given(st.binary(max_size=64))
def test_it_treats_arbitrary_bytes_like_json(data):
    same_as_json(data)


def test_it_keeps_the_cases_orjson_would_change():
    for data in (
        b"18446744073709551616",
        b"-9223372036854775809",
        b'{"n": 123456789012345678901234567890}',
        b'"\\ud800"',
        b"NaN",
        b"1e400",
        b"\xef\xbb\xbf{}",
        b"[" * 5000 + b"]" * 5000,
    ):
        same_as_json(data)
