"""What each driver kind accepts in `Driver.options`: names, types, defaults, limits.

One table for the admin form (validation and help), the ingest receivers (they may call
`clean_options` or read `defaults`), and the "connect a container" snippets. An option that
is not in its kind's table is an error, never silently ignored (goodrain's zmq driver did the
same with its log-opts).

Transport choices are not options: they are part of the bind address (`udp://`, `tcp://`, or a
bare `host:port` for both where the kind supports both), see ingest/binds.py.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.text import slugify

KiB = 1024
MiB = 1024 * KiB


class OptionsError(ValueError):
    """Every problem found, one message each, so a form can show them all at once."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Option:
    name: str
    type: str  # "int", "size" (bytes; accepts 64k, 16m), "float", "bool", "choice", "str", "slugs"
    default: object
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[object], None] | None = None


def _tag_template(value: object) -> None:
    text = str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > 256:
        raise ValueError("must be at most 256 characters")
    if text.count("{{") != text.count("}}"):
        raise ValueError("has unbalanced {{ }}")


def _size(name: str, default: int, low: int, high: int, help: str) -> Option:
    return Option(name, "size", default, help, minimum=low, maximum=high)


# Every kind whose records can carry container labels may let a label choose the tenant.
TENANT_LABEL = "logsite.tenant"
_TENANT_LABEL_OPTIONS = (
    Option(
        "tenant_label",
        "bool",
        False,
        f"take the tenant from the container label `{TENANT_LABEL}` when a line carries it",
    ),
    Option(
        "tenant_label_allow",
        "slugs",
        "",
        "comma-separated tenant slugs the label may choose (empty: any; required for tenant admins)",
    ),
)
_TAG = Option(
    "tag_template",
    "str",
    "{{.ID}}",
    "the `tag` log-opt the containers use, so the receiver can read the container id or name back",
    check=_tag_template,
)
_PARTIAL_TIMEOUT = Option(
    "partial_timeout_s",
    "float",
    5.0,
    "seconds a line split by dockerd (over 16 KiB) waits for its next fragment",
    minimum=0.1,
    maximum=300,
)

OPTIONS: dict[str, tuple[Option, ...]] = {
    "zmq": (
        Option(
            "rcvhwm",
            "int",
            1_000_000,
            "ZeroMQ receive high-water mark in messages (the libzmq default of 1000 drops under load)",
            minimum=0,
            maximum=100_000_000,
        ),
    ),
    "http": _TENANT_LABEL_OPTIONS,
    "plugin": _TENANT_LABEL_OPTIONS,
    "gelf": (
        _size("max_message_bytes", 1 * MiB, 1 * KiB, 64 * MiB, "largest GELF message after decompression"),
        Option(
            "chunk_timeout_s",
            "float",
            5.0,
            "seconds an incomplete chunked UDP message is kept",
            minimum=0.1,
            maximum=300,
        ),
        _size(
            "max_pending_bytes",
            32 * MiB,
            1 * MiB,
            1024 * MiB,
            "memory for incomplete chunked messages",
        ),
        *_TENANT_LABEL_OPTIONS,
    ),
    "fluentd": (
        _TAG,
        _size("max_message_bytes", 16 * MiB, 1 * KiB, 256 * MiB, "largest forward-protocol message"),
        _size(
            "max_decompressed_bytes",
            64 * MiB,
            1 * MiB,
            256 * MiB,
            "largest decompressed CompressedPackedForward chunk",
        ),
        _PARTIAL_TIMEOUT,
        Option(
            "ack_gap_ms",
            "int",
            50,
            "least time between two acks on one connection when a second writer shares it "
            "(Docker's stdout and stderr copiers): one client read must never carry both",
            minimum=0,
            maximum=10_000,
        ),
        Option(
            "shared_idle_close_s",
            "float",
            2.0,
            "seconds of silence after which a connection shared by two writers is closed, so a "
            "writer still waiting for an ack its neighbour read re-sends at once",
            minimum=0.1,
            maximum=3600,
        ),
        *_TENANT_LABEL_OPTIONS,
    ),
    "syslog": (
        _TAG,
        _size("max_message_bytes", 1 * MiB, 1 * KiB, 64 * MiB, "largest syslog message"),
    ),
    "splunk": (_TAG, *_TENANT_LABEL_OPTIONS),
    "journal": (
        Option(
            "auth",
            "choice",
            "token",
            "`token`: the uploader must present the driver token (Basic password or Bearer); "
            "`none`: anyone who reaches the port may upload",
            choices=("token", "none"),
        ),
        _size("max_field_bytes", 1 * MiB, 1 * KiB, 768 * MiB, "largest journal field"),
        _size("max_entry_bytes", 4 * MiB, 1 * KiB, 770 * MiB, "largest journal entry"),
        _PARTIAL_TIMEOUT,
        *_TENANT_LABEL_OPTIONS,
    ),
}


