"""The CLS client: how answers are classified (retry vs final), and the client against the
stand-in: delivery, faults, refusals, and how many rows a failed send had already delivered."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forward.sinks import cls_pb2
from forward.sinks.cls import (
    ClsClient,
    ClsError,
    ClsFinalError,
    ClsRetryableError,
    ClsSink,
    classify_response,
)
from forward.sinks.cls_batch import ClsBatcher, ClsLimits
from tests.forward.cls_standin import ClsStandIn
from tests.forward.support import make_row as _row

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "SpeedQuotaExceed", True),
        (429, "Other", True),
        (500, "InternalError", True),
        (502, None, True),
        (503, None, True),
        (408, None, True),
        (400, "InvalidContent", False),
        (401, "Unauthorized", False),
        (403, "LogSizeExceed", False),
        (404, "TopicNotExist", False),
        (413, "LogSizeExceed", False),
    ],
)
def test_it_classifies_answers_as_retryable_or_final(status, code, retryable):
    body = (
        b'{"errorcode": "%s", "errormessage": "why"}' % code.encode() if code else b"<html>bad gateway</html>"
    )
    with pytest.raises(ClsError) as info:
        classify_response(status, {"x-cls-requestid": "rid-1"}, body)
    err = info.value
    assert err.retryable is retryable
    assert isinstance(err, ClsRetryableError if retryable else ClsFinalError)
    assert err.status == status
    assert err.code == code
    assert err.request_id == "rid-1"
    assert err.message == ("why" if code else "<html>bad gateway</html>")


def test_it_returns_the_request_id_on_success():
    assert classify_response(200, {"x-cls-requestid": "abc"}, b"") == "abc"


@settings(max_examples=300, deadline=None)
@given(status=st.integers(100, 599), body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_it_classifies_any_answer_without_crashing(status, body):
    if 200 <= status < 300:
        classify_response(status, {}, body)
        return
    with pytest.raises(ClsError) as info:
        classify_response(status, {"retry-after": "x"}, body)
    assert info.value.retryable == (status >= 500 or status in (408, 429))
    assert len(info.value.message) <= 300
    assert all(ch.isprintable() for ch in info.value.message)


@pytest.fixture
def standin():
    server = ClsStandIn(topics=["topic-1", "topic-2"], refuse_replay=True).start()
    yield server
    server.stop()


def _client(standin, **kw) -> ClsClient:
    secret_id, secret_key = standin.credentials
    # Generous: the stand-in checks every value in Python, which is slow on a loaded machine.
    kw.setdefault("timeout", (5.0, 120.0))
    return ClsClient(standin.endpoint, kw.pop("secret_id", secret_id), kw.pop("secret_key", secret_key), **kw)


def test_it_delivers_rows_in_order_with_their_fields(standin):
    rows = [_row(i, line=f"msg {i} ✓", labels={"team": "core"}, attrs={"req": i}) for i in range(15_000)]
    client = _client(standin)
    sent = ClsSink(client, "topic-1").send(rows)
    assert sent == 15_000
    assert standin.statuses() == [200]
    received = standin.received[0]
    assert received.topic_id == "topic-1"
    assert received.compress == "lz4"
    assert received.host == f"127.0.0.1:{standin.port}"
    assert [len(g.logs) for g in received.groups] == [10_000, 5_000]
    logs = standin.logs("topic-1")
    assert [log.time for log in logs] == [r.ts_ns // 1_000_000 for r in rows]
    assert logs[7].fields == {
        "log": "msg 7 ✓",
        "stream": "stderr",
        "level": "error",
        "tenant": "acme",
        "service": "web",
        "container_id": "c0ffee" * 10,
        "container_name": "web-1",
        "image": "nginx:1.25",
        "host": "node-1",
        "label.team": "core",
        "attr.req": "7",
    }


def test_it_sends_many_requests_in_one_second_without_reusing_a_signature(standin):
    client = _client(standin)
    for i in range(30):
        client.put("topic-2", ClsBatcher().requests([_row(i)]).__next__().body)
    assert standin.statuses() == [200] * 30
    assert len(standin.logs("topic-2")) == 30


def test_it_sends_uncompressed_bodies_and_the_token_when_asked(standin):
    client = _client(standin, compress="none", token="sts-token")
    client.put("topic-1", next(ClsBatcher(source="10.0.0.1", tags={"k": "v"}).requests([_row()])).body)
    received = standin.received[0]
    assert received.compress == "none"
    assert received.token == "sts-token"
    assert received.groups[0].source == "10.0.0.1"
    assert received.groups[0].tags == [("k", "v")]


def _one_body() -> bytes:
    return next(ClsBatcher().requests([_row()])).body


@pytest.mark.parametrize(("fault", "code"), [("429", "SpeedQuotaExceed"), ("500", "InternalError")])
def test_it_raises_retryable_for_injected_server_errors_then_succeeds(standin, fault, code):
    client = _client(standin)
    standin.inject(fault, n=2)
    for _ in range(2):
        with pytest.raises(ClsRetryableError) as info:
            client.put("topic-1", _one_body())
        assert info.value.code == code
        assert info.value.request_id
    client.put("topic-1", _one_body())
    assert len(standin.logs()) == 1


def test_it_raises_retryable_on_a_timeout(standin):
    client = _client(standin, timeout=(2.0, 0.3))
    standin.inject("sleep", seconds=2.0)
    with pytest.raises(ClsRetryableError) as info:
        client.put("topic-1", _one_body())
    assert info.value.code == "Timeout"


def test_it_raises_retryable_when_the_connection_drops(standin):
    client = _client(standin)
    standin.inject("drop")
    with pytest.raises(ClsRetryableError) as info:
        client.put("topic-1", _one_body())
    assert info.value.code == "ConnectionError"
    assert standin.logs() == []
    # The stored-then-dropped case is why delivery is "at least once": a retry duplicates.
    standin.inject("drop_after_store")
    with pytest.raises(ClsRetryableError):
        client.put("topic-1", _one_body())
    client.put("topic-1", _one_body())
    assert len(standin.logs()) == 2


def test_it_raises_retryable_while_cls_is_down_and_recovers(standin):
    client = _client(standin)
    client.put("topic-1", _one_body())  # leaves a pooled keep-alive connection behind
    standin.down()
    with pytest.raises(ClsRetryableError) as info:
        client.put("topic-1", _one_body())
    assert info.value.code == "ConnectionError"
    standin.up()
    client.put("topic-1", _one_body())
    assert len(standin.logs()) == 2


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"secret_key": "wrong"}, 401, "Unauthorized"),
        ({"secret_id": "AKIDunknown"}, 401, "Unauthorized"),
        ({"clock": lambda: time.time() - 3600}, 401, "Unauthorized"),
    ],
)
def test_it_raises_final_for_refused_credentials(standin, change, status, code):
    client = _client(standin, **change)
    with pytest.raises(ClsFinalError) as info:
        client.put("topic-1", _one_body())
    assert (info.value.status, info.value.code) == (status, code)
    assert "Unauthorized" in str(info.value)


def test_it_raises_final_for_an_unknown_topic_and_an_oversized_body(standin):
    client = _client(standin)
    with pytest.raises(ClsFinalError) as info:
        client.put("no-such-topic", _one_body())
    assert (info.value.status, info.value.code) == (404, "TopicNotExist")
    # Bypass the batcher to prove the client reports the service's refusal as final.
    message = cls_pb2.LogGroupList()
    for g in range(7):
        group = message.logGroupList.add()
        group.logs.add(time=1, contents=[{"key": "log", "value": str(g) * 900_000}])
    with pytest.raises(ClsFinalError) as info:
        client.put("topic-1", message.SerializeToString())
    assert (info.value.status, info.value.code) == (413, "LogSizeExceed")


def test_it_reports_how_many_rows_were_acknowledged_before_a_failure(standin):
    rows = [_row(i) for i in range(25)]
    limits = ClsLimits(max_groups_per_request=1, max_logs_per_group=10)  # requests of 10, 10, 5
    sink = ClsSink(_client(standin), "topic-1", ClsBatcher(limits))
    standin.inject("429")
    with pytest.raises(ClsRetryableError) as info:
        sink.send(rows)
    assert info.value.rows_sent == 0
    standin.inject("500", after=1)
    with pytest.raises(ClsRetryableError) as info:
        sink.send(rows)
    assert info.value.rows_sent == 10  # the cursor may move by exactly the first request
    assert sink.send(rows[10:]) == 15
    assert [log.fields["log"] for log in standin.logs()] == [f"line {i}" for i in range(25)]


def test_it_encodes_the_next_request_while_one_is_in_flight(standin):
    """The wait for CLS overlaps the encoding of what comes next: rows for the second request
    are taken while the first one is still unanswered (held by the stand-in until then)."""
    limits = ClsLimits(max_groups_per_request=1, max_logs_per_group=10)  # requests of 10 rows
    seen_while_pulling_row_11 = {}

    def rows():
        for i in range(30):
            if i == 11:  # the batcher yielded request 1 after row 10; row 11 starts request 2
                deadline = time.monotonic() + 30
                while standin.started < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen_while_pulling_row_11.update(started=standin.started, answered=len(standin.responses))
                standin.release()
            yield _row(i)

    standin.inject("hold", seconds=30)
    sink = ClsSink(_client(standin), "topic-1", ClsBatcher(limits))
    try:
        assert sink.send(rows()) == 30
    finally:
        sink.close()
    assert seen_while_pulling_row_11 == {"started": 1, "answered": 0}
    assert [log.fields["log"] for log in standin.logs()] == [f"line {i}" for i in range(30)]


def test_it_never_has_two_requests_in_flight(standin):
    """Two at once could be stored in either order (lines of a container out of order), and
    a failure must stop what follows it."""
    limits = ClsLimits(max_groups_per_request=1, max_logs_per_group=7)
    sink = ClsSink(_client(standin), "topic-1", ClsBatcher(limits))
    standin.inject("sleep", n=3, seconds=0.05)
    try:
        assert sink.send([_row(i) for i in range(100)]) == 100
        standin.inject("500", after=3)
        with pytest.raises(ClsRetryableError) as info:
            sink.send([_row(i) for i in range(100, 200)])
    finally:
        sink.close()
    assert info.value.rows_sent == 21
    assert standin.max_in_flight == 1
    assert [log.fields["log"] for log in standin.logs()] == [f"line {i}" for i in range(121)]
    assert len(standin.received) == 15 + 3


def test_it_rejects_endpoints_it_would_have_to_guess_about():
    for endpoint in ("ap-guangzhou.cls.tencentcs.com", "ftp://x", "https://host/path", "https://host?x=1"):
        with pytest.raises(ValueError, match="endpoint"):
            ClsClient(endpoint, "id", "key")


def test_it_imports_without_django():
    # The sink must stay usable (and testable) outside Django: forward/tasks.py only feeds it rows.
    code = (
        "import sys; import forward.sinks.cls, forward.sinks.cls_batch, forward.sinks.ratelimit; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'logsite', 'celery')); "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
