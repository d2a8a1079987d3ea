"""The target's line template: `{container_name}: {line}` and the like.

Parsed once into literal and field pieces; rendering never goes through str.format, so a
template cannot reach attributes (`{line.__class__}`) or format specs. Unknown fields are an
error when the target is saved, not when lines are sent.
"""

import string
import time
from collections.abc import Callable

from ingest.levels import NAME_BY_SEVERITY

FIELDS = (
    "line",
    "ts",
    "tenant",
    "service",
    "container_id",
    "container_name",
    "image",
    "host",
    "stream",
    "level",
)


def _ts(row) -> str:
    seconds, ns = divmod(row.ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns:09d}Z"


def _level(row) -> str:
    return NAME_BY_SEVERITY.get(row.level, "") if row.level is not None else ""


def _text(name: str) -> Callable:
    def get(row) -> str:
        value = getattr(row, name)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")

    return get


_GETTERS = {name: _text(name) for name in FIELDS} | {"ts": _ts, "level": _level}


def parse(template: str) -> list[tuple[str, str | None]]:
    """[(literal, field or None)…]; raises ValueError naming what is wrong."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"template: {e} (write {{{{ and }}}} for literal braces)") from e
    pieces = []
    for literal, field, spec, conversion in parts:
        if field is not None:
            if spec or conversion:
                raise ValueError(
                    f"template field {{{field}}}: format specs and conversions are not supported"
                )
            if field not in _GETTERS:
                raise ValueError(f"template field {{{field}}} is unknown; use one of {', '.join(FIELDS)}")
        pieces.append((literal, field))
    return pieces


def template_error(template: str) -> str | None:
    try:
        parse(template)
    except ValueError as e:
        return str(e)
    return None


def compile_template(template: str) -> Callable | None:
    """row -> str, or None when the template is empty (send the line as stored)."""
    if not template:
        return None
    pieces = [(literal, _GETTERS[field] if field else None) for literal, field in parse(template)]

    def render(row) -> str:
        out = []
        for literal, get in pieces:
            out.append(literal)
            if get is not None:
                out.append(get(row))
        return "".join(out)

    return render
