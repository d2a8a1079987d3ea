"""`manage.py ingest --processes N`: HTTP drivers on every process (one port), zmq on the first.

Real processes, real sockets: the kernel spreads connections over the processes, each commits
with its own writer name, nothing is stored twice, SIGTERM stops them all and a child that dies
is started again.
"""

import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest
import redis
import zmq
from django.conf import settings
from django.db import connection

from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.private_postgres import free_port
from tests.support.processes import IngestProcess

pytestmark = pytest.mark.django_db(transaction=True)

WRITER = "multi"


def push(url: str, token: str, lines: list[dict]) -> None:
    body = "\n".join(json.dumps(line) for line in lines).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Authorization": f"Bearer {token}", "Connection": "close"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def stats_of(writer: str) -> dict | None:
    raw = redis.Redis.from_url(settings.REDIS_URL).get(f"logsite:ingest:{writer}")
    return json.loads(raw) if raw else None


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ledger_writers() -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT writer FROM log_batches")
        return {row[0] for row in cur.fetchall()}


@pytest.fixture
def two_processes(actors, clean_logs, tmp_path):
    http_port = free_port()
    http, token = make_driver("http", f"127.0.0.1:{http_port}", tenant=actors.tenant_a)
    zmq_driver, _ = make_driver("zmq", f"tcp://127.0.0.1:{free_port()}", tenant=actors.tenant_a)
    proc = IngestProcess(tmp_path, writer=WRITER, args=("--processes", "2"))
    proc.start(wait_for_drivers=[http.id, zmq_driver.id])
    wait_for(
        lambda: str(http.id) in (stats_of(f"{WRITER}-1") or {}).get("drivers", {}), "process 1's http driver"
    )
    yield proc, f"http://127.0.0.1:{http_port}/api/v1/push", token, zmq_driver
    proc.stop()


def test_it_spreads_http_connections_over_both_processes_and_stores_each_line_once(two_processes):
    _, url, token, _ = two_processes
    # One connection per request: 24 connections all hashed onto one process has odds 2^-23.
    for request in range(24):
        lines = [{"line": f"r{request} n{n}", "container_name": f"c{request % 3}"} for n in range(50)]
        push(url, token, lines)
    rows = log_rows()
    assert sorted(r["line"] for r in rows) == sorted(f"r{q} n{n}" for q in range(24) for n in range(50))
    assert ledger_writers() == {WRITER, f"{WRITER}-1"}


def test_it_runs_zmq_in_the_first_process_only(two_processes):
    _, _, _, zmq_driver = two_processes
    assert str(zmq_driver.id) not in stats_of(f"{WRITER}-1")["drivers"]
    context = zmq.Context.instance()
    pub = context.socket(zmq.PUB)
    pub.connect(zmq_driver.bind)
    try:
        # PUB drops until the subscription has arrived: send warm-up lines until one is stored.
        def warmed_up():
            pub.send_multipart([b"t", b"s", b"0123456789ab: warm-up"])
            return log_rows("l.line = %s", ("warm-up",))

        wait_for(warmed_up, "the zmq subscription")
        for n in range(200):
            pub.send_multipart([b"t", b"s", f"0123456789ab: z{n}".encode()])
        wait_for(lambda: len(log_rows("l.line LIKE 'z%%'")) >= 200, "200 zmq lines")
    finally:
        pub.close(linger=0)
    assert sorted(r["line"] for r in log_rows("l.line LIKE 'z%%'")) == sorted(f"z{n}" for n in range(200))
    assert ledger_writers() == {WRITER}


def test_it_restarts_a_child_that_dies_and_stops_all_on_sigterm(two_processes):
    proc, url, token, _ = two_processes
    first_pid = stats_of(f"{WRITER}-1")["pid"]
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: (stats_of(f"{WRITER}-1") or {}).get("pid") not in (None, first_pid), "a restarted child")
    push(url, token, [{"line": "after restart"}])
    assert [r["line"] for r in log_rows()] == ["after restart"]
    children = [stats_of(WRITER)["pid"], stats_of(f"{WRITER}-1")["pid"]]
    assert proc.stop() == 0
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )


def test_it_shares_a_tcp_only_syslog_port_but_keeps_a_udp_syslog_driver_in_the_first(
    actors, clean_logs, tmp_path
):
    tcp_port = free_port()
    shared, _ = make_driver("syslog", f"tcp://127.0.0.1:{tcp_port}", tenant=actors.tenant_a)
    both, _ = make_driver("syslog", f"127.0.0.1:{free_port()}", tenant=actors.tenant_a)
    proc = IngestProcess(tmp_path, writer=WRITER, args=("--processes", "2"))
    proc.start(wait_for_drivers=[shared.id, both.id])
    try:
        wait_for(
            lambda: str(shared.id) in (stats_of(f"{WRITER}-1") or {}).get("drivers", {}), "process 1's syslog"
        )
        assert str(both.id) not in stats_of(f"{WRITER}-1")["drivers"]
        for conn in range(24):
            with socket.create_connection(("127.0.0.1", tcp_port)) as sock:
                sock.sendall(b"".join(b"<14>1 - host app - - - c%d n%d\n" % (conn, n) for n in range(20)))
        wait_for(lambda: len(log_rows()) >= 480, "480 syslog lines")
        assert sorted(r["line"] for r in log_rows()) == sorted(
            f"c{c} n{n}" for c in range(24) for n in range(20)
        )
        assert ledger_writers() == {WRITER, f"{WRITER}-1"}
    finally:
        proc.stop()
