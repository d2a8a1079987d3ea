# ruff: noqa: RUF001 - non-ASCII look-alikes are the point of these tests
"""Hypothesis strategies for query ASTs.

`any_node()` explores the syntax (arbitrary text, quoting, keywords) for the round trip;
`dataset_node()` draws values from the generated dataset so that SQL-vs-matcher comparisons
return non-trivial results.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

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
from tests.search.querylang import dataset as ds

# Everything except NUL and lone surrogates, which queries reject.
any_char = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
any_text = st.text(any_char, min_size=1, max_size=12)
tricky_text = st.one_of(
    any_text,
    st.sampled_from(
        [
            "OR",
            "AND",
            "-x",
            "/x/",
            "container:x",
            "json.a",
            'a"b',
            "a\\",
            '\\"',
            "(",
            ")",
            " ",
            "level>=1",
            "since:2h",
            "it's",
            "%_\\",
        ]
    ),
)

# Fragments that are valid regexes on their own and in sequence; no "\/" (the parser turns
# it into "/", so it never appears in a parsed AST).
REGEX_PIECES = [
    "err",
    "a.c",
    "[0-9]+",
    "(foo|bar)",
    "^GET",
    "s$",
    "\\d{2,3}",
    "x/y",
    "[^a-z]",
    "é+",
    "\\\\",
    "%_",
    "(?:ab)?",
    "[\\]\\-]",
    "\\w+",
    "\\s",
    "\\S",
    "ΣΑΣ",
    "ß",
    "\\x41",
    "\\u00e9",
    "[a-zA-Z]{2}",
    "t(ime|imed) ?out",
    "\\.",
    "[.]",
    "\\$",
    "\\(paren\\)",
    "k",
    "ſ",
    "İ",
    "[ǅ-ǆ]",
    "\\[",
    "\\{json",
    "🎉",
    "\\t",
    "a*",
    "b?",
]
regex_pattern = st.lists(st.sampled_from(REGEX_PIECES), min_size=1, max_size=3).map("".join)

utc_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
durations = st.builds(Duration, st.integers(0, 5000), st.sampled_from("smhdw"))
json_paths = st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,6}", fullmatch=True), min_size=1, max_size=3).map(tuple)
json_numbers = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30)


def json_cmp(paths, strings):
    ordering = st.builds(
        JsonCmp, paths, st.sampled_from([">", ">=", "<", "<="]), st.just("number"), json_numbers
    )
    equality = st.one_of(
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("number"), json_numbers),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("bool"), st.booleans()),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("null"), st.none()),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("string"), strings),
    )
    return st.one_of(ordering, equality)


def combine(atoms, max_leaves=8):
    return st.recursive(
        atoms,
        lambda kids: st.one_of(
            st.builds(Not, kids),
            st.lists(kids, min_size=2, max_size=3).map(lambda t: And(tuple(t))),
            st.lists(kids, min_size=2, max_size=3).map(lambda t: Or(tuple(t))),
        ),
        max_leaves=max_leaves,
    )


def any_node():
    label_keys = tricky_text.filter(lambda s: "=" not in s)
    atoms = st.one_of(
        st.builds(Text, tricky_text),
        st.builds(Regex, regex_pattern, st.booleans()),
        st.builds(ContainerIs, tricky_text),
        st.builds(LabelIs, label_keys, st.one_of(st.none(), tricky_text)),
        st.builds(MetaIs, st.sampled_from(["image", "tenant", "service", "host"]), tricky_text),
        st.builds(StreamIs, st.sampled_from(["stdout", "stderr"])),
        st.builds(LevelIs, st.sampled_from(["=", ">", ">=", "<", "<="]), st.integers(0, 7)),
        json_cmp(json_paths, st.one_of(st.just(""), tricky_text)),
        st.builds(TimeBound, st.sampled_from(["since", "until"]), st.one_of(durations, utc_datetimes)),
    )
    return combine(atoms)


# --- values taken from the dataset ------------------------------------------------------------


def _substrings(texts):
    return st.sampled_from(texts).flatmap(
        lambda s: st.tuples(st.integers(0, len(s) - 1), st.integers(1, 6)).map(
            lambda ij: s[ij[0] : ij[0] + ij[1]]
        )
    )


def dataset_json_atoms():
    words = st.one_of(_substrings(ds.FRAGMENTS), st.sampled_from(ds.FRAGMENTS))
    paths = st.sampled_from(
        [
            ("status",),
            ("latency",),
            ("user", "id"),
            ("user", "name"),
            ("tags", "0"),
            ("tags", "-1"),
            ("ok",),
            ("note",),
            ("code",),
            ("msg",),
            ("big",),
            ("flag",),
            ("flag", "0"),
            ("flag", "1"),
            ("missing",),
            ("user",),
        ]
    )
    numbers = st.one_of(
        st.sampled_from(
            [
                Decimal(v)
                for v in [
                    "200",
                    "404",
                    "500",
                    "500.0",
                    "0.1",
                    "1.5",
                    "1E+20",
                    "-3.75",
                    "2.5E-7",
                    "0",
                    "1",
                    "1.00",
                    "7",
                    "100000000000000000000",
                    "25",
                ]
            ]
        ),
        json_numbers,
    )
    strings = st.one_of(
        st.sampled_from(
            [
                "500",
                "E42",
                "5%",
                "x_y",
                "ann",
                "Bob",
                "o'hara",
                "çelik",
                "a",
                "%",
                "_",
                "*",
                "5*",
                "*_*",
                "1",
                "true",
                "",
            ]
        ),
        words,
    )
    return st.one_of(
        st.builds(JsonCmp, paths, st.sampled_from([">", ">=", "<", "<="]), st.just("number"), numbers),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("number"), numbers),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("bool"), st.booleans()),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("null"), st.none()),
        st.builds(JsonCmp, paths, st.sampled_from([":", "=", "!="]), st.just("string"), strings),
    )


def dataset_node():
    names = [c[2] for c in ds.CONTAINERS]
    images = [c[3] for c in ds.CONTAINERS]
    label_keys = sorted({k for c in ds.CONTAINERS for k in c[5]} | {"missing"})
    label_values = sorted({v for c in ds.CONTAINERS for v in c[5].values()})
    globbed = lambda values: st.one_of(  # noqa: E731
        st.sampled_from(values),
        _substrings(values).map(lambda s: s + "*"),
        _substrings(values).map(lambda s: "*" + s),
        _substrings(values).map(lambda s: "*" + s + "*"),
        st.just("*"),
    )
    words = st.one_of(_substrings(ds.FRAGMENTS), st.sampled_from(ds.FRAGMENTS), any_text)
    times = st.one_of(
        st.builds(Duration, st.integers(0, 80), st.just("h")),
        st.builds(Duration, st.integers(0, 3), st.just("d")),
        st.integers(-3600, (ds.DAYS * 86400) + 3600).map(
            lambda s: ds.DAY0 + timedelta(seconds=s, microseconds=7)
        ),
    )
    atoms = st.one_of(
        st.builds(Text, words),
        st.builds(Regex, regex_pattern, st.booleans()),
        st.builds(ContainerIs, st.one_of(globbed(names), st.sampled_from(["0", "1", "2a", "3"]), words)),
        st.builds(LabelIs, st.sampled_from(label_keys), st.one_of(st.none(), globbed(label_values))),
        st.builds(MetaIs, st.just("image"), globbed(images)),
        st.builds(MetaIs, st.just("tenant"), globbed(ds.TENANTS)),
        st.builds(MetaIs, st.just("service"), globbed(["api", "worker", "web", "batch"])),
        st.builds(MetaIs, st.just("host"), globbed(["h1", "h2", "h3"])),
        st.builds(StreamIs, st.sampled_from(["stdout", "stderr"])),
        st.builds(LevelIs, st.sampled_from(["=", ">", ">=", "<", "<="]), st.integers(0, 7)),
        dataset_json_atoms(),
        st.builds(TimeBound, st.sampled_from(["since", "until"]), times),
    )
    return combine(atoms, max_leaves=6)
