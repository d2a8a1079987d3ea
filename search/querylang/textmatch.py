"""Case folding, LIKE escaping and globs, written once so the matcher and the SQL agree.

`fold` reproduces PostgreSQL's `lower()` in a UTF-8 libc locale (C.UTF-8, en_US.UTF-8), which is
what `ILIKE` applies to both sides. Python's `str.lower()` differs from it in exactly two places:
U+0130 (İ) lowers to two characters instead of "i", and Σ becomes ς at the end of a word.
tests/search/querylang/test_textmatch.py checks `fold` against the database for every code point,
so a database with another ctype fails that test instead of silently disagreeing.
"""

import re
from functools import lru_cache

_SIMPLE_LOWER_FIXES = str.maketrans({"\u0130": "i", "\u03a3": "\u03c3"})


def fold(text: str) -> str:
    if "\u0130" in text or "\u03a3" in text:
        text = text.translate(_SIMPLE_LOWER_FIXES)
    return text.lower()


def like_escape(text: str) -> str:
    """Escape LIKE's wildcards (and its default escape character) so `text` matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def glob_to_like(glob: str) -> str:
    """`*` is the only wildcard; everything else is literal (and case-sensitive)."""
    return "%".join(like_escape(part) for part in glob.split("*"))


@lru_cache(maxsize=1024)
def glob_to_regex(glob: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


def glob_matches(glob: str, text: str) -> bool:
    if "*" not in glob:
        return glob == text
    return glob_to_regex(glob).fullmatch(text) is not None
