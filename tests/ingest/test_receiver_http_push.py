import gzip
import json

import pytest
import requests

from tests.base import make_driver
from tests.conftest import log_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def push(actors, ingest, unused_tcp_port):
    driver, token = make_driver("http", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    ingest([driver.id])
    url = f"http://127.0.0.1:{unused_tcp_port}/api/v1/push"

    def send(body: bytes, token: str = token, **headers):
        return requests.post(
            url, data=body, headers={"Authorization": f"Bearer {token}", **headers}, timeout=30
        )

    return send


def test_it_stores_ndjson_before_answering(push):
    body = "\n".join(
        json.dumps(
            {"line": f"line {i}", "container_id": "c1", "container_name": "/web-1", "stream": "stderr"}
        )
        for i in range(100)
    ).encode()
    response = push(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 100}
    rows = log_rows()
    assert [r["line"] for r in rows] == [f"line {i}" for i in range(100)]
    assert {(r["tenant"], r["container_id"], r["name"], r["stream"]) for r in rows} == {
        ("tenant-a", "c1", "web-1", 2)
    }


def test_it_refuses_a_wrong_token(push):
    response = push(b'{"line": "x"}', token="wrong")
    assert response.status_code == 401
    assert log_rows() == []


def test_it_names_the_bad_line(push):
    response = push(b'{"line": "ok"}\n{"line": 5}\n')
    assert response.status_code == 400
    assert response.json()["line"] == 2
    assert log_rows() == []


def test_it_refuses_a_gzip_bomb(push):
    bomb = gzip.compress(b"\n" * (64 * 1024 * 1024))
    response = push(bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert log_rows() == []
