import json
import time

import pytest

from accounts.models import ApiToken
from ingest.record import Record
from tests.support.store import store_records

pytestmark = pytest.mark.django_db(transaction=True)

NOW_NS = time.time_ns()


def rec(tenant, name, i, line, stream="stdout", **kw):
    return Record(
        line=line,
        ts_ns=NOW_NS - (1000 - i) * 1_000_000_000,
        tenant=tenant,
        container_id=f"{name}-id",
        container_name=name,
        image="nginx:1.27" if name.startswith("web") else "postgres:15",
        stream=stream,
        **kw,
    )


@pytest.fixture
def data(actors, clean_logs):
    records = [rec("tenant-a", "web-1", i, f"GET /{i} 200") for i in range(300)]
    records += [
        rec("tenant-a", "db-1", i, f"ERROR connection reset {i}", stream="stderr") for i in range(0, 300, 3)
    ]
    records += [rec("tenant-b", "web-9", i, f"GET /secret/{i} 200") for i in range(50)]
    store_records(records)
    return records


def get(client, path, **params):
    response = client.get(path, params)
    return response.status_code, response.json()


def test_it_pages_newest_first_within_the_users_tenants(client, actors, data):
    client.force_login(actors.alice)
    seen = []
    before = None
    while True:
        status, page = get(
            client, "/api/v1/search", q="GET", limit=70, **({"before": before} if before else {})
        )
        assert status == 200
        seen += [line["line"] for line in page["lines"]]
        before = page["next"]
        if not before:
            break
    assert seen == [f"GET /{i} 200" for i in reversed(range(300))]


def test_it_filters_by_container_stream_and_text(client, actors, data):
    client.force_login(actors.alice)
    status, page = get(client, "/api/v1/search", q='container:db-1 stream:stderr "reset 297"')
    assert status == 200
    assert [x["line"] for x in page["lines"]] == ["ERROR connection reset 297"]
    assert page["lines"][0]["container"]["image"] == "postgres:15"


def test_it_reports_a_bad_query_with_its_position(client, actors, data):
    client.force_login(actors.alice)
    status, body = get(client, "/api/v1/search", q="level>=loud")
    assert status == 400
    assert body["position"] >= 0
    assert body["message"]


def test_it_never_shows_another_tenant(client, actors, data):
    client.force_login(actors.alice)
    for q in ("secret", "tenant:tenant-b", "container:web-9"):
        status, page = get(client, "/api/v1/search", q=q)
        assert status == 200, q
        assert page["lines"] == [], q
    status, hist = get(client, "/api/v1/histogram", q="tenant:tenant-b")
    assert hist["buckets"] == []


def test_it_counts_the_histogram_exactly(client, actors, data):
    client.force_login(actors.bob)  # tenants A and B
    status, hist = get(client, "/api/v1/histogram", q="GET", bucket="1m")
    assert status == 200
    assert sum(b["count"] for b in hist["buckets"]) == 350


def test_it_shows_context_in_the_same_container(client, actors, data):
    client.force_login(actors.alice)
    _, page = get(client, "/api/v1/search", q='"GET /150 "')
    hit = page["lines"][0]
    status, ctx = get(client, "/api/v1/context", ckey=hit["ckey"], id=hit["id"], before=2, after=2)
    assert status == 200
    assert [x["line"] for x in ctx["before"]] == ["GET /148 200", "GET /149 200"]
    assert [x["line"] for x in ctx["after"]] == ["GET /151 200", "GET /152 200"]
    client.force_login(actors.eve)
    assert client.get("/api/v1/context", {"ckey": hit["ckey"], "id": hit["id"]}).status_code == 404


def test_it_needs_authentication_and_accepts_api_tokens(client, actors, data):
    assert client.get("/api/v1/search", {"q": "GET"}).status_code == 401
    _, clear = ApiToken.issue(actors.alice, "cli")
    response = client.get("/api/v1/search", {"q": "GET", "limit": 1}, HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert response.status_code == 200
    assert response.json()["lines"][0]["line"] == "GET /299 200"


def test_it_saves_searches_per_user(client, actors, data):
    client.force_login(actors.alice)
    response = client.post(
        "/api/v1/saved-searches",
        json.dumps({"name": "errors", "query": "stream:stderr   ERROR"}),
        "application/json",
    )
    assert response.status_code == 201
    assert response.json()["query"] == "stream:stderr ERROR"
    client.force_login(actors.eve)
    assert client.get("/api/v1/saved-searches").json()["saved_searches"] == []


def test_it_renders_the_search_page_with_escaped_input(client, actors, data):
    client.force_login(actors.alice)
    response = client.get("/search/", {"q": '"<script>alert(1)</script>"'})
    assert response.status_code == 200
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;" in response.content
