"""normalize_batch's shortcut for clean lines must store exactly what normalize_line would."""

from hypothesis import given
from hypothesis import strategies as st

from ingest.normalize import Limits, normalize_batch, normalize_line
from ingest.record import Record

MAX_BYTES = 1024
LIMITS = Limits(max_line_bytes=MAX_BYTES, max_ts_age_ns=10**18)

lines = st.one_of(
    st.binary(max_size=MAX_BYTES + 8),
    st.text(max_size=MAX_BYTES + 8),
    st.text(alphabet="ab\x00", min_size=MAX_BYTES - 2, max_size=MAX_BYTES + 2),
    st.binary(min_size=MAX_BYTES - 2, max_size=MAX_BYTES + 2).map(lambda b: b.replace(b"\x00", b"n")),
)


@given(st.lists(lines, min_size=1, max_size=20))
def test_it_stores_what_normalize_line_decides(batch_lines):
    batch = normalize_batch([Record(line=line) for line in batch_lines], LIMITS)
    for line, row in zip(batch_lines, batch.rows, strict=True):
        text, flags, raw, _size = normalize_line(line, MAX_BYTES)
        assert (row[6], row[5], row[8]) == (text, flags, raw)
