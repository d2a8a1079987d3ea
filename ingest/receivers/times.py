"""Strict timestamp conversions for the decoders; every result is integer Unix nanoseconds.

RFC 3339 parsing itself lives in ingest/timeparse.py; here its ValueError becomes a
DecodeError, and seconds are validated strictly because they arrive from untrusted senders
(a float like 1e400 or NaN must be a clear error, not an OverflowError).
"""

import functools
import math
import re

from ingest import timeparse

from .errors import DecodeError

_DECIMAL = re.compile(r"(\d{1,12})(?:\.(\d{1,30}))?\Z", re.ASCII)


def rfc3339_to_ns(text: str) -> int:
    try:
        return timeparse.rfc3339_to_ns(text)
    except (ValueError, OverflowError) as exc:
        raise DecodeError(f"not an RFC 3339 timestamp: {text[:40]!r}") from exc


# The common shape (what Docker, logger and rsyslog write), for the fast path below.
_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z")


@functools.lru_cache(maxsize=4096)
def whole_second_ns(second: bytes, zone: bytes) -> int:
    return rfc3339_to_ns((second + zone).decode("ascii"))


_RECENT_STAMPS: dict[bytes, int] = {}


def rfc3339_bytes_to_ns(stamp: bytes) -> int:
    """rfc3339_to_ns for a stamp still in bytes. A sender stamps many messages within the same
    second, so the date arithmetic is done once per second and zone; only the fraction varies,
    and a stamp without one (Docker's rfc5424) is simply looked up."""
    try:
        return _RECENT_STAMPS[stamp]
    except KeyError:
        pass
    m = _STAMP.match(stamp)
    if m is None:
        return rfc3339_to_ns(stamp.decode("ascii", "replace"))
    second, fraction, zone = m.groups()
    ns = whole_second_ns(second, zone)
    if fraction:
        return ns + int(fraction.ljust(9, b"0"))
    if len(_RECENT_STAMPS) >= 1024:
        _RECENT_STAMPS.clear()
    _RECENT_STAMPS[stamp] = ns
    return ns


def decimal_seconds_to_ns(text: str) -> int:
    """'1767225600.123456' → ns, exactly (a float would round the last digits)."""
    m = _DECIMAL.match(text.strip())
    if m is None:
        raise DecodeError(f"not a decimal number of seconds: {text[:40]!r}")
    frac = (m.group(2) or "")[:9]
    return int(m.group(1)) * 1_000_000_000 + int(frac.ljust(9, "0"))


def float_seconds_to_ns(value: float | int) -> int:
    if isinstance(value, int):
        if value < 0:
            raise DecodeError("negative timestamp")
        if value > 10**12:
            raise DecodeError(f"timestamp out of range: {value!r}")
        return value * 1_000_000_000
    if not math.isfinite(value) or value < 0 or value > 1e12:
        raise DecodeError(f"timestamp out of range: {value!r}")
    # Floats near 1.7e9 are exact to ~0.2 µs: round to µs so 1.123 s stays 1_123_000_000 ns.
    return round(value * 1_000_000) * 1000
