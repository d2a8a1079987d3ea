"""Forwarding end to end: lines pushed to a real ingest process are forwarded by a real Celery
worker (queued by a real beat) to the CLS stand-in: exactly once when all goes well, and at
least once, without a gap, through outages, 429 storms, a worker killed mid-send and two
ingest writers."""

import threading
from collections import Counter

import pytest

from forward.models import ForwardState
from tests.forward.pipeline import ForwardStack, wait_caught_up, wait_for, wait_lines
from tests.forward.targets import cls_target
from tests.support.celery_processes import purge_broker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def stack(actors, clean_logs, tmp_path):
    purge_broker()
    stack = ForwardStack(tmp_path, actors.tenant_a)
    yield stack
    stack.stop()


def batch(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i:05d}" for i in range(n)]


def test_it_forwards_every_line_exactly_once(stack, standin, unused_tcp_port):
    target = cls_target(standin, stack.tenant)
    stack.ingest(unused_tcp_port)
    stack.worker()
    stack.beat()
    expected = []
    for round_ in range(4):
        for container in ("web-1", "web-2"):
            lines = batch(f"{container} r{round_}", 500)
            stack.push(lines, container)
            expected += lines
    counts = wait_lines(standin, expected, stack)
    wait_caught_up(target, stack)
    counts = Counter(log.fields["log"] for log in standin.logs())
    assert counts == Counter(expected)
    # In order per container, with its metadata and the line's own time.
    for container in ("web-1", "web-2"):
        got = [log for log in standin.logs() if log.fields["container_name"] == container]
        assert [log.fields["log"] for log in got] == [line for line in expected if line.startswith(container)]
        assert {log.fields["container_id"] for log in got} == {container}
        assert {log.fields["tenant"] for log in got} == {"tenant-a"}
    state = ForwardState.objects.get(pk=target.pk)
    assert state.lines_sent == len(expected)
    assert state.failures == 0


def test_it_delivers_everything_after_the_destination_comes_back(stack, standin, unused_tcp_port):
    target = cls_target(standin, stack.tenant)
    stack.ingest(unused_tcp_port)
    stack.worker()
    stack.beat()
    first = batch("before", 1000)
    stack.push(first)
    wait_lines(standin, first, stack)

    standin.down()
    during = batch("during", 2000)
    for i in range(0, len(during), 500):
        stack.push(during[i : i + 500])
    wait_for(
        lambda: ForwardState.objects.get(pk=target.pk).failures >= 3, "three failed attempts", stack=stack
    )
    state = ForwardState.objects.get(pk=target.pk)
    assert "ConnectionError" in state.last_error
    standin.up()

    counts = wait_lines(standin, first + during, stack)
    assert set(counts) == set(first + during)
    wait_caught_up(target, stack)
    assert ForwardState.objects.get(pk=target.pk).failures == 0


def test_it_backs_off_through_a_429_storm_and_loses_nothing(stack, standin, unused_tcp_port):
    target = cls_target(standin, stack.tenant, batch_lines=500)
    stack.ingest(unused_tcp_port)
    stack.worker()
    stack.beat()
    storm = 10
    standin.inject("429", n=storm)
    lines = batch("storm", 2000)
    stack.push(lines)
    counts = wait_lines(standin, lines, stack)
    wait_caught_up(target, stack)
    # 429s store nothing, so nothing arrives twice.
    assert Counter(log.fields["log"] for log in standin.logs()) == Counter(lines)
    statuses = [status for status, _ in standin.responses]
    assert statuses[:storm] == [429] * storm
    assert statuses[storm:]
    assert set(statuses[storm:]) == {200}
    assert max(counts.values()) == 1
    # Exponential backoff (base 0.1 s, cap 2 s, at least half of each step): the retries cannot
    # have come faster than that (a lower bound: a slow machine only makes the gaps longer).
    times = standin.answered_at[: storm + 1]
    floor = sum(min(2.0, 0.1 * 2 ** (n - 1)) / 2 for n in range(1, storm + 1))
    assert times[-1] - times[0] >= floor
    state = ForwardState.objects.get(pk=target.pk)
    assert "SpeedQuotaExceed" in state.last_error
    assert state.failures == 0


def test_a_worker_killed_mid_send_leaves_no_gap(stack, standin, unused_tcp_port):
    target = cls_target(standin, stack.tenant, batch_lines=500)
    stack.ingest(unused_tcp_port)
    doomed = stack.worker("doomed")
    stack.beat()
    # The third request hangs in the stand-in; the worker dies while waiting for the answer.
    standin.inject("sleep", n=1, seconds=4, after=2)
    lines = batch("kill", 3000)
    stack.push(lines)
    wait_for(lambda: standin.started >= 3, "the third request to be in flight", stack=stack)
    doomed.kill()
    stack.worker("survivor")

    counts = wait_lines(standin, lines, stack, timeout=180)
    wait_caught_up(target, stack)
    counts = Counter(log.fields["log"] for log in standin.logs())
    assert set(counts) == set(lines)  # no gap
    # The stand-in stored the hung request after the worker died, and the cursor had not moved
    # past it: exactly those 500 lines arrive twice (at least once), nothing else does.
    twice = sorted(line for line, n in counts.items() if n > 1)
    assert twice == lines[1000:1500]
    assert max(counts.values()) == 2


def test_two_ingest_writers_lose_and_repeat_nothing(stack, standin, unused_tcp_port, unused_tcp_port_factory):
    target = cls_target(standin, stack.tenant, batch_lines=2000)
    stack.ingest(unused_tcp_port, writer="writer-a")
    stack.ingest(unused_tcp_port_factory(), writer="writer-b")
    stack.worker()
    stack.beat()
    sent: list[list[str]] = [[], []]

    def push_from(via: int) -> None:
        for round_ in range(12):
            lines = batch(f"w{via} r{round_:02d}", 400)
            stack.push(lines, container=f"c{via}", via=via)
            sent[via] += lines

    threads = [threading.Thread(target=push_from, args=(via,)) for via in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    expected = sent[0] + sent[1]
    wait_lines(standin, expected, stack, timeout=180)
    wait_caught_up(target, stack)
    assert Counter(log.fields["log"] for log in standin.logs()) == Counter(expected)
    for via in (0, 1):
        got = [log.fields["log"] for log in standin.logs() if log.fields["container_id"] == f"c{via}"]
        assert got == sent[via]
