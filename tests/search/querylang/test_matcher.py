# ruff: noqa: RUF001, RUF003 - non-ASCII look-alikes are the point of these tests
from datetime import UTC, datetime, timedelta

import pytest

from ingest.record import Record
from search.querylang import compile_matcher, parse

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def matches(query: str, row) -> bool:
    return compile_matcher(parse(query), now=NOW)(row)


def test_it_reads_ingest_records():
    record = Record(
        line="GET /health 200",
        ts_ns=int((NOW - timedelta(minutes=5)).timestamp()) * 10**9,
        tenant="acme",
        service="api",
        container_id="abc123def456",
        container_name="web-1",
        image="nginx:1.25",
        host="h1",
        stream="stderr",
        level=4,
        attrs={"status": 200},
        labels={"env": "prod"},
    )
    query = (
        "container:abc label:env=prod image:nginx* stream:stderr level>=warn tenant:acme service:api host:h1 "
        "health json.status=200 since:1h"
    )
    assert matches(query, record)
    assert not matches("since:1m", record)
    assert not matches("container:web", record)  # names match whole; ids by prefix
    assert matches("container:web*", record)


def test_it_treats_missing_fields_as_empty():
    assert matches("", {})
    assert not matches("x", {})
    assert matches("-x", {})
    assert not matches("level<=debug", {"line": "x"})  # unknown level is never compared
    assert not matches("label:env", {"labels": None})
    assert not matches("json.a!=1", {"attrs": None})
    assert not matches("since:1h", {"line": "no time"})


@pytest.mark.parametrize(
    ("query", "row", "expected"),
    [
        ("stream:stdout", {"stream": 1}, True),
        ("stream:stdout", {"stream": "stderr"}, False),
        ("level:error", {"level": 3}, True),
        ("level>error", {"level": 2}, True),
        ("level>error", {"level": 3}, False),
        ("level<=info", {"level": 7}, True),
        ("ERROR", {"line": "an error"}, True),
        ("σασ", {"line": "ΣΑΣ"}, True),  # Σ always lowers to σ, as in Postgres
        ("istanbul", {"line": "İSTANBUL"}, True),
        ("/^an/", {"line": "an error"}, True),
        ("/ERROR/", {"line": "an error"}, False),
        ("/ERROR/i", {"line": "an error"}, True),
        ("json.ok=true", {"attrs": {"ok": 1}}, False),  # types never compare across
        ("json.n=1", {"attrs": {"n": True}}, False),
        ("json.n=1", {"attrs": {"n": 1.0}}, True),
        ("json.n>=0.1", {"attrs": {"n": 0.1}}, True),
        ("json.n!=1", {"attrs": {"n": None}}, True),
        ("json.n!=1", {"attrs": {}}, False),
        ('json.n="1"', {"attrs": {"n": "1"}}, True),
        ("json.a.-1=3", {"attrs": {"a": [1, 2, 3]}}, True),
        ("json.a.1_0=3", {"attrs": {"a": [0] * 20}}, False),
        ("json.msg:*fail*", {"attrs": {"msg": "it failed"}}, True),
        ("label:env=pr*", {"labels": {"env": "prod"}}, True),
        ("label:n=7", {"labels": {"n": 7}}, True),
        ("until:2026-03-03T12:00:00Z", {"ts": NOW}, False),
        ("since:2026-03-03T12:00:00Z", {"ts": NOW}, True),
        ("since:0s", {"ts_ns": int(NOW.timestamp()) * 10**9 + 999}, True),
    ],
)
def test_it_matches(query, row, expected):
    assert matches(query, row) is expected
