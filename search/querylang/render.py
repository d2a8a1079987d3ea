"""to_text(): AST → the canonical query string (permalinks, saved searches).

parse(to_text(node)) == node for every AST the parser can produce; the property test in
tests/search/querylang/test_render.py holds us to that.
"""

from .lexer import FIELD_START, KEYWORDS, WORD_END
from .nodes import (
    And,
    ContainerIs,
    JsonCmp,
    LabelIs,
    LevelIs,
    MetaIs,
    Node,
    Not,
    Or,
    Regex,
    StreamIs,
    Text,
    TimeBound,
)
from .values import format_json_number, format_time_value, level_name, reads_as_json_literal


def to_text(node: Node) -> str:
    if isinstance(node, And):
        return " ".join(_operand(t, inside=And) for t in node.terms)
    if isinstance(node, Or):
        return " OR ".join(_operand(t, inside=Or) for t in node.terms)
    if isinstance(node, Not):
        inner = node.term
        return "-" + (f"({to_text(inner)})" if isinstance(inner, And | Or) else to_text(inner))
    return _atom(node)


def _operand(node: Node, inside: type) -> str:
    # An And directly inside an Or needs no parentheses (AND binds tighter); every other
    # nesting of And/Or does, so that the tree reads back with the same shape.
    if isinstance(node, Or) or (isinstance(node, And) and inside is And):
        return f"({to_text(node)})"
    return to_text(node)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_plain(text: str) -> bool:
    return bool(text) and not any(c in WORD_END for c in text)


def _word(text: str) -> str:
    bare = (
        _is_plain(text) and text[0] not in "-/" and text not in KEYWORDS and FIELD_START.match(text) is None
    )
    return text if bare else quote(text)


def _value(text: str) -> str:
    return text if _is_plain(text) else quote(text)


def _atom(node: Node) -> str:
    if isinstance(node, Text):
        return _word(node.value)
    if isinstance(node, Regex):
        return "/" + _escape_slashes(node.pattern) + "/" + ("i" if node.ignore_case else "")
    if isinstance(node, ContainerIs):
        return "container:" + _value(node.value)
    if isinstance(node, LabelIs):
        return "label:" + _value(node.key if node.value is None else f"{node.key}={node.value}")
    if isinstance(node, MetaIs):
        return f"{node.field}:" + _value(node.value)
    if isinstance(node, StreamIs):
        return "stream:" + node.stream
    if isinstance(node, LevelIs):
        return ("level:" if node.op == "=" else "level" + node.op) + level_name(node.severity)
    if isinstance(node, JsonCmp):
        return "json." + ".".join(node.path) + node.op + _json_value(node)
    if isinstance(node, TimeBound):
        return f"{node.edge}:" + format_time_value(node.at)
    raise TypeError(f"not a query node: {node!r}")


def _json_value(node: JsonCmp) -> str:
    if node.kind == "number":
        return format_json_number(node.value)  # type: ignore[arg-type]
    if node.kind == "bool":
        return "true" if node.value else "false"
    if node.kind == "null":
        return "null"
    text = str(node.value)
    return quote(text) if reads_as_json_literal(text) else _value(text)


def _escape_slashes(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append("\\/" if pattern[i] == "/" else pattern[i])
        i += 1
    return "".join(out)
