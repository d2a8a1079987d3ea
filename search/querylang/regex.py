"""The regex subset that PostgreSQL (ARE, `~`) and Python's `re` read the same way.

A `/…/` term must mean the same in SQL and in the live-tail matcher, so instead of handing the
user's text to two engines we parse it here and write it out again in a spelling with no
dialect differences. That gives one answer per (pattern, line) in both places:

- literals, `.` (any character, newline included), `[…]` and `[^…]` with ranges, `^` and `$`
  (start and end of the whole line), groups `(…)` / `(?:…)`, `|`, and the quantifiers
  `* + ? {m} {m,} {m,n}` (n <= 255; a trailing `?` for laziness is accepted and ignored, because
  laziness does not change *whether* a line matches);
- escapes: `\\d \\s \\w` and `\\D \\S \\W` as ASCII classes (`[0-9]`, `[ \\t\\n\\r\\f\\v]`,
  `[0-9A-Za-z_]`), `\\t \\n \\r \\f \\v`, `\\xHH`, `\\uHHHH`, and a backslash before any ASCII
  punctuation or space for that character itself.

Rejected with a clear error, because the engines disagree on them: lookahead and lookbehind,
backreferences, named groups, inline flags, `\\b` (a word boundary in Python, a backspace in
Postgres) and every other escape, POSIX classes such as `[[:alpha:]]`.

Also rejected: a quantifier on a group that contains a quantifier, and unbounded repetition of a
group with alternatives. Python's backtracking engine can take exponential time on those
(`(a+)+b`, `(a|a)*b`), and the live-tail matcher runs in the server process.

`/…/i` is done here too, not with `~*` and `re.IGNORECASE`: the two engines fold case
differently outside ASCII (Python matches the long s, U+017F, for "s"; Postgres does not).
Each pattern character is replaced by the set of characters with the same lowercase
(textmatch.fold, the same folding as word search), and both engines then match case-sensitively.
"""

import re
import string
from array import array
from bisect import bisect_left, bisect_right
from functools import lru_cache
from typing import NoReturn

from .textmatch import fold

MAX_PATTERN_CHARS = 1000
MAX_REPEAT = 255  # Postgres' RE_DUP_MAX
MAX_GROUP_DEPTH = 30

_PUNCT = frozenset(string.punctuation + " ")
_QUANTIFIER_START = frozenset("*+?{")
_ASCII_CLASSES = {
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
_CHAR_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}


class RegexError(ValueError):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


def translate(pattern: str, ignore_case: bool = False) -> str:
    """Check `pattern` and return it spelled for both engines (Python needs re.DOTALL)."""
    return _Translator(pattern, ignore_case).run()


@lru_cache(maxsize=512)
def compile_python(portable: str) -> re.Pattern:
    return re.compile(portable, re.DOTALL)


def case_variants(ch: str) -> tuple[int, ...]:
    """Code points of the characters that fold to the same lowercase as `ch`, `ch` included."""
    return _case_classes()[1].get(ord(ch), (ord(ch),))


# No character at or above this has a different lowercase (Unicode 14's last is U+1E921, Adlam);
# tests/search/querylang/test_regex.py checks that for the running Python.
CASED_BELOW = 0x1F000


@lru_cache(maxsize=1)
def _case_classes() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    # Built on first use of /i. Blocks of characters are folded at C speed and only blocks
    # that change are looked at one by one.
    groups: dict[str, set[int]] = {}
    for start in range(0, CASED_BELOW, 1024):
        if 0xD800 <= start < 0xE000:
            continue
        block = array("I", range(start, start + 1024)).tobytes().decode("utf-32-le")
        folded = fold(block)
        if folded == block:
            continue
        for ch, low in zip(block, folded, strict=True):
            if ch != low:
                groups.setdefault(low, {ord(low)}).add(ord(ch))
    members = {cp: tuple(sorted(group)) for group in groups.values() for cp in group}
    return sorted(members), members


