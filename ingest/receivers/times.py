"""Timestamp parsing shared by the receivers; every result is integer Unix nanoseconds."""

import math
import re
from datetime import UTC, datetime, timedelta

from .errors import DecodeError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)
_DECIMAL = re.compile(r"(\d{1,12})(?:\.(\d{1,30}))?\Z", re.ASCII)


def rfc3339_to_ns(text: str) -> int:
    m = _RFC3339.match(text)
    if m is None:
        raise DecodeError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "", m.group(8)
    offset = 0
    if zone not in ("Z", "z"):
        offset = (int(zone[1:3]) * 60 + int(zone[4:6])) * (1 if zone[0] == "+" else -1)
    # A leap second (:60) is carried into the next minute rather than rejected.
    leap = 1 if second == 60 else 0
    try:
        moment = datetime(year, month, day, hour, minute, second - leap, tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(f"impossible date in timestamp {text[:40]!r}") from exc
    seconds = (moment - _EPOCH) // timedelta(seconds=1) + leap - offset * 60
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0"))


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
        return value * 1_000_000_000
    if not math.isfinite(value) or value < 0 or value > 1e12:
        raise DecodeError(f"timestamp out of range: {value!r}")
    # Floats near 1.7e9 are exact to ~0.2 µs: round to µs so 1.123 s stays 1_123_000_000 ns.
    return round(value * 1_000_000) * 1000
