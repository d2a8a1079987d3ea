"""RFC 3339 timestamps with nanoseconds, as Go writes them and as Logsite's API returns them.

datetime only keeps microseconds, so the fraction is handled as text to keep all nine digits.
"""

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?([Zz]|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_rfc3339_ns(text: str) -> int:
    """Unix nanoseconds; raises ValueError on anything that is not RFC 3339."""
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7) or "", m.group(8)
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    whole = datetime(year, month, day, hour, minute, second, tzinfo=UTC) - offset
    delta = whole - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def format_rfc3339_ns(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    whole = _EPOCH + timedelta(seconds=seconds)
    return whole.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def is_go_zero_time(text: str | None) -> bool:
    """Go's zero time.Time (year 1) is how dockerd says "no bound"."""
    return not text or text.startswith("0001-01-01")
