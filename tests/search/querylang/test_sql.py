# ruff: noqa: RUF001 - non-ASCII look-alikes are the point of these tests
"""The SQL compiler against real Postgres, checked row for row against the in-memory matcher."""

from datetime import timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from search.querylang import QueryError, compile_matcher, parse
from search.querylang import sql as sqlmod
from search.querylang.nodes import Node
from search.querylang.sql import MAX_LIMIT, build_search_sql, container_sql
from tests.search.querylang import dataset as ds
from tests.search.querylang.strategies import combine, dataset_json_atoms, dataset_node

# Marks the session as using the database, so pytest-django sets up the test database.
pytestmark = pytest.mark.django_db

ALL_TENANTS = ds.TENANTS


def sql_ids(node: Node, tenants, limit=MAX_LIMIT, before=None, newest_first=True) -> list[int]:
    with connection.cursor() as cur:
        query, params = container_sql(node, tenants)
        cur.execute(query, params)
        ckeys = [r[0] for r in cur.fetchall()]
        query, params = build_search_sql(node, tenants, ckeys, limit, before, newest_first, now=ds.NOW)
        cur.execute(query, params)
        return [r[1] for r in cur.fetchall()]


def python_ids(dataset, node: Node, tenants, newest_first=True) -> list[int]:
    matches = compile_matcher(node, now=ds.NOW)
    rows = [r for r in dataset.rows if r["tenant"] in tenants and matches(r)]
    # Postgres orders by ts, which holds microseconds; the rest of ts_ns does not count.
    rows.sort(key=lambda r: (r["ts_ns"] // 1000, r["id"]), reverse=newest_first)
    return [r["id"] for r in rows]


def set_seqscan(enabled: bool) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT set_config('enable_seqscan', %s, false)", ["on" if enabled else "off"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    node=dataset_node(),
    tenants=st.one_of(st.just(ALL_TENANTS), st.lists(st.sampled_from(ALL_TENANTS), unique=True)),
    seqscan=st.booleans(),
    newest_first=st.booleans(),
)
def test_it_returns_exactly_what_the_matcher_accepts(dataset, node, tenants, seqscan, newest_first):
    # With seqscan off the trigram index on the sealed day is used where it can be.
    set_seqscan(seqscan)
    try:
        expected = python_ids(dataset, node, tenants, newest_first)
        event(
            "matches: "
            + ("none" if not expected else "all" if len(expected) == len(dataset.rows) else "some")
        )
        assert sql_ids(node, tenants, newest_first=newest_first) == expected
    finally:
        set_seqscan(True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=combine(dataset_json_atoms(), max_leaves=3))
def test_it_agrees_on_json_types(dataset, node):
    expected = python_ids(dataset, node, ALL_TENANTS)
    event("matches: " + ("none" if not expected else "all" if len(expected) == len(dataset.rows) else "some"))
    assert sql_ids(node, ALL_TENANTS) == expected


QUERIES = [
    # (query, expected number of matches must be strictly between 0 and all rows)
    "error",
    '"ERROR:"',
    "ΣΑΣ",
    "σασ",
    "İSTANBUL",
    "100%",
    "%_%",
    "under_score",
    "back\\slash",
    '"it\'s"',
    '"say \\"hi\\""',
    "/t(ime|imed) ?out/",
    "/^get/i",
    "/STRASSE #[0-9]+$/",
    "/s$/",
    "/[0-9]{3}$/",
    "/σας/i",
    "container:web-1",
    "container:web*",
    "container:db%1",
    "container:3",
    "-container:web-1",
    "label:env=prod",
    "label:env=*rod",
    "label:weird",
    "label:weird=a%b_c\\d",
    "image:nginx*",
    "image:my_img%:latest",
    "tenant:beta",
    "service:api host:h1",
    "stream:stderr",
    "level:warn",
    "level>=error",
    "level<info",
    "-level>=warn",
    "json.status>=500",
    "json.status:500",
    "json.status!=500",
    'json.code="500"',
    "json.code:5*",
    "json.latency>1",
    "json.latency<=0.1",
    "json.big>=100000000000000000000",
    "json.user.id<10",
    "json.user.name:*a*",
    "json.tags.0=a",
    "json.tags.-1:_",
    "json.ok=true",
    "json.note=null",
    "json.flag=1",
    "json.flag:true",
    'json.flag="1"',
    "json.flag!=1",
    "json.flag.0>=1",
    "json.flag.1:1",
    "-json.note=null",
    "since:1d",
    f"until:{ds.DAY0 + timedelta(days=1, hours=12):%Y-%m-%dT%H:%M:%SZ}",
    f"since:{ds.DAY0 + timedelta(hours=6):%Y-%m-%dT%H:%M} until:{ds.DAY0 + timedelta(days=1):%Y-%m-%d}",
    "container:web-1 OR error",
    "(label:env=dev OR stream:stderr) -timeout",
    "-(container:web* OR json.ok=true) level>=warn",
    "container:web-1 label:env=prod image:nginx* stream:stderr level>=warn tenant:acme timeout",
]


@pytest.mark.parametrize("query", QUERIES)
def test_it_agrees_on_handwritten_queries(dataset, query):
    node = parse(query)
    expected = python_ids(dataset, node, ALL_TENANTS)
    # A query that matches nothing or everything would not test the filter.
    assert 0 < len(expected) < len(dataset.rows), query
    assert sql_ids(node, ALL_TENANTS) == expected


def test_it_pages_by_ts_and_id_both_ways(dataset):
    node = parse("error OR level>=warn")
    for newest_first in (True, False):
        everything = sql_ids(node, ALL_TENANTS, newest_first=newest_first)
        pages, before = [], None
        while True:
            with connection.cursor() as cur:
                query, params = container_sql(node, ALL_TENANTS)
                cur.execute(query, params)
                ckeys = [r[0] for r in cur.fetchall()]
                query, params = build_search_sql(
                    node, ALL_TENANTS, ckeys, 17, before, newest_first, now=ds.NOW
                )
                cur.execute(query, params)
                page = cur.fetchall()
            if not page:
                break
            pages += [r[1] for r in page]
            before = (page[-1][2], page[-1][1])
        assert len(everything) > 17 * 3
        assert pages == everything == python_ids(dataset, node, ALL_TENANTS, newest_first)


def test_it_keeps_other_tenants_out(dataset):
    beta_rows = {r["id"] for r in dataset.rows if r["tenant"] == "beta"}
    assert beta_rows
    # Naming another tenant in the query finds nothing of theirs.
    assert sql_ids(parse("tenant:beta"), ["acme"]) == []
    assert sql_ids(parse("tenant:beta OR error"), ["acme"]) == python_ids(dataset, parse("error"), ["acme"])
    assert not set(sql_ids(parse("tenant:* OR -tenant:acme"), ["acme"])) & beta_rows
    # Nor does handing build_search_sql the other tenant's container keys.
    beta_ckeys = [k for k, tenant in dataset.ckeys.items() if tenant == "beta"]
    with connection.cursor() as cur:
        query, params = build_search_sql(parse(""), ["acme"], beta_ckeys, 100, now=ds.NOW)
        cur.execute(query, params)
        assert cur.fetchall() == []
        query, params = build_search_sql(parse(""), ["beta"], beta_ckeys, MAX_LIMIT, now=ds.NOW)
        cur.execute(query, params)
        assert {r[1] for r in cur.fetchall()} == beta_rows
    # No tenants, no rows.
    assert sql_ids(parse(""), []) == []


@pytest.mark.parametrize("indexed", [False, True])
def test_without_the_constant_key_list_or_the_prefilter_it_finds_the_same(dataset, monkeypatch, indexed):
    # In windows a trigram index covers, past PRUNE_KEYS_MAX keys only the tenant-checked key
    # array filters containers, and words go without the ASCII prefilter.
    monkeypatch.setattr(sqlmod, "PRUNE_KEYS_MAX", 0)
    for query in [*QUERIES, "container:web-1 error", "-tenant:acme timeout"]:
        node = parse(query)
        with connection.cursor() as cur:
            query_sql, params = container_sql(node, ALL_TENANTS)
            cur.execute(query_sql, params)
            ckeys = [r[0] for r in cur.fetchall()]
            query_sql, params = build_search_sql(
                node, ALL_TENANTS, ckeys, MAX_LIMIT, now=ds.NOW, indexed=indexed
            )
            # Unindexed windows keep the list (it steers the planner to the ts BRIN).
            assert (b"l.ckey = ANY(%(p1)s::bigint[])" in query_sql.as_bytes(cur.cursor)) is not indexed
            cur.execute(query_sql, params)
            assert [r[1] for r in cur.fetchall()] == python_ids(dataset, node, ALL_TENANTS), query
    beta_ckeys = [k for k, tenant in dataset.ckeys.items() if tenant == "beta"]
    with connection.cursor() as cur:
        query_sql, params = build_search_sql(parse(""), ["acme"], beta_ckeys, 100, now=ds.NOW)
        cur.execute(query_sql, params)
        assert cur.fetchall() == []


def test_it_treats_hostile_values_as_data(dataset):
    for query in ['"\'; DROP TABLE logs; --"', "container:\"x' OR '1'='1\"", 'label:"a\'b=c"', "json.a'b=1"]:
        try:
            node = parse(query)
        except QueryError:
            continue
        assert sql_ids(node, ALL_TENANTS) == python_ids(dataset, node, ALL_TENANTS)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM logs")
        assert cur.fetchone()[0] == len(dataset.rows)


def test_it_lets_the_planner_prune_partitions(dataset):
    acme_web = parse("container:web-1 tenant:acme since:6h")
    with connection.cursor() as cur:
        query, params = container_sql(acme_web, ALL_TENANTS)
        cur.execute(query, params)
        ckeys = [r[0] for r in cur.fetchall()]
        assert len(ckeys) == 1
        query, params = build_search_sql(acme_web, ALL_TENANTS, ckeys, 50, now=ds.NOW)
        cur.execute(sql_explain(query), params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    scanned = {name for name in _partition_names() if name in plan}
    # One day (since:6h) and one hash part (one container key) out of DAYS * HASH_PARTS.
    last_day = f"logs_p{ds.NOW:%Y%m%d}_h"
    assert len(scanned) == 1, plan
    assert next(iter(scanned)).startswith(last_day)


def sql_explain(query):
    from psycopg import sql

    return sql.SQL("EXPLAIN (COSTS OFF) ") + query


def _partition_names():
    return [
        f"logs_p{ds.DAY0 + timedelta(days=d):%Y%m%d}_h{h}"
        for d in range(ds.DAYS)
        for h in range(ds.HASH_PARTS)
    ]
