"""Reading and writing the typed values that follow a field: levels, times, JSON literals.

Kept beside each other so that to_text writes exactly what the lexer reads back.
"""

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from ingest.levels import NAME_BY_SEVERITY, SEVERITY_BY_NAME

from .nodes import Duration, JsonKind

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_SECONDS = 100 * 365 * 86400
_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:\d{2})?)?"
)
# JSON's number grammar; anything else after json.x= is a string.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
# Postgres' numeric holds far more, but a bound keeps every accepted number representable there.
MAX_NUMBER_EXPONENT = 1000

LEVEL_CHOICES = "a level name (emerg, alert, crit, error, warn, notice, info, debug) or 0-7"


def parse_level(text: str) -> int | None:
    if len(text) == 1 and text in "01234567":
        return int(text)
    return SEVERITY_BY_NAME.get(text.lower())


def level_name(severity: int) -> str:
    return NAME_BY_SEVERITY[severity]


def parse_time_value(text: str) -> Duration | datetime | None:
    """A duration (`90m`, `2h`, `7d`) or an RFC 3339 time; no zone means UTC. None if neither."""
    m = _DURATION.fullmatch(text)
    if m:
        duration = Duration(int(m.group(1)), m.group(2))  # type: ignore[arg-type]
        if duration.amount * UNIT_SECONDS[duration.unit] > MAX_DURATION_SECONDS:
            return None
        return duration
    m = _TIME.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])  # Postgres keeps microseconds
    tz = UTC
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset >= timedelta(hours=24):
            return None
        tz = timezone(sign * offset)
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tz
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def format_time_value(at: Duration | datetime) -> str:
    if isinstance(at, Duration):
        return f"{at.amount}{at.unit}"
    at = at.astimezone(UTC)
    text = f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
    if at.microsecond:
        text += f".{at.microsecond:06d}"
    return text + "Z"


def resolve_time(at: Duration | datetime, now: datetime) -> datetime:
    if isinstance(at, Duration):
        return now - timedelta(seconds=at.amount * UNIT_SECONDS[at.unit])
    return at


def parse_json_literal(text: str) -> tuple[JsonKind, str | Decimal | bool | None]:
    """An unquoted value after json.x<op>: a number, true, false, null, or else a string.

    Raises ValueError for a number too large or small for Postgres' numeric."""
    if _NUMBER.fullmatch(text):
        number = Decimal(text)
        if abs(number.adjusted()) > MAX_NUMBER_EXPONENT:
            raise ValueError(
                f"expected a number between 1e-{MAX_NUMBER_EXPONENT} and 1e{MAX_NUMBER_EXPONENT}"
            )
        return "number", number
    if text in ("true", "false"):
        return "bool", text == "true"
    if text == "null":
        return "null", None
    return "string", text


def reads_as_json_literal(text: str) -> bool:
    """True when `text` left unquoted would not read back as the string `text`."""
    return text in ("true", "false", "null") or _NUMBER.fullmatch(text) is not None


def format_json_number(number: Decimal) -> str:
    return str(number)
