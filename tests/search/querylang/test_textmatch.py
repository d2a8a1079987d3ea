# ruff: noqa: RUF001 - non-ASCII look-alikes are the point of these tests
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search.querylang.textmatch import fold, glob_matches, glob_to_like, like_escape

# Marks the session as using the database, so pytest-django sets up the test database.
pytestmark = pytest.mark.django_db

ALL_CHARS = "".join(chr(cp) for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF)


def test_it_folds_every_character_as_the_database_lowers_it(pg):
    # ILIKE lowers both sides with the database's ctype; the matcher must do the same.
    pg.execute("SELECT lower(%s)", [ALL_CHARS])
    (lowered,) = pg.fetchone()
    differing = [(hex(ord(a)), b, fold(a)) for a, b in zip(ALL_CHARS, lowered, strict=True) if fold(a) != b]
    assert differing == []


def test_it_folds_whole_strings_without_context_rules(pg):
    text = "ΟΔΟΣ Σ ΣΑΣ. İstanbul ǅ"
    pg.execute("SELECT lower(%s)", [text])
    assert fold(text) == pg.fetchone()[0] == "οδοσ σ σασ. istanbul ǆ"


SAMPLE = st.text(st.sampled_from(list("aAbB%_\\*xX.éÉΣσςİi ")), max_size=8)


@settings(max_examples=300, deadline=None)
@given(SAMPLE, SAMPLE)
def test_it_escapes_like_so_that_ilike_is_a_folded_substring_test(pg, needle, haystack):
    pg.execute("SELECT %s ILIKE '%%' || %s || '%%'", [haystack, like_escape(needle)])
    assert pg.fetchone()[0] == (fold(needle) in fold(haystack))


@settings(max_examples=300, deadline=None)
@given(SAMPLE, SAMPLE)
def test_it_reads_globs_as_like_does(pg, glob, text):
    pg.execute("SELECT %s LIKE %s", [text, glob_to_like(glob)])
    assert pg.fetchone()[0] == glob_matches(glob, text)


@pytest.mark.parametrize(
    ("glob", "text", "expected"),
    [
        ("nginx*", "nginx:1.25", True),
        ("*x", "abx", True),
        ("a%b", "a%b", True),
        ("a%b", "axb", False),
        ("a_", "ab", False),
        ("*", "", True),
        ("a*", "A", False),
        ("a*b", "a\nb", True),
    ],
)
def test_it_matches_globs_literally_apart_from_the_star(glob, text, expected):
    assert glob_matches(glob, text) is expected
