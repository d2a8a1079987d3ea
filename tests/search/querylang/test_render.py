from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings

from search.querylang import parse, to_text
from search.querylang.nodes import And, JsonCmp, Not, Or, Text, TimeBound
from tests.search.querylang.strategies import any_node


@settings(max_examples=600, deadline=None)
@given(any_node())
def test_it_round_trips_generated_asts(node):
    assert parse(to_text(node)) == node


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (And(()), ""),
        (Or((And((Text("a"), Text("b"))), Text("c"))), "a b OR c"),
        (And((Text("a"), Or((Text("b"), Text("c"))))), "a (b OR c)"),
        (And((And((Text("a"), Text("b"))), Text("c"))), "(a b) c"),
        (Not(Or((Text("a"), Text("b")))), "-(a OR b)"),
        (Text("OR"), '"OR"'),
        (Text("-a"), '"-a"'),
        (Text('say "hi"'), '"say \\"hi\\""'),
        (Text("container:x"), '"container:x"'),
        (JsonCmp(("code",), "=", "string", "500"), 'json.code="500"'),
        (JsonCmp(("n",), ">", "number", Decimal("1e3")), "json.n>1E+3"),
        (
            TimeBound("until", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
            "until:2026-01-02T03:04:05.000006Z",
        ),
    ],
)
def test_it_writes_canonical_text(node, text):
    assert to_text(node) == text


def test_it_normalises_spellings():
    assert to_text(parse("level=err  level>=WARNING AND json.a:1")) == "level:error level>=warn json.a:1"
