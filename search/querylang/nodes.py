"""The query AST: small frozen dataclasses, compared by value (the round-trip test relies on it).

Atoms split into two kinds, because the SQL side treats them differently:
container-level atoms (`ContainerIs`, `LabelIs`, `MetaIs`) describe a row of the small
`containers` table and are resolved there first; line-level atoms describe a row of `logs`.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class Text:
    """Case-insensitive substring of the line (bare word or "quoted phrase")."""

    value: str


@dataclass(frozen=True, slots=True)
class Regex:
    """`/pattern/` or `/pattern/i`; `pattern` is the source text, already checked by regex.translate."""

    pattern: str
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class ContainerIs:
    """`container:VALUE`: the name equals VALUE or the id starts with it; with `*`, a glob on either."""

    value: str


@dataclass(frozen=True, slots=True)
class LabelIs:
    """`label:KEY=GLOB`, or `label:KEY` (value None) for "the label is set"."""

    key: str
    value: str | None


MetaField = Literal["image", "tenant", "service", "host"]


@dataclass(frozen=True, slots=True)
class MetaIs:
    """`image:`, `tenant:`, `service:`, `host:` with a case-sensitive glob (`*` = any run)."""

    field: MetaField
    value: str


@dataclass(frozen=True, slots=True)
class StreamIs:
    stream: Literal["stdout", "stderr"]


CompareOp = Literal["=", "!=", ">", ">=", "<", "<="]


@dataclass(frozen=True, slots=True)
class LevelIs:
    """Compares "importance", not the number: `level>=warn` means severity <= 4 (emerg is 0)."""

    op: Literal["=", ">", ">=", "<", "<="]
    severity: int


JsonKind = Literal["string", "number", "bool", "null"]


@dataclass(frozen=True, slots=True)
class JsonCmp:
    """`json.a.b<op><value>` on the line's attrs. `kind` is kept apart from `value` because
    Python says True == 1 == Decimal(1), and the AST must not."""

    path: tuple[str, ...]
    op: Literal[":", "=", "!=", ">", ">=", "<", "<="]
    kind: JsonKind
    value: str | Decimal | bool | None


@dataclass(frozen=True, slots=True)
class Duration:
    amount: int
    unit: Literal["s", "m", "h", "d", "w"]


@dataclass(frozen=True, slots=True)
class TimeBound:
    """`since:` is inclusive (ts >= bound), `until:` exclusive (ts < bound). Durations count back
    from the `now` given when the query is compiled."""

    edge: Literal["since", "until"]
    at: Duration | datetime


@dataclass(frozen=True, slots=True)
class Not:
    term: "Node"


@dataclass(frozen=True, slots=True)
class And:
    """Implicit AND. The empty And (the empty query) matches everything."""

    terms: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple["Node", ...]


Node = (
    Text | Regex | ContainerIs | LabelIs | MetaIs | StreamIs | LevelIs | JsonCmp | TimeBound | Not | And | Or
)

CONTAINER_ATOMS = (ContainerIs, LabelIs, MetaIs)


def is_container_level(node: Node) -> bool:
    """True when the node depends only on the container, so the `containers` table can answer it."""
    if isinstance(node, CONTAINER_ATOMS):
        return True
    if isinstance(node, Not):
        return is_container_level(node.term)
    if isinstance(node, And | Or):
        return all(is_container_level(t) for t in node.terms)
    return False
