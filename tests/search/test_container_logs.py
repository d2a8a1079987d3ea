import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from accounts.models import ApiToken
from tests.base import make_driver

pytestmark = pytest.mark.django_db(transaction=True)

CID = "a" * 64
# Recent enough to be kept as the lines' own time (the pipeline rejects implausible ones).
BASE = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
DAY = BASE.strftime("%Y-%m-%dT%H")


@pytest.fixture
def stored(actors, ingest, unused_tcp_port):
    """Lines pushed through a real ingest for one container of tenant A and one of tenant B."""
    driver_a, token_a = make_driver("http", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    driver_b, token_b = make_driver("http", f"127.0.0.1:{unused_tcp_port + 1}", tenant=actors.tenant_b)
    ingest([driver_a.id, driver_b.id])
    for port, token, cid, prefix in (
        (unused_tcp_port, token_a, CID, "a"),
        (unused_tcp_port + 1, token_b, "b" * 64, "b"),
    ):
        body = "\n".join(
            json.dumps({"line": f"{prefix} {i}", "container_id": cid, "ts": f"{DAY}:00:{i:02d}.123456789Z"})
            for i in range(10)
        )
        response = requests.post(
            f"http://127.0.0.1:{port}/api/v1/push", data=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
    return {"token_a": token_a, "token_b": token_b}


def lines(response) -> list[dict]:
    return [json.loads(x) for x in b"".join(response.streaming_content).decode().splitlines()]


def test_it_returns_the_tail_oldest_first_with_nanoseconds(client, actors, stored):
    client.force_login(actors.alice)
    response = client.get(f"/api/v1/containers/{CID}/logs", {"tail": 3})
    assert response.status_code == 200
    got = lines(response)
    assert [x["line"] for x in got] == ["a 7", "a 8", "a 9"]
    assert got[0]["ts"] == f"{DAY}:00:07.123456789Z"


def test_it_filters_by_time_and_follows_by_id(client, actors, stored):
    client.force_login(actors.alice)
    got = lines(
        client.get(
            f"/api/v1/containers/{CID}/logs",
            {"since": f"{DAY}:00:02Z", "until": f"{DAY}:00:04.5Z"},
        )
    )
    assert [x["line"] for x in got] == ["a 2", "a 3", "a 4"]
    after = lines(client.get(f"/api/v1/containers/{CID}/logs", {"after_id": got[-1]["id"]}))
    assert [x["line"] for x in after] == [f"a {i}" for i in range(5, 10)]


def test_it_compares_since_and_until_to_the_nanosecond(client, actors, stored):
    # What `docker logs --since/--until` sends is often a line's own timestamp, to the ns.
    client.force_login(actors.alice)
    url = f"/api/v1/containers/{CID}/logs"

    def between(since: str, until: str) -> list[str]:
        return [x["line"] for x in lines(client.get(url, {"since": since, "until": until}))]

    assert between(f"{DAY}:00:03.123456789Z", f"{DAY}:00:05.123456789Z") == ["a 3", "a 4", "a 5"]
    assert between(f"{DAY}:00:03.12345679Z", f"{DAY}:00:05.123456788Z") == ["a 4"]


def test_it_accepts_the_plugin_driver_token_only_for_its_containers(client, stored):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {stored['token_a']}"}
    assert client.get(f"/api/v1/containers/{CID}/logs", **auth).status_code == 200
    assert client.get(f"/api/v1/containers/{'b' * 64}/logs", **auth).status_code == 404


def test_it_hides_other_tenants(client, actors, stored):
    client.force_login(actors.eve)  # tenant B only
    assert client.get(f"/api/v1/containers/{CID}/logs").status_code == 404


def test_it_needs_authentication(client, stored):
    assert client.get(f"/api/v1/containers/{CID}/logs").status_code == 401
    bad = {"HTTP_AUTHORIZATION": "Bearer lgs_wrong"}
    assert client.get(f"/api/v1/containers/{CID}/logs", **bad).status_code == 401


def test_it_accepts_a_user_api_token(client, actors, stored):
    _, clear = ApiToken.issue(actors.alice, "cli")
    response = client.get(f"/api/v1/containers/{CID}/logs", {"tail": 1}, HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert [x["line"] for x in lines(response)] == ["a 9"]