class _Translator:
    def __init__(self, src: str, ignore_case: bool):
        self.src = src
        self.pos = 0
        self.ignore_case = ignore_case
        self.depth = 0

    def fail(self, message: str, offset: int | None = None) -> NoReturn:
        raise RegexError(message, self.pos if offset is None else offset)

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def run(self) -> str:
        if not self.src:
            self.fail("expected a pattern between the slashes")
        if len(self.src) > MAX_PATTERN_CHARS:
            self.fail(f"expected a pattern of at most {MAX_PATTERN_CHARS} characters", 0)
        out, _, _ = self.alternation()
        if self.pos < len(self.src):
            self.fail("unmatched ')'")
        return out

    # Each production returns (text, contains_quantifier, contains_alternation).
    def alternation(self) -> tuple[str, bool, bool]:
        branches = []
        quantified = False
        while True:
            text, q, alt = self.branch()
            branches.append(text)
            quantified = quantified or q
            if self.peek() != "|":
                return "|".join(branches), quantified, alt or len(branches) > 1
            self.pos += 1

    def branch(self) -> tuple[str, bool, bool]:
        out = []
        quantified = alternated = False
        while self.pos < len(self.src) and self.peek() not in "|)":
            start = self.pos
            atom, is_anchor, inner_q, inner_alt = self.atom()
            quant, unbounded = self.quantifier()
            if quant:
                if is_anchor:
                    self.fail("expected something to repeat before the quantifier", start)
                if inner_q:
                    self.fail(
                        "expected no quantifier inside a repeated group (it can take exponential time)", start
                    )
                if unbounded and inner_alt:
                    self.fail("expected a bounded count like {1,20} for a group with '|' alternatives", start)
            quantified = quantified or inner_q or bool(quant)
            alternated = alternated or inner_alt
            out.append(atom + quant)
        return "".join(out), quantified, alternated

    def quantifier(self) -> tuple[str, bool]:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.pos += 1
            quant, unbounded = c, c != "?"
        elif c == "{":
            m = re.compile(r"\{(\d{1,3})(?:(,)(\d{1,3})?)?\}").match(self.src, self.pos)
            if m is None:
                self.fail(r"expected a count like {2} or {2,5} (write \{ for a literal brace)")
            low = int(m.group(1))
            high = int(m.group(3)) if m.group(3) else None
            if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                self.fail(f"expected a repeat count of at most {MAX_REPEAT}")
            if high is not None and high < low:
                self.fail("expected the second count to be at least the first")
            self.pos = m.end()
            unbounded = m.group(2) is not None and high is None
            if m.group(2) is None:
                quant = f"{{{low}}}"
            else:
                quant = f"{{{low},}}" if unbounded else f"{{{low},{high}}}"
        else:
            return "", False
        if self.peek() == "?":  # lazy: same set of matching lines, so dropped
            self.pos += 1
        if self.peek() and self.peek() in _QUANTIFIER_START:
            self.fail("expected one quantifier, not two in a row")
        return quant, unbounded

    def atom(self) -> tuple[str, bool, bool, bool]:
        c = self.peek()
        if c == "(":
            return self.group()
        if c == "[":
            return self.bracket(), False, False, False
        if c == ".":
            self.pos += 1
            return ".", False, False, False
        if c == "^":
            self.pos += 1
            return "^", True, False, False
        if c == "$":
            self.pos += 1
            return r"\Z", True, False, False  # Python's $ also matches before a final newline
        if c in _QUANTIFIER_START:
            self.fail(
                "expected something to repeat before the quantifier"
                + (r" (write \{ for a brace)" if c == "{" else "")
            )
        if c == "\\":
            escaped = self.escape(in_class=False)
            if isinstance(escaped, str):
                return self.literal(escaped), False, False, False
            ranges, negated = escaped
            return self.emit_class(ranges, negated), False, False, False
        self.pos += 1
        return self.literal(c), False, False, False

    def group(self) -> tuple[str, bool, bool, bool]:
        start = self.pos
        self.pos += 1
        if self.peek() == "?":
            if self.src.startswith("?:", self.pos):
                self.pos += 2
            else:
                self.fail(
                    "expected '(' or '(?:' to start a group: lookaround, named groups and inline flags "
                    "are not supported (Postgres and Python differ on them)",
                    start,
                )
        self.depth += 1
        if self.depth > MAX_GROUP_DEPTH:
            self.fail(f"expected at most {MAX_GROUP_DEPTH} nested groups", start)
        inner, q, alt = self.alternation()
        self.depth -= 1
        if self.peek() != ")":
            self.fail("expected ')'")
        self.pos += 1
        return "(?:" + inner + ")", False, q, alt

    def escape(self, in_class: bool) -> str | tuple[list[tuple[int, int]], bool]:
        """A character, or (code-point ranges, negated) for \\d and friends."""
        start = self.pos
        self.pos += 1
        c = self.peek()
        if not c:
            self.fail("expected a character after '\\'", start)
        self.pos += 1
        if c.lower() in _ASCII_CLASSES:
            negated = c.isupper()
            if negated and in_class:
                self.fail(f"expected \\{c.lower()}, not \\{c}, inside [...]", start)
            return list(_ASCII_CLASSES[c.lower()]), negated
        if c in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[c]
        if c in ("x", "u"):
            width = 2 if c == "x" else 4
            digits = self.src[self.pos : self.pos + width]
            if len(digits) != width or any(d not in string.hexdigits for d in digits):
                self.fail(f"expected {width} hex digits after \\{c}", start)
            self.pos += width
            cp = int(digits, 16)
            if cp == 0 or 0xD800 <= cp <= 0xDFFF:
                self.fail("expected a character that can occur in a log line (not NUL or a surrogate)", start)
            return chr(cp)
        if c in _PUNCT:
            return c
        self.fail(f"unsupported escape \\{c}: Postgres and Python read it differently", start)

    def literal(self, ch: str) -> str:
        if self.ignore_case and len(case_variants(ch)) > 1:
            return self.emit_class([(cp, cp) for cp in case_variants(ch)], negate=False)
        return "\\" + ch if ch in _PUNCT else ch

    def bracket(self) -> str:
        start = self.pos
        self.pos += 1
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            c = self.peek()
            if not c:
                self.fail("expected ']' to close the '[' here", start)
            if c == "]":
                if first:
                    self.fail(r"expected a character class, not '[]' (write \] for a literal ])")
                self.pos += 1
                break
            if c == "[":
                self.fail(r"expected \[ for a literal '[' inside [...] (POSIX classes are not supported)")
            if c == "-" and not first and self.src[self.pos + 1 : self.pos + 2] != "]":
                self.fail(r"expected '-' only first or last inside [...] (or write \-)")
            low = self.class_char()
            if isinstance(low, list):
                ranges.extend(low)
            elif self.peek() == "-" and self.src[self.pos + 1 : self.pos + 2] not in ("]", ""):
                dash = self.pos
                self.pos += 1
                high = self.class_char()
                if isinstance(high, list):
                    self.fail("expected a single character at the end of a range", dash + 1)
                if ord(high) < ord(low):
                    self.fail(f"expected a range in order ({low}-{high} runs backwards)", dash)
                ranges.append((ord(low), ord(high)))
            else:
                ranges.append((ord(low), ord(low)))
            first = False
        return self.emit_class(ranges, negate)

    def class_char(self) -> str | list[tuple[int, int]]:
        if self.peek() == "\\":
            escaped = self.escape(in_class=True)
            return escaped if isinstance(escaped, str) else escaped[0]
        c = self.peek()
        self.pos += 1
        return c

    def emit_class(self, ranges: list[tuple[int, int]], negate: bool) -> str:
        if self.ignore_case:
            ranges = ranges + _case_ranges(ranges)
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        parts = []
        for low, high in merged:
            parts.append(_class_char(low) if low == high else _class_char(low) + "-" + _class_char(high))
        return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _class_char(cp: int) -> str:
    ch = chr(cp)
    return "\\" + ch if ch in _PUNCT and ch != " " else ch


def _case_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    cased, classes = _case_classes()
    extra: list[tuple[int, int]] = []
    for low, high in ranges:
        for cp in cased[bisect_left(cased, low) : bisect_right(cased, high)]:
            extra.extend((other, other) for other in classes[cp])
    return extra
