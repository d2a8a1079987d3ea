"""Splits a query into tokens; each search term becomes a finished AST node here, since a
term's syntax (field, value, quoting) is decided character by character.

Token kinds: "(" ")" "-" (negation) "OR" "AND" "term" "end".
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import regex
from .errors import QueryError
from .nodes import (
    ContainerIs,
    JsonCmp,
    LabelIs,
    LevelIs,
    MetaIs,
    Node,
    Regex,
    StreamIs,
    Text,
    TimeBound,
)
from .values import LEVEL_CHOICES, parse_json_literal, parse_level, parse_time_value

MAX_QUERY_CHARS = 8000
WHITESPACE = frozenset(" \t\r\n")
# Characters that end an unquoted word or value.
WORD_END = WHITESPACE | frozenset('()"')
KEYWORDS = ("OR", "AND")

FIELD_START = re.compile(
    r"(?P<field>container|label|image|tenant|service|host|stream|since|until):"
    r"|level(?P<level_op>>=|<=|>|<|=|:)"
    r"|json\."
)
JSON_PATH = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
JSON_OPS = ("!=", ">=", "<=", ":", "=", ">", "<")
ORDERING_OPS = (">", ">=", "<", "<=")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    position: int
    node: Node | None = None


def tokens(src: str) -> Iterator[Token]:
    _check_whole(src)
    pos = 0
    while True:
        while pos < len(src) and src[pos] in WHITESPACE:
            pos += 1
        if pos == len(src):
            yield Token("end", pos)
            return
        c = src[pos]
        if c in "()":
            yield Token(c, pos)
            pos += 1
        elif c == "-":
            if pos + 1 == len(src) or src[pos + 1] in WHITESPACE or src[pos + 1] == ")":
                raise QueryError("expected a term right after '-' (quote it to search for '-')", pos + 1)
            yield Token("-", pos)
            pos += 1
        else:
            token, pos = _term(src, pos)
            _check_boundary(src, pos)
            yield token


def _check_whole(src: str) -> None:
    if len(src) > MAX_QUERY_CHARS:
        raise QueryError(f"expected a query of at most {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    for i, c in enumerate(src):
        # Postgres text can hold neither NUL nor lone surrogates, so no line can match them.
        if c == "\x00" or "\ud800" <= c <= "\udfff":
            raise QueryError("expected text without NUL or lone surrogate characters", i)


def _check_boundary(src: str, pos: int) -> None:
    if pos < len(src) and src[pos] not in WHITESPACE and src[pos] != ")":
        raise QueryError("expected a space or ')' after the term", pos)


def _term(src: str, pos: int) -> tuple[Token, int]:
    c = src[pos]
    if c == '"':
        value, end = _quoted(src, pos)
        if not value:
            raise QueryError("expected text between the quotes (an empty phrase matches everything)", pos + 1)
        return Token("term", pos, Text(value)), end
    if c == "/":
        return _regex(src, pos)
    m = FIELD_START.match(src, pos)
    if m:
        return _field(src, pos, m)
    end = _word_end(src, pos)
    word = src[pos:end]
    if word in KEYWORDS:
        return Token(word, pos), end
    return Token("term", pos, Text(word)), end


def _word_end(src: str, pos: int) -> int:
    while pos < len(src) and src[pos] not in WORD_END:
        pos += 1
    return pos


def _quoted(src: str, pos: int) -> tuple[str, int]:
    """Reads "…" starting at the quote; inside, \\" is a quote and \\\\ a backslash."""
    out: list[str] = []
    i = pos + 1
    while i < len(src):
        c = src[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < len(src) and src[i + 1] in '"\\':
            out.append(src[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    raise QueryError("expected a closing '\"' for the quote opened here", pos)


def _value(src: str, pos: int, what: str, allow_empty: bool = False) -> tuple[str, int]:
    """A field's value: a quoted string or a run of characters up to a space, paren or quote."""
    quoted = pos < len(src) and src[pos] == '"'
    if quoted:
        value, end = _quoted(src, pos)
    else:
        end = _word_end(src, pos)
        value = src[pos:end]
    if not value and not (quoted and allow_empty):
        raise QueryError(f"expected a value after '{what}'", pos)
    return value, end


def _regex(src: str, pos: int) -> tuple[Token, int]:
    # The pattern is kept as typed, except that \/ (needed to write a slash) becomes /.
    chars: list[str] = []
    offsets: list[int] = []
    i = pos + 1
    while True:
        if i >= len(src):
            raise QueryError("expected a closing '/' for the regex opened here", pos)
        c = src[i]
        if c == "/":
            break
        if c == "\\" and i + 1 < len(src):
            if src[i + 1] == "/":
                chars.append("/")
                offsets.append(i)
            else:
                chars += [c, src[i + 1]]
                offsets += [i, i + 1]
            i += 2
            continue
        chars.append(c)
        offsets.append(i)
        i += 1
    close = i
    i += 1
    flags_end = i
    while flags_end < len(src) and src[flags_end].isalpha():
        flags_end += 1
    flags = src[i:flags_end]
    if flags not in ("", "i"):
        raise QueryError("expected no flag or the flag i after the closing '/'", i)
    pattern = "".join(chars)
    try:
        regex.translate(pattern, ignore_case=bool(flags))
    except regex.RegexError as e:
        at = offsets[e.offset] if e.offset < len(offsets) else close
        raise QueryError(f"invalid regex: {e.message}", at) from None
    return Token("term", pos, Regex(pattern, bool(flags))), flags_end


def _field(src: str, pos: int, m: re.Match) -> tuple[Token, int]:
    start = m.end()
    field = m.group("field")
    if field is None and m.group("level_op") is None:
        return _json(src, pos, start)
    if field is None:
        op: Any = "=" if m.group("level_op") in (":", "=") else m.group("level_op")
        value, end = _value(src, start, src[pos:start])
        severity = parse_level(value)
        if severity is None:
            raise QueryError(f"expected {LEVEL_CHOICES}", start)
        return Token("term", pos, LevelIs(op, severity)), end
    value, end = _value(src, start, field + ":")
    node: Node
    if field == "container":
        node = ContainerIs(value)
    elif field == "label":
        key, eq, glob = value.partition("=")
        if not key:
            raise QueryError("expected a label name before '='", start)
        if eq and not glob:
            raise QueryError("expected a value after '=' (use label:NAME to ask whether it is set)", end)
        node = LabelIs(key, glob if eq else None)
    elif field == "stream":
        if value not in ("stdout", "stderr"):
            raise QueryError("expected stdout or stderr", start)
        node = StreamIs(value)  # type: ignore[arg-type]
    elif field in ("since", "until"):
        at = parse_time_value(value)
        if at is None:
            raise QueryError(
                "expected a duration like 30m, 2h, 7d (at most 100 years) "
                "or a time like 2026-11-26T10:00:00Z",
                start,
            )
        node = TimeBound(field, at)  # type: ignore[arg-type]
    else:
        node = MetaIs(field, value)  # type: ignore[arg-type]
    return Token("term", pos, node), end


def _json(src: str, pos: int, start: int) -> tuple[Token, int]:
    m = JSON_PATH.match(src, start)
    if m is None:
        raise QueryError("expected a key after 'json.' (letters, digits, _ and -, joined by dots)", start)
    path = tuple(m.group(0).split("."))
    op_at = m.end()
    op = next((o for o in JSON_OPS if src.startswith(o, op_at)), None)
    if op is None:
        raise QueryError("expected one of : = != > >= < <= after the json path", op_at)
    value_at = op_at + len(op)
    quoted = value_at < len(src) and src[value_at] == '"'
    raw, end = _value(src, value_at, src[pos:value_at], allow_empty=True)
    kind: Any
    value: Any
    if quoted:
        kind, value = "string", raw
    else:
        try:
            kind, value = parse_json_literal(raw)
        except ValueError as e:
            raise QueryError(str(e), value_at) from None
    if op in ORDERING_OPS and kind != "number":
        raise QueryError(f"expected a number after '{op}'", value_at)
    return Token("term", pos, JsonCmp(path, op, kind, value)), end  # type: ignore[arg-type]
