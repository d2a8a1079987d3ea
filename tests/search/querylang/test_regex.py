# ruff: noqa: RUF001 - non-ASCII look-alikes are the point of these tests
import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search.querylang.regex import CASED_BELOW, RegexError, case_variants, compile_python, translate
from search.querylang.textmatch import fold
from tests.search.querylang.strategies import regex_pattern

# Marks the session as using the database, so pytest-django sets up the test database.
pytestmark = pytest.mark.django_db

TEXTS = [
    "",
    "err",
    "ERR",
    "error 42",
    "a.c",
    "abc",
    "GET /x",
    "get /x",
    "bars",
    "x/y",
    "é",
    "ÉÉ",
    "\\",
    "%_",
    "ab",
    "]",
    "-",
    "ΣΑΣ σας",
    "ß",
    "ẞ",
    "A",
    "é",
    "(paren)",
    "$",
    "timeout",
    "Timed out",
    "k",
    "K",
    "K",
    "ſ",
    "s",
    "İ",
    "i",
    "ǅ",
    "ǆ",
    "Ǆ",
    "[",
    "{json",
    "🎉",
    "\t",
    "a\nb",
    "line\n",
    "bbb",
    "x" * 40,
]


def run_both(pg, pattern, ignore_case, texts):
    portable = translate(pattern, ignore_case)
    pg.execute(
        "SELECT t ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n", [portable, texts]
    )
    in_sql = [r[0] for r in pg.fetchall()]
    in_python = [compile_python(portable).search(t) is not None for t in texts]
    return in_sql, in_python


@settings(max_examples=400, deadline=None)
@given(
    regex_pattern,
    st.booleans(),
    st.lists(
        st.text(st.sampled_from(list("errabcGET /xyéÉ\\%_]-ΣσßAkKſsİiǅǆ$\n{")), max_size=10), max_size=8
    ),
)
def test_it_makes_postgres_and_python_agree(pg, pattern, ignore_case, extra):
    in_sql, in_python = run_both(pg, pattern, ignore_case, TEXTS + extra)
    assert in_sql == in_python


@pytest.mark.parametrize(
    ("pattern", "ignore_case", "text", "expected"),
    [
        ("s$", False, "lines\n", False),  # Python's bare $ would match before the newline
        ("a.b", False, "a\nb", True),  # . spans newlines, as in Postgres
        ("\\d", False, "٣", False),  # \d is ASCII only
        ("\\w", False, "é", False),
        ("err", True, "ERR", True),
        ("s", True, "ſ", False),  # re.IGNORECASE would say True; Postgres' ~* says False
        ("ß", True, "ẞ", True),  # same lowercase, as for word search
        ("k", True, "\u212a", True),  # KELVIN SIGN lowercases to k
        ("i", True, "İ", True),
        ("ǅ", True, "Ǆ", True),
        ("[a-c]+x", True, "BCx", True),
        ("[^a-z]", True, "A", False),
        ("x{2,3}", False, "xx", True),
        ("^GET\\ /", False, "GET /x", True),
        ("a??b", False, "ab", True),
    ],
)
def test_it_defines_the_subset(pg, pattern, ignore_case, text, expected):
    in_sql, in_python = run_both(pg, pattern, ignore_case, [text])
    assert in_sql == in_python == [expected]


@pytest.mark.parametrize(
    ("pattern", "offset", "message"),
    [
        ("(?=a)", 0, "expected '(' or '(?:'"),
        ("(?<!a)b", 0, "expected '(' or '(?:'"),
        ("(?P<n>a)", 0, "expected '(' or '(?:'"),
        ("(?i)a", 0, "expected '(' or '(?:'"),
        ("(a)\\1", 3, "unsupported escape \\1"),
        ("\\bword", 0, "unsupported escape \\b"),
        ("\\y", 0, "unsupported escape \\y"),
        ("\\p{L}", 0, "unsupported escape \\p"),
        ("[[:alpha:]]", 1, "expected \\[ for a literal '['"),
        ("[\\D]", 1, "expected \\d, not \\D"),
        ("a{256}", 1, "expected a repeat count of at most 255"),
        ("a{3,2}", 1, "expected the second count"),
        ("a{x}", 1, "expected a count like {2}"),
        ("*a", 0, "expected something to repeat"),
        ("^*", 0, "expected something to repeat"),
        ("a*+", 2, "expected one quantifier"),
        ("(a*)*", 0, "expected no quantifier inside a repeated group"),
        ("(a|aa)+", 0, "expected a bounded count"),
        ("\\x0", 0, "expected 2 hex digits"),
        ("\\x00", 0, "expected a character that can occur"),
        ("[b-a]", 2, "expected a range in order"),
        ("[a", 0, "expected ']'"),
        ("[]", 1, "expected a character class"),
        ("(", 1, "expected ')'"),
        ("a)", 1, "unmatched ')'"),
        ("\\", 0, "expected a character after"),
        ("x" * 1001, 0, "expected a pattern of at most 1000"),
    ],
)
def test_it_rejects_what_the_engines_disagree_on(pattern, offset, message):
    with pytest.raises(RegexError) as info:
        translate(pattern)
    assert info.value.offset == offset
    assert info.value.message.startswith(message), info.value.message


def test_it_writes_patterns_python_compiles_without_warnings():
    # Python warns (FutureWarning) about "[[" and set operations; the output must never trigger that.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for piece in ["[\\]\\-]", "[a-z&&]", "\\w+", "[^\\\\]", "[~-]", "[|]"]:
            re.compile(translate(piece, True))


def test_it_knows_every_character_that_has_case():
    above = "".join(chr(cp) for cp in range(CASED_BELOW, 0x110000))
    assert fold(above) == above
    # And the classes agree with a plain scan below the limit.
    plain = {cp for cp in range(1, CASED_BELOW) if not 0xD800 <= cp <= 0xDFFF and fold(chr(cp)) != chr(cp)}
    assert plain <= {cp for cp in range(1, CASED_BELOW) if len(case_variants(chr(cp))) > 1}
    assert case_variants("k") == (ord("K"), ord("k"), 0x212A)
