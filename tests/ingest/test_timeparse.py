"""RFC 3339 parsing: exact to the nanosecond, against datetime arithmetic as the reference."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.timeparse import ns_to_rfc3339, rfc3339_to_ns

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_it_matches_datetime_arithmetic(moment, extra_ns, offset_minutes):
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    # %Y does not pad years before 1000, so the date is spelled out.
    text = (
        f"{local.year:04d}-{local:%m-%dT%H:%M:%S}.{local.microsecond:06d}{extra_ns:03d}"
        f"{sign}{hours:02d}:{minutes:02d}"
    )
    expected = ((local - EPOCH) // timedelta(microseconds=1)) * 1000 + extra_ns
    assert rfc3339_to_ns(text) == expected


@given(st.integers(min_value=-(10**18), max_value=4 * 10**18))
def test_it_reads_back_what_it_writes(ns):
    assert rfc3339_to_ns(ns_to_rfc3339(ns)) == ns


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-02-30T00:00:00Z", "day is out of range"),
        ("2023-13-01T00:00:00Z", "month must be in 1..12"),
        ("2024-01-01T24:00:00Z", "hour must be in 0..23"),
        ("2024-01-01T00:60:00Z", "minute must be in 0..59"),
        ("2024-01-01T00:00:60Z", "second must be in 0..59"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("yesterday", "not an RFC 3339 timestamp"),
    ],
)
def test_it_refuses_impossible_times_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        rfc3339_to_ns(text)


def test_it_reads_the_common_spellings():
    assert rfc3339_to_ns("2024-01-02T03:04:05Z") == 1704164645 * 10**9
    assert rfc3339_to_ns("2024-01-02 03:04:05.5") == 1704164645 * 10**9 + 500_000_000
    assert rfc3339_to_ns("2024-01-02T04:04:05.000000001+01:00") == 1704164645 * 10**9 + 1
    assert rfc3339_to_ns(" 2024-01-02t03:04:05,25z ") == 1704164645 * 10**9 + 250_000_000
