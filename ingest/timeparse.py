"""Timestamps from the wire, to Unix nanoseconds, keeping all the precision the source has."""

import math
import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s*(?:([Zz])|([+-])(\d\d):?(\d\d))?$"
)
# The same grammar split at the seconds: the head (date and time) and the tail (fraction, zone).
_HEAD = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)")
_TAIL = re.compile(r"(?:[.,](\d{1,9}))?\s*(?:([Zz])|([+-])(\d\d):?(\d\d))?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # noqa: UP017
_EPOCH_ORDINAL = _EPOCH.toordinal()
_FIRST_S = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH) // timedelta(seconds=1)  # noqa: UP017


@lru_cache(maxsize=4096)
def _day_start_s(year: str, month: str, day: str) -> int:
    # date() validates exactly as datetime() did (month range, days in month, leap years).
    # Cached: a batch of lines shares a handful of days, and this is per line on HTTP push.
    return (date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL) * 86400


def rfc3339_to_ns(text: str) -> int:
    """RFC 3339 / ISO 8601 with up to 9 fractional digits; no zone means UTC. Raises ValueError."""
    text = text.strip()
    # Per pushed line: the date and time to the second repeat across a batch, so they are
    # parsed once (cached) and only the fraction and zone are read per line; the usual
    # "...:SS.fffffffffZ" without even a regex.
    if len(text) > 20 and text[19] == "." and text[-1] in "Zz":
        frac = text[20:-1]
        if len(frac) <= 9 and frac.isascii() and frac.isdigit():
            try:
                return _seconds_to(text[:19]) * 1_000_000_000 + int(frac.ljust(9, "0"))
            except ValueError:
                pass  # the full parse below names what is wrong
    tail = _TAIL.match(text, 19)
    if tail is not None and len(text) >= 19:
        try:
            seconds = _seconds_to(text[:19])
        except ValueError:
            seconds = None
        if seconds is not None:
            return _with_tail(text, seconds, *tail.groups())
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second, frac, _z, sign, oh, om = m.groups()
    return _with_tail(text, _seconds(year, month, day, hour, minute, second), frac, _z, sign, oh, om)


@lru_cache(maxsize=4096)
def _seconds_to(head: str) -> int:
    m = _HEAD.fullmatch(head)
    if not m:
        raise ValueError(head)
    return _seconds(*m.groups())


def _seconds(year: str, month: str, day: str, hour: str, minute: str, second: str) -> int:
    seconds = _day_start_s(year, month, day)
    h, mi, s = int(hour), int(minute), int(second)
    if h > 23:
        raise ValueError("hour must be in 0..23")
    if mi > 59:
        raise ValueError("minute must be in 0..59")
    if s > 59:
        raise ValueError("second must be in 0..59")
    return seconds + h * 3600 + mi * 60 + s


def _with_tail(text: str, seconds: int, frac, _z, sign, oh, om) -> int:
    if sign:
        offset = int(oh) * 3600 + int(om) * 60
        seconds = seconds - offset if sign == "+" else seconds + offset
        # Before year 1 is no instant at all; past 9999 is a real (absurd) instant that the
        # pipeline keeps aside as implausible, so only the lower edge is an error.
        if seconds < _FIRST_S:
            raise ValueError(f"timestamp out of range: {text[:40]!r}")
    nanos = int((frac or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def seconds_to_ns(value: float | int | str) -> int:
    """Unix seconds as a number or decimal string ("1767225600.123456") without float rounding."""
    text = str(value).strip()
    if "e" in text.lower():
        scaled = float(text) * 1e9
        if not math.isfinite(scaled):
            raise ValueError(f"Unix seconds out of range: {text[:40]!r}")
        return int(scaled)
    whole, _, frac = text.partition(".")
    negative = whole.startswith("-")
    ns = int(whole or "0") * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0")) * (-1 if negative else 1)
    return ns


def ns_to_rfc3339(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = _EPOCH + timedelta(seconds=seconds)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
