"""Turning decoded strings into values the pipeline and Postgres can take.

Decoders that go through `str` (JSON, msgpack with surrogateescape) can hold lone
surrogates, and any protocol can carry NUL. Postgres `text`/`jsonb` accept neither, and one
such value would fail a whole COPY batch, so every decoder passes its output through here.
"""

import re

from .errors import DecodeError

# Deeper structures are refused: they serve no log and would exhaust Python's recursion limit.
MAX_DEPTH = 64

# Lone surrogates come from surrogateescape (undecodable bytes) or from JSON "\udXXX" escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def line_value(text: str) -> str | bytes:
    """A log line: keep undecodable input as bytes so the pipeline flags it and keeps the raw bytes."""
    if _UNSTORABLE.search(text) is None:
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # Surrogates that did not come from bytes (JSON escapes): the bytes are invalid UTF-8
        # either way, and the pipeline replaces them.
        return text.encode("utf-8", "surrogatepass")


def _clean_str(text: str) -> str:
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "\u2400" if m.group() == "\x00" else "\ufffd", text)


def clean_str(value: str | bytes) -> str:
    """A metadata string (name, host, id): lossy, never raises."""
    if isinstance(value, bytes):
        return _clean_str(value.decode("utf-8", "replace"))
    return _clean_str(value)


def ascii_or_clean(value: bytes) -> str:
    """clean_str for bytes, with the common case (ASCII without NUL, nothing to clean) made cheap."""
    if value.isascii() and b"\x00" not in value:
        return value.decode("ascii")
    return clean_str(value)


def clean_value(value, _depth: int = 0):
    """A structured value for attrs (jsonb): strings cleaned at any depth, bytes made text."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, bytes):
        return clean_str(value)
    if _depth > MAX_DEPTH:
        raise DecodeError(f"structure nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {clean_key(k): clean_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v, _depth + 1) for v in value]
    if isinstance(value, float) and value != value:  # NaN has no JSON form
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_str(str(value))


def clean_key(key) -> str:
    if isinstance(key, str | bytes):
        return clean_str(key)
    return clean_str(str(key))
