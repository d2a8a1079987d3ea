"""Multi-line rules on real Java and Python stack traces through a real ingest process."""

import json
import re
import time

import pytest
import requests
import zmq

from ingest.models import MultilineRule
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.traces import START, expected_records, java_output, python_output

pytestmark = pytest.mark.django_db(transaction=True)


def push(port, token, lines, **fields):
    body = "\n".join(json.dumps({"line": line, **fields}) for line in lines)
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1/push",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def stored(container_id: str) -> list[str]:
    return [r["line"] for r in log_rows("c.container_id = %s", (container_id,))]


def test_java_and_python_traces_become_one_record_each(client, actors, ingest, unused_tcp_port, tmp_path):
    java, python = java_output(tmp_path), python_output()
    assert any(line.startswith("Caused by: java.lang.IllegalArgumentException") for line in java)
    assert any(line.startswith("Traceback (most recent call last):") for line in python)
    driver, token = make_driver("http", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])

    # Without a rule every line is its own record.
    push(unused_tcp_port, token, java, container_id="java-1", container_name="orders-1")
    assert stored("java-1") == java

    # The admin previews a rule against those stored lines ...
    client.force_login(actors.alice)
    rule_fields = {
        "tenant": actors.tenant_a.pk,
        "name": "java-traces",
        "match": "container",
        "pattern": "orders-*",
        "start_pattern": START,
        "max_lines": 500,
        "max_bytes": 65536,
        "flush_timeout_ms": 1000,
        "enabled": "on",
        "position": 10,
    }
    preview = client.post("/admin/ingest/multilinerule/preview/", rule_fields).content.decode()
    assert f"{len(java)} recent lines of orders-1 become {len(expected_records(java))} records" in preview
    assert "Caused by: java.lang.IllegalArgumentException: negative amount: -5" in preview

    # ... saves it, and ingest applies it without a restart.
    assert client.post("/admin/ingest/multilinerule/add/", rule_fields).status_code == 302
    client.post(
        "/admin/ingest/multilinerule/add/",
        {**rule_fields, "name": "python-traces", "match": "label", "pattern": "app=py*", "position": 20},
    )
    assert MultilineRule.objects.count() == 2
    proc.wait_stats(lambda s: s.get("multiline_rules") == 2)

    push(unused_tcp_port, token, java, container_id="java-2", container_name="orders-2")
    push(
        unused_tcp_port, token, python, container_id="py-1", container_name="worker", labels={"app": "python"}
    )
    assert stored("java-2") == expected_records(java)
    assert stored("py-1") == expected_records(python)
    trace = next(r for r in stored("java-2") if "request failed" in r)
    assert "\tat Orders.charge(Orders.java:" in trace
    assert re.search(r"\n\t\.\.\. \d+ more$", trace)
    rows = log_rows("c.container_id = %s", ("py-1",))
    failed = next(r for r in rows if "job failed" in r["line"])
    assert json.loads(failed["attrs"])["_multiline_lines"] == len(failed["line"].split("\n"))
    assert failed["line"].split("\n")[-1] == "KeyError: 'order 42'"
    assert failed["level"] == 3  # the ERROR of the first line


def test_lines_that_cannot_be_acknowledged_are_joined_across_messages_and_flushed_on_timeout(
    actors, ingest, unused_tcp_port, tmp_path
):
    java = java_output(tmp_path)
    MultilineRule.objects.create(
        tenant=actors.tenant_a,
        name="svc",
        match="service",
        pattern="orders",
        start_pattern=START,
        flush_timeout_ms=300,
    )
    driver, _ = make_driver("zmq", f"tcp://127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.connect(f"tcp://127.0.0.1:{unused_tcp_port}")
    try:
        # PUB drops what it sends before the subscription arrives: probe until one line lands.
        deadline = time.monotonic() + 30
        while not stored("0000000000ff"):
            assert time.monotonic() < deadline, proc.log_tail()
            pub.send_multipart([b"tenant-a", b"probe", b"0000000000ff: probe"])
            time.sleep(0.3)
        for line in java:  # one message per line, interleaved with another container
            pub.send_multipart([b"tenant-a", b"orders", b"00000000000a: " + line.encode()])
            pub.send_multipart([b"tenant-a", b"other", b"00000000000b: " + line.encode()])
        # The last record has no successor: only the flush timeout writes it.
        deadline = time.monotonic() + 30
        while len(stored("00000000000a")) < len(expected_records(java)):
            assert time.monotonic() < deadline, (stored("00000000000a"), proc.log_tail())
            time.sleep(0.2)
    finally:
        pub.close(linger=0)
    assert stored("00000000000a") == expected_records(java)
    assert stored("00000000000b") == java  # no rule for service "other": untouched, in order
    proc.wait_stats(lambda s: s["held"] == 0)  # reported every 2 s
    assert re.search(r"\tat Orders\.main", stored("00000000000a")[1])
