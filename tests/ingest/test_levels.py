"""Level detection in the start of a line; the fast path must find exactly what a plain scan finds."""

import re

from hypothesis import given
from hypothesis import strategies as st

from ingest.levels import SEVERITY_BY_NAME, severity_from_line, severity_from_name

# The straightforward definition: a level word, any case, not inside a longer word, in the
# first 120 bytes.
REFERENCE = re.compile(
    rb"(?i)(?<![A-Za-z])(TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|CRIT(?:ICAL)?|FATAL|PANIC|ALERT|EMERG)(?![A-Za-z])"
)


def reference(line: bytes) -> int | None:
    m = REFERENCE.search(line, 0, 120)
    return None if m is None else SEVERITY_BY_NAME[m.group(1).decode().lower()]


WORDS = [b"info", b"INFO", b"Err", b"error", b"warn", b"ing", b"WARNING", b"crit", b"ical", b"emerg"]
OTHER = [b"trace", b"x", b"I", b"_", b"1", b" ", b"[", b":", b"\xc3\xa9", b"\xff", b"\x00", b"a" * 50]
pieces = st.sampled_from(WORDS + OTHER)


@given(st.lists(pieces, max_size=40).map(b"".join))
def test_it_finds_what_a_plain_scan_finds(line):
    assert severity_from_line(line) == reference(line)


@given(st.binary(max_size=200))
def test_it_agrees_on_arbitrary_bytes(line):
    assert severity_from_line(line) == reference(line)


def test_it_reads_levels_near_the_front_only():
    assert severity_from_line(b"2024-01-01 12:00:00 WARN disk almost full") == 4
    assert severity_from_line(b"[error] boom") == 3
    assert severity_from_line(b"information about errors") is None  # both inside longer words
    assert severity_from_line(b'10.0.0.1 - - "GET / HTTP/1.1" 200') is None
    assert severity_from_line(b"x" * 116 + b" err") == 3
    assert severity_from_line(b"x" * 117 + b" err") is None  # "err" ends past byte 120


def test_it_maps_names():
    assert severity_from_name(" Warning ") == 4
    assert severity_from_name("nope") is None
