"""Forwarding to a syslog drain received by a real Debian rsyslogd (a private instance on a
loopback port): through the Celery worker over TCP, over TLS, and across a receiver restart."""

import time
from collections import Counter

import pytest

from forward.models import ForwardState
from tests.forward.pipeline import ForwardStack, wait_caught_up
from tests.forward.runs import run_until_done
from tests.forward.targets import syslog_target
from tests.forward.writers import make_writer, records, write
from tests.support.celery_processes import purge_broker
from tests.support.rsyslog import Rsyslogd, make_certificates

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

TS0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def rsyslogd(tmp_path):
    started = []

    def start(**kw) -> Rsyslogd:
        daemon = Rsyslogd(tmp_path / f"rsyslog-{len(started)}", **kw).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def test_lines_reach_rsyslogd_through_the_worker(actors, clean_logs, tmp_path, rsyslogd, unused_tcp_port):
    purge_broker()
    daemon = rsyslogd()
    target = syslog_target(f"tcp://127.0.0.1:{daemon.port}", actors.tenant_a)
    stack = ForwardStack(tmp_path, actors.tenant_a)
    try:
        stack.ingest(unused_tcp_port)
        stack.worker()
        stack.beat()
        now_ns = time.time_ns() // 1000 * 1000
        lines = [f"request {i} served" for i in range(1500)] + ["a stack trace\n  at line 2\n  at line 3"]
        stack.push(lines[:800], container="api-1", service="api", ts_ns=now_ns, stream="stdout")
        stack.push(lines[800:], container="api-1", service="api", ts_ns=now_ns + 800_000, stream="stderr")
        messages = daemon.wait_messages(len(lines), timeout=120)
        wait_caught_up(target, stack)
    finally:
        stack.stop()
    messages = daemon.messages()
    assert Counter(m["msg"] for m in messages) == Counter(lines)
    assert [m["msg"] for m in messages] == lines  # one container: its order is kept
    first, err = messages[0], messages[800]
    assert (first["app"], first["procid"], first["msgid"], first["protocol"]) == (
        "api",
        "api-1",
        "stdout",
        "1",
    )
    assert (first["severity"], first["facility"]) == ("6", "1")
    # No level stored: stderr is err, stdout info. (The trace line's level came from its text.)
    assert (err["msgid"], err["severity"]) == ("stderr", "3")
    assert messages[-1]["severity"] == "7"
    # The line's own time, to the microsecond.
    stamp = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ns // 10**9)) + f".{now_ns // 1000 % 10**6:06d}Z"
    )
    assert first["time"] == stamp


def test_lines_reach_rsyslogd_over_tls(actors, clean_logs, tmp_path, rsyslogd):
    certs = make_certificates(tmp_path / "certs")
    daemon = rsyslogd(tls_certs=certs)
    target = syslog_target(
        f"tls://127.0.0.1:{daemon.port}", actors.tenant_a, tls_ca=certs["ca.pem"].read_text()
    )
    write(make_writer(tmp_path, "writer-1"), records("tls", 300))
    assert run_until_done(target).status == "caught_up"
    messages = daemon.wait_messages(300)
    assert [m["msg"] for m in messages] == [f"tls {i}" for i in range(300)]


def test_a_restarted_rsyslogd_gets_everything_sent_while_it_was_down(actors, clean_logs, tmp_path, rsyslogd):
    daemon = rsyslogd()
    target = syslog_target(f"tcp://127.0.0.1:{daemon.port}", actors.tenant_a)
    writer = make_writer(tmp_path, "writer-1")
    write(writer, records("up", 100))
    assert run_until_done(target).status == "caught_up"
    daemon.wait_messages(100)

    daemon.stop()
    write(writer, records("down", 100))
    assert run_until_done(target).status == "backoff"
    state = ForwardState.objects.get(pk=target.pk)
    assert state.failures >= 1
    assert state.lines_sent == 100

    daemon.start()
    ForwardState.objects.filter(pk=target.pk).update(next_attempt_at=None)
    assert run_until_done(target).status == "caught_up"
    messages = daemon.wait_messages(200)
    assert Counter(m["msg"] for m in messages) == Counter(
        [f"up {i}" for i in range(100)] + [f"down {i}" for i in range(100)]
    )
