"""Normalisation as stored: every case goes through the real writer into Postgres and is read back."""

import json
import math
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.record import Record
from ingest.store.schema import FLAG_INVALID_UTF8, FLAG_NUL_ESCAPED, FLAG_TRUNCATED
from tests.conftest import decoded_log_rows as log_rows
from tests.support.writer import WriterHarness

pytestmark = pytest.mark.django_db(transaction=True)

DAY_NS = 86400 * 10**9
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path, clean_logs):
    with WriterHarness(tmp_path / "spool", max_line_bytes=1024) as harness:
        yield harness


def stored(container_id: str) -> list[dict]:
    return log_rows("c.container_id = %s", (container_id,))


def original_bytes(row: dict) -> bytes:
    """What a reader gets back: raw when the text was lossy, else the text itself."""
    return bytes(row["raw"]) if row["raw"] is not None else row["line"].encode()


def stored_ts_ns(row: dict) -> int:
    return (row["ts"] - EPOCH) // _US * 1000 + row["ts_ns"]


_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - EPOCH


def test_it_replaces_invalid_utf8_and_keeps_the_bytes(store):
    line = b"bad \xff\xfe byte and a cut \xe2\x82 euro"
    store.write([Record(line=line, container_id="c1")])
    [row] = stored("c1")
    assert row["line"] == line.decode("utf-8", "replace")
    assert row["flags"] == FLAG_INVALID_UTF8
    assert bytes(row["raw"]) == line


def test_it_escapes_nul_and_keeps_the_bytes(store):
    line = b"a\x00b\x00\x00c"
    store.write([Record(line=line, container_id="c1")])
    [row] = stored("c1")
    assert row["line"] == "a\u2400b\u2400\u2400c"
    assert row["flags"] == FLAG_NUL_ESCAPED
    assert bytes(row["raw"]) == line


def test_it_handles_nul_and_invalid_utf8_in_one_line(store):
    line = b"\x00\xc3\x28\x00"
    store.write([Record(line=line, container_id="c1")])
    [row] = stored("c1")
    assert row["flags"] == FLAG_INVALID_UTF8 | FLAG_NUL_ESCAPED
    assert "\x00" not in row["line"]
    assert bytes(row["raw"]) == line


def test_it_replaces_lone_surrogates_from_decoded_text(store):
    # JSON receivers hand over str; "\ud800" is legal JSON but not encodable as UTF-8.
    store.write([Record(line="x\ud800y\udfff", container_id="c1")])
    [row] = stored("c1")
    assert row["flags"] == FLAG_INVALID_UTF8
    assert "\ufffd" in row["line"]
    assert row["line"].startswith("x")
    assert row["line"].endswith("\ufffd")
    assert bytes(row["raw"]) == "x\ud800y\udfff".encode("utf-8", "surrogatepass")


def test_it_stores_clean_text_untouched(store):
    lines = ["plain ascii", "ünïcödé ✓ 𝄞", "a literal \u2400 is not a NUL", ""]
    store.write([Record(line=text, container_id="c1") for text in lines])
    rows = stored("c1")
    assert [r["line"] for r in rows] == lines
    assert {r["flags"] for r in rows} == {0}
    assert {r["raw"] for r in rows} == {None}


def test_it_stores_the_same_bytes_the_same_way_every_time(store):
    line = b"\x00\xff\xe2\x82\xac\xed\xa0\x80 tail"
    store.write([Record(line=line, container_id="c1")])
    store.write([Record(line=line, container_id="c1")])
    first, second = stored("c1")
    assert (first["line"], first["flags"], bytes(first["raw"])) == (
        second["line"],
        second["flags"],
        bytes(second["raw"]),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=300), min_size=1, max_size=40))
def test_it_keeps_any_bytes_recoverable(store, lines):
    cid = f"h{time.monotonic_ns()}"
    store.write([Record(line=line, container_id=cid) for line in lines])
    rows = stored(cid)
    assert [original_bytes(r) for r in rows] == lines
    for row in rows:
        assert "\x00" not in row["line"]
        assert not row["flags"] & FLAG_TRUNCATED


def test_it_truncates_at_a_character_boundary(store):
    # 1023 ASCII bytes then a 3-byte character: the cap (1024) falls inside the character.
    line = ("a" * 1023 + "€" + "b" * 500).encode()
    store.write([Record(line=line, container_id="c1", attrs={"k": "v"})])
    [row] = stored("c1")
    assert row["line"] == "a" * 1023
    assert row["flags"] == FLAG_TRUNCATED
    assert row["raw"] is None
    assert row["attrs"] == {"k": "v", "_truncated_from_bytes": len(line)}


def test_it_keeps_a_whole_character_that_ends_at_the_cap(store):
    line = ("a" * 1021 + "€" + "tail").encode()  # the euro sign occupies bytes 1021..1023
    store.write([Record(line=line, container_id="c1")])
    [row] = stored("c1")
    assert row["line"] == "a" * 1021 + "€"
    assert len(row["line"].encode()) == 1024


