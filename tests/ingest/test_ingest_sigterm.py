"""SIGTERM drains: whatever ingest acknowledged is committed, or spooled and replayed next start.

A sender pushes steadily while the process is told to stop; afterwards the store is compared
with exactly what the sender was told: acknowledged lines must all be there (once, in order),
and nothing may appear that the sender was refused.
"""

import signal
import socket
import subprocess
import time

import pytest

from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.private_postgres import free_port
from tests.support.processes import IngestProcess
from tests.support.push import PushStream, seq_of

pytestmark = pytest.mark.django_db(transaction=True)

EXIT_WITHIN_S = 120  # "bounded": a hang fails the test, nothing is timed
# A stalled request is given a few seconds on shutdown; the web server's default is a minute.
STALLED_EXIT_BOUND_S = 30


def by_container(rows) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for cid, line in rows:
        out.setdefault(cid, []).append(seq_of(line))
    return out


def assert_store_matches(stored: dict[str, list[int]], sender: PushStream) -> None:
    for cid, acked in sender.acked.items():
        got = stored.get(cid, [])
        assert len(got) == len(set(got)), f"{cid}: duplicates"
        assert got == sorted(got), f"{cid}: out of order"
        missing = set(acked) - set(got)
        assert not missing, f"{cid}: {len(missing)} acknowledged lines lost, e.g. {sorted(missing)[:5]}"
        # Only a request that died without an answer may have been stored unacknowledged.
        extra = set(got) - set(acked) - set(sender.unknown[cid])
        assert not extra, f"{cid}: {len(extra)} lines stored that the sender was refused"


def test_it_commits_everything_acknowledged_before_exiting(actors, ingest, tmp_path):
    port = free_port()
    driver, token = make_driver("http", f"127.0.0.1:{port}", tenant=actors.tenant_a)
    proc = ingest([driver.id], writer="sigterm-steady")
    url = f"http://127.0.0.1:{port}/api/v1/push"
    # Two concurrent senders, so that requests are in flight when the signal lands.
    with (
        PushStream(url, token, containers=("a0", "a1"), lines_per_container=25) as first,
        PushStream(url, token, containers=("b0",), lines_per_container=40) as second,
    ):
        first.wait_acked(500)
        second.wait_acked(500)
        assert proc.stop(timeout=EXIT_WITHIN_S) == 0
    assert not list(proc.spool_dir.rglob("*.spool")), "Postgres was up: nothing should be left spooled"
    stored = by_container((r["container_id"], r["line"]) for r in log_rows())
    assert_store_matches(stored, first)
    assert_store_matches(stored, second)


def test_it_keeps_acknowledged_lines_in_the_spool_when_postgres_is_down(private_db, tmp_path):
    port = free_port()
    driver_id, token = private_db.add_driver("http", f"127.0.0.1:{port}", "tenant-s")
    proc = IngestProcess(tmp_path, writer="sigterm-down", DATABASE_URL=private_db.url)
    proc.start(wait_for_drivers=[driver_id])
    url = f"http://127.0.0.1:{port}/api/v1/push"
    try:
        with PushStream(url, token, containers=("c0", "c1"), lines_per_container=10) as sender:
            before = sender.wait_acked(200)
            private_db.stop("immediate")
            proc.wait_stats(lambda s: s["spooled"] > 0 and not s["db_up"])
            sender.wait_acked(before + 400)
            assert proc.stop(timeout=EXIT_WITHIN_S) == 0
        assert list(proc.spool_dir.rglob("*.spool")), "acknowledged lines should be waiting in the spool"
        private_db.start()
        proc.start(wait_for_drivers=[driver_id])  # same writer name: same spool
        proc.wait_stats(lambda s: s["db_up"] and s["spool_bytes"] == 0 and s["queued"] == 0)
    finally:
        proc.stop(timeout=EXIT_WITHIN_S)
    rows = private_db.query(
        "SELECT c.container_id, l.line FROM logs l JOIN containers c ON c.id = l.ckey ORDER BY l.id"
    )
    assert_store_matches(by_container(rows), sender)


def test_it_stops_without_waiting_for_a_body_that_stops_arriving(actors, ingest):
    # A client that sent its headers but only part of its body when the signal lands: the web
    # server stops reading on shutdown, so that request can never complete and must not hold
    # the exit (a container runtime kills a process that takes too long to stop).
    port = free_port()
    driver, token = make_driver("http", f"127.0.0.1:{port}", tenant=actors.tenant_a)
    proc = ingest([driver.id], writer="sigterm-stalled")
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(
            f"POST /api/v1/push HTTP/1.1\r\nHost: logsite\r\nAuthorization: Bearer {token}\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b'{"line": "the rest never comes'
        )
        time.sleep(0.5)  # let the server start on the request (ordering aid, nothing is measured)
        proc.proc.send_signal(signal.SIGTERM)
        try:
            code = proc.proc.wait(STALLED_EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ingest still running {STALLED_EXIT_BOUND_S} s after SIGTERM:\n{proc.log_tail()}")
    assert code == 0
