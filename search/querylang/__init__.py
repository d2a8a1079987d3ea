"""The one query language of Logsite: search box, API, CLI and live-tail filter.

    node = parse('container:web-1 level>=warn "connection reset" -healthcheck since:2h')
    to_text(node)                   # canonical text, for permalinks
    matches = compile_matcher(node) # row -> bool, for the live tail
    sql.container_sql(node, tenants) / sql.build_search_sql(node, tenants, ckeys, limit)

The grammar is in docs/query-language.md and parser.py.
"""

from .errors import QueryError
from .matcher import compile_matcher
from .nodes import Node
from .parser import parse
from .render import to_text

__all__ = ["Node", "QueryError", "compile_matcher", "parse", "to_text"]
