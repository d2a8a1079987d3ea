import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driver.fifo import MAX_FRAME_BYTES, FrameDecoder, FrameError, encode_frame
from driver.logentry import LogAttr, LogEntry, PartialLogEntryMetadata

metadata = st.builds(
    PartialLogEntryMetadata,
    last=st.booleans(),
    id=st.text(alphabet="0123456789abcdef", max_size=64),
    ordinal=st.integers(min_value=0, max_value=2**31 - 1),
)
entries = st.builds(
    LogEntry,
    source=st.sampled_from(["stdout", "stderr", ""]),
    time_nano=st.integers(min_value=0, max_value=2**63 - 1),
    line=st.binary(max_size=20000),
    partial=st.booleans(),
    partial_log_metadata=st.none() | metadata,
    attrs=st.lists(st.builds(LogAttr, key=st.text(max_size=10), value=st.text(max_size=10)), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(entries, max_size=8), st.data())
def test_it_decodes_any_entries_however_the_pipe_cuts_the_bytes(batch, data):
    stream = b"".join(encode_frame(e) for e in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    got = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert got == batch
    assert decoder.pending_bytes == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_it_turns_garbage_into_skipped_records_or_a_frame_error_only(garbage):
    decoder = FrameDecoder(max_frame_bytes=64 * 1024)
    try:
        got = decoder.feed(garbage)
    except FrameError:
        return
    assert all(isinstance(e, LogEntry) for e in got)


def test_it_reads_an_empty_line_as_a_frame_without_the_line_field():
    frame = encode_frame(LogEntry(source="stdout", time_nano=7))
    assert frame == b"\x00\x00\x00\x0a\x0a\x06stdout\x10\x07"
    (entry,) = FrameDecoder().feed(frame)
    assert entry.line == b""


def test_it_decodes_dockerd_bytes_written_by_hand():
    body = b"\x0a\x06stderr\x10\x80\x94\xeb\xdc\x03\x1a\x03hi\r\x20\x01\x2a\x08\x08\x01\x12\x02ab\x18\x02"
    (entry,) = FrameDecoder().feed(struct.pack(">I", len(body)) + body)
    assert entry.source == "stderr"
    assert entry.time_nano == 1_000_000_000
    assert entry.line == b"hi\r"
    assert entry.partial
    assert entry.partial_log_metadata.last
    assert entry.partial_log_metadata.id == "ab"
    assert entry.partial_log_metadata.ordinal == 2


def test_it_skips_a_well_framed_record_that_is_not_a_log_entry():
    bad = b"\xff\xff\xff"
    good = encode_frame(LogEntry(source="stdout", line=b"ok"))
    decoder = FrameDecoder()
    got = decoder.feed(struct.pack(">I", len(bad)) + bad + good)
    assert [e.line for e in got] == [b"ok"]
    assert decoder.bad_records == 1


def test_it_refuses_a_length_no_real_frame_has():
    decoder = FrameDecoder()
    with pytest.raises(FrameError, match="exceeds"):
        decoder.feed(struct.pack(">I", MAX_FRAME_BYTES + 1) + b"x" * 10)


def test_it_keeps_an_unfinished_frame_for_the_next_read():
    frame = encode_frame(LogEntry(source="stdout", line=b"hello"))
    decoder = FrameDecoder()
    assert decoder.feed(frame[:5]) == []
    assert decoder.pending_bytes == 5
    assert [e.line for e in decoder.feed(frame[5:])] == [b"hello"]