def specs(kind: str) -> dict[str, Option]:
    return {o.name: o for o in OPTIONS.get(kind, ())}


def defaults(kind: str) -> dict[str, object]:
    return {o.name: o.default for o in OPTIONS.get(kind, ())}


def effective(kind: str, options: dict) -> dict[str, object]:
    """Defaults overlaid with the stored options (which `clean_options` already validated)."""
    return {**defaults(kind), **(options or {})}


def clean_options(kind: str, options: object) -> dict:
    """Validated, typed copy of `options`; raises OptionsError listing every problem."""
    if kind not in OPTIONS:
        raise OptionsError([f"unknown driver kind {kind!r}"])
    if options in (None, ""):
        return {}
    if not isinstance(options, dict):
        raise OptionsError(["options must be a JSON object of option name to value"])
    table = specs(kind)
    errors: list[str] = []
    cleaned: dict = {}
    for name, raw in options.items():
        spec = table.get(name)
        if spec is None:
            known = ", ".join(sorted(table)) or "none"
            errors.append(f"unknown option {name!r} for a {kind} driver (known: {known})")
            continue
        try:
            cleaned[name] = _coerce(spec, raw)
        except ValueError as e:
            errors.append(f"{name}: {e}")
    if errors:
        raise OptionsError(errors)
    return cleaned


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": 1024 * MiB}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


def _coerce(spec: Option, raw: object):
    kind = spec.type
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"must be true or false, not {raw!r}")
    if kind == "choice":
        if raw not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)}, not {raw!r}")
        return raw
    if kind == "str":
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        if spec.check:
            spec.check(raw)
        return raw
    if kind == "slugs":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        slugs = [str(s).strip() for s in items if str(s).strip()]
        bad = [s for s in slugs if slugify(s) != s or len(s) > 128]
        if bad:
            raise ValueError(f"not tenant slugs: {', '.join(repr(b) for b in bad)}")
        return ",".join(slugs)
    value = _number(kind, raw)
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(f"must be at least {_fmt(spec.minimum)}, not {_fmt(value)}")
    if spec.maximum is not None and value > spec.maximum:
        raise ValueError(f"must be at most {_fmt(spec.maximum)}, not {_fmt(value)}")
    return value


def _number(kind: str, raw: object) -> int | float:
    if isinstance(raw, bool):
        raise ValueError(f"must be a number, not {raw!r}")
    if kind == "float":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number of seconds, not {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return value
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise ValueError(f"must be a whole number, not {raw!r}")
    if kind == "size":
        m = _SIZE.match(str(raw))
        if not m:
            raise ValueError(f"must be a size in bytes such as 65536, 64k or 16m, not {raw!r}")
        return int(m.group(1)) * _UNITS[m.group(2).lower()]
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"must be a whole number, not {raw!r}") from None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def tenant_label_allow(options: dict) -> list[str]:
    return [s for s in str((options or {}).get("tenant_label_allow", "")).split(",") if s]