def test_it_never_empties_a_long_line_of_invalid_bytes(store):
    # Continuation bytes only: there is no character boundary to step back to; the cut must
    # still keep (almost) the whole cap rather than walking back to the start of the line.
    line = b"\x80" * 5000
    store.write([Record(line=line, container_id="c1")])
    [row] = stored("c1")
    assert row["flags"] == FLAG_TRUNCATED | FLAG_INVALID_UTF8
    assert len(row["raw"]) >= 1024 - 3
    assert bytes(row["raw"]) == line[: len(row["raw"])]
    assert row["attrs"] == {"_truncated_from_bytes": 5000}


def test_it_truncates_and_replaces_together(store):
    line = b"\xff" + b"x" * 2000
    store.write([Record(line=line, container_id="c1")])
    [row] = stored("c1")
    assert row["flags"] == FLAG_TRUNCATED | FLAG_INVALID_UTF8
    assert bytes(row["raw"]) == line[:1024]
    assert row["line"] == "\ufffd" + "x" * 1023


def test_it_keeps_the_drivers_time_with_nanoseconds(store):
    now = time.time_ns()
    ts = now - 3600 * 10**9 + 123_456_789
    store.write([Record(line="x", ts_ns=ts, received_ns=now, container_id="c1")])
    [row] = stored("c1")
    assert stored_ts_ns(row) == ts
    assert row["attrs"] is None


@pytest.mark.parametrize(
    "offset_ns", [-31 * DAY_NS, 2 * 3600 * 10**9, -(10**30)], ids=["old", "future", "absurd"]
)
def test_it_replaces_an_implausible_time_with_receive_time(store, offset_ns):
    now = time.time_ns()
    driver_ts = now + offset_ns
    store.write([Record(line="x", ts_ns=driver_ts, received_ns=now, container_id="c1")])
    [row] = stored("c1")
    assert stored_ts_ns(row) == now
    assert row["attrs"] == {"_driver_ts_ns": driver_ts}


def test_it_accepts_a_time_slightly_in_the_future(store):
    now = time.time_ns()
    ts = now + 30 * 60 * 10**9  # clocks drift; within the hour of slack
    store.write([Record(line="x", ts_ns=ts, received_ns=now, container_id="c1")])
    [row] = stored("c1")
    assert stored_ts_ns(row) == ts


def test_it_uses_receive_time_when_the_driver_sends_none(store):
    now = time.time_ns()
    store.write([Record(line="x", received_ns=now, container_id="c1")])
    [row] = stored("c1")
    assert stored_ts_ns(row) == now


@pytest.mark.parametrize(
    ("line", "level", "expected"),
    [
        ("2026-01-01 ERROR disk full", None, 3),
        ("[warn] slow", None, 4),
        ("WARNING: x", None, 4),
        ("level=debug msg=hi", None, 7),
        ("fatal: cannot start", None, 2),
        ("information is not a level", None, None),
        ("xERROR is not a word", None, None),
        ("nothing here", None, None),
        (" " * 130 + "ERROR past the scanned prefix", None, None),
        ("ERROR in the text, but the driver said info", 6, 6),
        ("a driver severity of 0 is emerg", 0, 0),
    ],
)
def test_it_sets_the_level(store, line, level, expected):
    store.write([Record(line=line, level=level, container_id="c1")])
    [row] = stored("c1")
    assert row["level"] == expected


def test_it_maps_the_stream(store):
    store.write(
        [
            Record(line="o", stream="stdout", container_id="c1"),
            Record(line="e", stream="stderr", container_id="c1"),
        ]
    )
    assert [r["stream"] for r in stored("c1")] == [1, 2]


def test_it_stores_attrs_postgres_would_refuse_raw(store):
    attrs = {
        "nul": "a\x00b",
        "escaped": "\\u0000 stays text",
        "surrogate": "x\ud800",
        "nan": math.nan,
        "inf": [math.inf, -math.inf],
        "nested": {"deep": "\x00"},
    }
    store.write([Record(line="x", attrs=attrs, container_id="c1")])
    [row] = stored("c1")
    got = row["attrs"]
    assert got["nul"] == "a\u2400b"
    assert got["escaped"] == "\\u0000 stays text"
    assert got["nested"] == {"deep": "\u2400"}
    assert "\ud800" not in json.dumps(got, ensure_ascii=False)
    # Non-finite numbers have no JSON form; they are kept as their names rather than refused.
    assert got["nan"] == "NaN"
    assert got["inf"] == ["Infinity", "-Infinity"]


def test_it_cleans_container_metadata(store):
    store.write(
        [
            Record(
                line="x",
                tenant="  spaced  ",
                container_id="c\x00id",
                container_name="/web-1",
                service="svc\x00",
                labels={"a": "b\x00"},
            )
        ]
    )
    [row] = log_rows()
    assert row["tenant"] == "spaced"
    assert row["container_id"] == "c\u2400id"
    assert row["name"] == "web-1"
    assert row["service"] == "svc\u2400"


def test_it_defaults_an_empty_tenant(store):
    store.write([Record(line="x", tenant="", container_id="c1")])
    assert [r["tenant"] for r in stored("c1")] == ["default"]
