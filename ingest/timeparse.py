"""Timestamps from the wire, to Unix nanoseconds, keeping all the precision the source has."""

import re
from datetime import datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s*(?:([Zz])|([+-])(\d\d):?(\d\d))?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # noqa: UP017


def rfc3339_to_ns(text: str) -> int:
    """RFC 3339 / ISO 8601 with up to 9 fractional digits; no zone means UTC. Raises ValueError."""
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second, frac, _z, sign, oh, om = m.groups()
    base = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)  # noqa: UP017
    seconds = (base - _EPOCH) // timedelta(seconds=1)
    if sign:
        # Applied to the second count, not the datetime: 9999-12-31T23:59-01:00 is a valid
        # text whose UTC instant lies past datetime's range (OverflowError, not ValueError).
        offset = int(oh) * 3600 + int(om) * 60
        seconds += -offset if sign == "+" else offset
    nanos = int((frac or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def seconds_to_ns(value: float | int | str) -> int:
    """Unix seconds as a number or decimal string ("1767225600.123456") without float rounding."""
    text = str(value).strip()
    if "e" in text.lower():
        try:
            return int(float(text) * 1e9)
        except OverflowError as e:  # 1e300 seconds is a number, but not a time
            raise ValueError(f"Unix seconds out of range: {text[:40]}") from e
    whole, _, frac = text.partition(".")
    negative = whole.startswith("-")
    ns = int(whole or "0") * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0")) * (-1 if negative else 1)
    return ns


def ns_to_rfc3339(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = _EPOCH + timedelta(seconds=seconds)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
