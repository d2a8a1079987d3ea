from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search.querylang import QueryError, parse, to_text
from search.querylang.nodes import (
    And,
    ContainerIs,
    Duration,
    JsonCmp,
    LabelIs,
    LevelIs,
    MetaIs,
    Not,
    Or,
    Regex,
    StreamIs,
    Text,
    TimeBound,
)


def test_it_parses_the_example_from_the_issue():
    node = parse(
        "container:web-1 label:com.docker.compose.service=api image:nginx* stream:stderr level>=warn "
        'tenant:acme service:api "exact phrase" word /time(out|d out)/ -healthcheck json.status>=500 '
        "since:2h until:2026-11-26T10:00"
    )
    assert node == And(
        (
            ContainerIs("web-1"),
            LabelIs("com.docker.compose.service", "api"),
            MetaIs("image", "nginx*"),
            StreamIs("stderr"),
            LevelIs(">=", 4),
            MetaIs("tenant", "acme"),
            MetaIs("service", "api"),
            Text("exact phrase"),
            Text("word"),
            Regex("time(out|d out)"),
            Not(Text("healthcheck")),
            JsonCmp(("status",), ">=", "number", Decimal(500)),
            TimeBound("since", Duration(2, "h")),
            TimeBound("until", datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),
        )
    )


def test_it_treats_an_empty_query_as_match_all():
    assert parse("") == And(())
    assert parse("  \t ") == And(())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a b OR c", Or((And((Text("a"), Text("b"))), Text("c")))),
        ("a (b OR c)", And((Text("a"), Or((Text("b"), Text("c")))))),
        ("a AND b", And((Text("a"), Text("b")))),
        ("-(a OR b)", Not(Or((Text("a"), Text("b"))))),
        ("--a", Not(Not(Text("a")))),
        ("or and", And((Text("or"), Text("and")))),
        ('"OR"', Text("OR")),
        ("web-1", Text("web-1")),
        ("http://x.org/a", Text("http://x.org/a")),
        ("user_id:42", Text("user_id:42")),
        ('"say \\"hi\\" \\\\ \\n"', Text('say "hi" \\ \\n')),
        ("a\\b", Text("a\\b")),
        ("levels:3", Text("levels:3")),
    ],
)
def test_it_parses_structure_and_words(query, expected):
    assert parse(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("container:abc*", ContainerIs("abc*")),
        ('container:"my app"', ContainerIs("my app")),
        ("label:env", LabelIs("env", None)),
        ("label:a=b=c", LabelIs("a", "b=c")),
        ('label:"k=v w"', LabelIs("k", "v w")),
        ("host:h1", MetaIs("host", "h1")),
        ("stream:stdout", StreamIs("stdout")),
        ("level:error", LevelIs("=", 3)),
        ("level=ERR", LevelIs("=", 3)),
        ("level>=warning", LevelIs(">=", 4)),
        ("level<3", LevelIs("<", 3)),
        ("level>debug", LevelIs(">", 7)),
        ("/a\\/b/i", Regex("a/b", True)),
        ("/a\\\\/", Regex("a\\\\")),
        ("json.http.status:500", JsonCmp(("http", "status"), ":", "number", Decimal(500))),
        ('json.code="500"', JsonCmp(("code",), "=", "string", "500")),
        ("json.code=E42", JsonCmp(("code",), "=", "string", "E42")),
        ("json.ok!=true", JsonCmp(("ok",), "!=", "bool", True)),
        ("json.a-b.0=null", JsonCmp(("a-b", "0"), "=", "null", None)),
        ('json.msg=""', JsonCmp(("msg",), "=", "string", "")),
        ("json.t<=-1.5e3", JsonCmp(("t",), "<=", "number", Decimal("-1500"))),
        ("since:90m", TimeBound("since", Duration(90, "m"))),
        ("until:1w", TimeBound("until", Duration(1, "w"))),
        ("since:2026-11-26", TimeBound("since", datetime(2026, 11, 26, tzinfo=UTC))),
        (
            "since:2026-11-26T10:00:01.1234567+02:00",
            TimeBound("since", datetime(2026, 11, 26, 10, 0, 1, 123456, tzinfo=timezone(timedelta(hours=2)))),
        ),
    ],
)
def test_it_parses_fields(query, expected):
    assert parse(query) == expected


@pytest.mark.parametrize(
    ("query", "position", "expected"),
    [
        ("a (b", 4, "expected ')'"),
        ("a)", 1, "unexpected ')'"),
        ("()", 1, "expected a search term"),
        ("a OR", 4, "expected a search term"),
        ("OR a", 0, "expected a search term before 'OR'"),
        ("a - b", 3, "expected a term right after '-'"),
        ('say "hi', 4, "expected a closing '\"'"),
        ('""', 1, "expected text between the quotes"),
        ('a"b"', 1, "expected a space or ')'"),
        ("container:", 10, "expected a value after 'container:'"),
        ("stream:out", 7, "expected stdout or stderr"),
        ("level>=loud", 7, "expected a level name"),
        ("since:yesterday", 6, "expected a duration"),
        ("since:2026-13-01", 6, "expected a duration"),
        ("until:999999w", 6, "expected a duration"),
        ("label:=x", 6, "expected a label name"),
        ("label:a=", 8, "expected a value after '='"),
        ("json.", 5, "expected a key after 'json.'"),
        ("json.a", 6, "expected one of : = != > >= < <="),
        ("json.a>x", 7, "expected a number after '>'"),
        ("json.a>1e2000", 7, "expected a number between"),
        ("json.a=", 7, "expected a value after 'json.a='"),
        ("/abc", 0, "expected a closing '/'"),
        ("/abc/x", 5, "expected no flag or the flag i"),
        ("/(?<=a)b/", 1, "invalid regex: expected '(' or '(?:'"),
        ("x /a\\bc/", 4, "invalid regex: unsupported escape \\b"),
        ("/ab**/", 4, "invalid regex: expected one quantifier"),
        ("/(a+)+/", 1, "invalid regex: expected no quantifier inside a repeated group"),
        ("/a/b/", 3, "expected no flag or the flag i"),
        ("a\x00b", 1, "expected text without NUL"),
        ("(" * 41 + "a" + ")" * 41, 40, "expected at most 40 nested"),
        ("x" * 8001, 8000, "expected a query of at most 8000 characters"),
    ],
)
def test_it_reports_what_was_expected_and_where(query, position, expected):
    with pytest.raises(QueryError) as info:
        parse(query)
    assert info.value.position == position, info.value
    assert info.value.message.startswith(expected), info.value.message
    assert f"at character {position + 1}" in str(info.value)


@settings(max_examples=800, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_it_reads_any_text_or_raises_query_error(text):
    assert_reads_or_explains(text)


@settings(max_examples=800, deadline=None)
@given(st.text(st.sampled_from(list('ab -()"/\\:=<>!*.ORANDjsonlevelcontainer0123456789xi\t')), max_size=30))
def test_it_reads_query_shaped_noise_or_raises_query_error(text):
    assert_reads_or_explains(text)


def assert_reads_or_explains(text):
    """Any text either parses, and then survives a round trip, or raises QueryError with a
    position inside the text; never another exception."""
    try:
        node = parse(text)
    except QueryError as e:
        error = e
    else:
        assert parse(to_text(node)) == node
        return
    assert 0 <= error.position <= len(text)
