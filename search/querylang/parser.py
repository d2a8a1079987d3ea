"""parse(): query text → AST. The grammar is documented in docs/query-language.md.

    query   := or_expr end
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*        -- terms side by side are ANDed
    unary   := "-" unary | "(" or_expr ")" | term

AND binds tighter than OR, so `a b OR c` is `(a b) OR c`. The empty query is `And(())`,
which matches every line.
"""

from collections.abc import Iterator

from .errors import QueryError
from .lexer import Token, tokens
from .nodes import And, Node, Not, Or

MAX_DEPTH = 40


def parse(src: str) -> Node:
    parser = _Parser(tokens(src))
    if parser.peek.kind == "end":
        return And(())
    node = parser.or_expr()
    if parser.peek.kind == ")":
        raise QueryError("unexpected ')': no '(' is open here", parser.peek.position)
    return node


class _Parser:
    def __init__(self, stream: Iterator[Token]):
        self.stream = stream
        self.peek = next(stream)
        self.depth = 0

    def advance(self) -> Token:
        token = self.peek
        if token.kind != "end":
            self.peek = next(self.stream)
        return token

    def or_expr(self) -> Node:
        terms = [self.and_expr()]
        while self.peek.kind == "OR":
            self.advance()
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Node:
        terms = [self.unary()]
        while self.peek.kind not in ("OR", ")", "end"):
            if self.peek.kind == "AND":
                self.advance()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def unary(self) -> Node:
        token = self.advance()
        if token.kind == "term":
            assert token.node is not None
            return token.node
        if token.kind in ("-", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"expected at most {MAX_DEPTH} nested '(' and '-'", token.position)
            if token.kind == "-":
                node: Node = Not(self.unary())
            else:
                node = self.or_expr()
                if self.peek.kind != ")":
                    raise QueryError("expected ')' to close the '(' opened earlier", self.peek.position)
                self.advance()
            self.depth -= 1
            return node
        if token.kind == "end":
            raise QueryError("expected a search term", token.position)
        raise QueryError(f"expected a search term before {token.kind!r}", token.position)
