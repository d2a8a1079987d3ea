"""The CLS stand-in refuses what shared/CLS.md says the real service refuses, with the same
statuses and codes, and its fault injection behaves as tests of retries need."""

import http.client
import json
import time
import zlib

import lz4.block
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from forward.sinks import cls_pb2, cls_sign
from tests.forward.cls_standin import Checker, ClsStandIn, Reject, parse_groups

SECRET_ID = "AKIDtest"
SECRET_KEY = "test-secret-key"


@pytest.fixture
def standin():
    server = ClsStandIn(
        credentials={SECRET_ID: SECRET_KEY}, topics={"t1": "open", "t2": "open", "closed": "closed"}
    ).start()
    yield server
    server.stop()


def body_of(*groups, **group_fields) -> bytes:
    """A serialised LogGroupList; each group is a list of logs, each log a list of (key, value)."""
    message = cls_pb2.LogGroupList()
    for logs in groups:
        group = message.logGroupList.add(**group_fields)
        for i, contents in enumerate(logs):
            group.logs.add(time=1_700_000_000_000 + i, contents=[{"key": k, "value": v} for k, v in contents])
    return message.SerializeToString()


ONE_LOG = body_of([[("log", "hello")]])


def post(
    server,
    body: bytes = ONE_LOG,
    *,
    topic: str | None = "t1",
    compress: str | None = "lz4",
    content_type: str | None = "application/x-protobuf",
    host: str | None = None,
    sign_host: str | None = None,
    secret_id: str = SECRET_ID,
    secret_key: str = SECRET_KEY,
    window: tuple[int, int] | None = None,
    authorization: str | None = None,
    path: str = "/structuredlog",
    method: str = "POST",
    extra: dict | None = None,
):
    """Send one request with full control over every header; returns (status, headers, body)."""
    host = host or f"127.0.0.1:{server.port}"
    wire = body
    if compress == "lz4":
        wire = lz4.block.compress(body, store_size=False)
    elif compress == "zstd":
        wire = zstandard.ZstdCompressor().compress(body)
    elif compress == "deflate":
        c = zlib.compressobj(wbits=-15)
        wire = c.compress(body) + c.flush()
    headers = {"Host": host}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if compress not in (None, "raw"):
        headers["x-cls-compress-type"] = compress
    params = {"topic_id": topic} if topic is not None else {}
    if authorization is None:
        now = int(time.time())
        start, end = window or (now - 60, now + 300)
        signed = {"host": sign_host or host}
        if content_type is not None:
            signed["content-type"] = content_type
        authorization = cls_sign.authorization(
            secret_id, secret_key, start, end, "POST", path, params, signed
        )
    if authorization:
        headers["Authorization"] = authorization
    headers.update(extra or {})
    target = path + (f"?topic_id={topic}" if topic is not None else "")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(wire)))
        conn.endheaders(wire)
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


def assert_error(result, status: int, code: str):
    got_status, resp, body = result
    assert resp.getheader("x-cls-requestid")
    assert resp.getheader("content-type") == "application/json"
    doc = json.loads(body)
    assert set(doc) == {"errorcode", "errormessage"}
    assert doc["errormessage"]
    assert (got_status, doc["errorcode"]) == (status, code), doc["errormessage"]


def assert_ok(result):
    status, resp, body = result
    assert (status, body) == (200, b"")
    assert resp.getheader("x-cls-requestid")


def test_it_accepts_a_signed_lz4_upload_and_stores_what_it_received(standin):
    body = body_of(
        [[("log", "a"), ("stream", "stdout")], [("log", "b")]],
        [[("log", "c")]],
        source="10.0.0.1",
        filename="/var/log/x",
        contextFlow="102700A66102516A-59F59",
        logTags=[{"key": "env", "value": "prod"}],
    )
    assert_ok(post(standin, body, extra={"x-cls-hashkey": "00ab"}))
    [received] = standin.received
    assert received.topic_id == "t1"
    assert received.compress == "lz4"
    assert received.hashkey == "00ab"
    assert [len(g.logs) for g in received.groups] == [2, 1]
    group = received.groups[0]
    assert (group.source, group.filename, group.context_flow, group.tags) == (
        "10.0.0.1",
        "/var/log/x",
        "102700A66102516A-59F59",
        [("env", "prod")],
    )
    assert [(log.time, log.contents) for log in received.logs] == [
        (1_700_000_000_000, [("log", "a"), ("stream", "stdout")]),
        (1_700_000_000_001, [("log", "b")]),
        (1_700_000_000_000, [("log", "c")]),
    ]


@pytest.mark.parametrize("compress", ["raw", "zstd", "deflate"])
def test_it_accepts_the_other_compressions(standin, compress):
    assert_ok(post(standin, compress=compress))
    assert standin.received[0].compress == ("none" if compress == "raw" else compress)
    assert standin.logs()[0].fields == {"log": "hello"}


def test_it_verifies_the_host_header_as_received(standin):
    # The Python SDK sends and signs the host without the port, even on a non-default port.
    assert_ok(post(standin, host="127.0.0.1"))
    # Signed one way, sent another: refused.
    assert_error(post(standin, host="127.0.0.1", sign_host=f"127.0.0.1:{standin.port}"), 401, "Unauthorized")


def test_it_tolerates_unknown_protobuf_fields(standin):
    # Go's SDK sends LogGroup.hostname = 6 and Log.collectTime = 3.
    log = b"\x08\x01" + b"\x12\x0a\x0a\x03log\x12\x03abc" + b"\x18\x07"
    group = b"\x0a" + bytes([len(log)]) + log + b"\x32\x04node"
    body = b"\x0a" + bytes([len(group)]) + group
    assert_ok(post(standin, body))
    assert standin.logs()[0].contents == [("log", "abc")]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("", "MissingAuthorization"),
        ("Bearer abc", "InvalidAuthorization"),
        (
            "q-sign-algorithm=md5&q-ak=a&q-sign-time=1;2&q-key-time=1;2&q-header-list=&q-url-param-list="
            "&q-signature=" + "0" * 40,
            "InvalidAuthorization",
        ),
        (
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=1;2&q-key-time=1;2&q-header-list=",
            "InvalidAuthorization",
        ),
        (
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=soon&q-key-time=1;2&q-header-list=&q-url-param-list="
            "&q-signature=" + "0" * 40,
            "InvalidAuthorization",
        ),
        (
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=1;2&q-key-time=1;2&q-header-list=&q-url-param-list="
            "&q-signature=XYZ",
            "InvalidAuthorization",
        ),
    ],
)
def test_it_refuses_missing_or_malformed_authorization_with_400(standin, authorization, code):
    assert_error(post(standin, authorization=authorization), 400, code)


def _auth_with(**changes) -> str:
    now = int(time.time())
    parts = {
        "q-sign-algorithm": "sha1",
        "q-ak": SECRET_ID,
        "q-sign-time": f"{now - 60};{now + 300}",
        "q-key-time": f"{now - 60};{now + 300}",
        "q-header-list": "host",
        "q-url-param-list": "topic_id",
        "q-signature": "0" * 40,
    }
    parts.update(changes)
    return "&".join(f"{k}={v}" for k, v in parts.items())


def test_it_refuses_bad_signatures_with_401(standin):
    now = int(time.time())
    cases = {
        "unknown SecretId": post(standin, secret_id="AKIDother"),
        "wrong SecretKey": post(standin, secret_key="not-it"),
        "expired": post(standin, window=(now - 1000, now - 400)),
        "not yet valid": post(standin, window=(now + 100, now + 400)),
        "end before start": post(standin, window=(now + 10, now - 10)),
        "key time differs": post(
            standin, authorization=_auth_with(**{"q-key-time": f"{now - 61};{now + 300}"})
        ),
        "signature mismatch": post(standin, authorization=_auth_with()),
        "host not signed (strict)": post(
            standin, authorization=_auth_with(**{"q-header-list": "content-type"})
        ),
        "signed header absent": post(
            standin, authorization=_auth_with(**{"q-header-list": "host;content-md5"})
        ),
    }
    for name, result in cases.items():
        assert_error(result, 401, "Unauthorized")
        assert name


def test_it_refuses_a_signature_for_another_topic(standin):
    now = int(time.time())
    host = f"127.0.0.1:{standin.port}"
    auth = cls_sign.authorization(
        SECRET_ID,
        SECRET_KEY,
        now - 60,
        now + 300,
        "POST",
        "/structuredlog",
        {"topic_id": "t2"},
        {"host": host, "content-type": "application/x-protobuf"},
    )
    assert_error(post(standin, topic="t1", authorization=auth), 401, "Unauthorized")


def test_it_refuses_a_replayed_signature_in_replay_mode():
    with ClsStandIn(credentials={SECRET_ID: SECRET_KEY}, topics=["t1"], refuse_replay=True) as server:
        now = int(time.time())
        assert_ok(post(server, window=(now - 60, now + 300)))
        assert_error(post(server, window=(now - 60, now + 300)), 401, "Unauthorized")
        assert len(server.received) == 1


def test_it_refuses_weak_auth_and_checks_sts_tokens_when_configured():
    with ClsStandIn(credentials={SECRET_ID: SECRET_KEY}, topics=["t1"], tokens={"good"}) as server:
        weak = post(server, authorization="", extra={"x-cls-auth-mode": "weak", "X-CLS-Uin": "100"})
        assert_error(weak, 401, "Unauthorized")
        assert_error(post(server, extra={"X-Cls-Token": "bad"}), 401, "Unauthorized")
        assert_ok(post(server, extra={"X-Cls-Token": "good"}))
        assert server.received[0].token == "good"


def test_it_refuses_bad_routes_and_topics(standin):
    assert_error(post(standin, topic=None), 400, "InvalidParam")
    assert_error(post(standin, topic=""), 400, "InvalidParam")
    assert_error(post(standin, path="/structuredlogs"), 400, "InvalidParam")
    assert_error(post(standin, method="PUT"), 400, "InvalidParam")
    assert_error(post(standin, topic="nope"), 404, "TopicNotExist")
    assert_error(post(standin, topic="closed"), 400, "TopicClosed")


def test_it_refuses_wrong_content_types_and_compressions(standin):
    assert_error(post(standin, content_type=None), 400, "MissingContentType")
    assert_error(post(standin, content_type="application/json"), 400, "InvalidContentType")
    assert_error(post(standin, compress="gzip"), 400, "InvalidCompressType")
    assert_error(post(standin, b"", compress="raw"), 400, "MissingContent")


def test_it_refuses_bodies_it_cannot_decompress_or_parse(standin):
    frame = lz4.frame.compress(ONE_LOG)  # LZ4 *frame*, not the raw block CLS wants
    assert_error(
        post(standin, frame, compress="raw", extra={"x-cls-compress-type": "lz4"}), 400, "InvalidContent"
    )
    assert_error(
        post(standin, b"\xff" * 64, compress="raw", extra={"x-cls-compress-type": "lz4"}),
        400,
        "InvalidContent",
    )
    assert_error(
        post(standin, b"\x01\x02", compress="raw", extra={"x-cls-compress-type": "zstd"}),
        400,
        "InvalidContent",
    )
    deflater = zlib.compressobj(wbits=-15)
    truncated = (deflater.compress(ONE_LOG * 50) + deflater.flush())[:10]
    assert_error(
        post(standin, truncated, compress="raw", extra={"x-cls-compress-type": "deflate"}),
        400,
        "InvalidContent",
    )
    assert_error(post(standin, b"\x0a\xff\xff\xff"), 400, "InvalidContent")  # truncated protobuf
    missing_time = b"\x0a\x0e\x0a\x0c\x12\x0a\x0a\x03log\x12\x03abc"  # Log without its required time
    assert_error(post(standin, missing_time), 400, "InvalidContent")
    bad_utf8 = ONE_LOG.replace(b"hello", b"hell\xff")
    assert_error(post(standin, bad_utf8), 400, "InvalidContent")
    assert standin.received == []


def test_it_enforces_counts_and_key_rules(standin):
    assert_error(post(standin, body_of(*[[[("log", "x")]]] * 11)), 400, "InvalidParam")
    assert_ok(post(standin, body_of(*[[[("log", "x")]]] * 10)))
    assert_error(post(standin, body_of([])), 400, "InvalidParam")  # a group without logs
    assert_error(post(standin, b"", compress="raw"), 400, "MissingContent")
    assert_error(post(standin, body_of([[("log", "x")]] * 10_001)), 400, "InvalidParam")
    assert_ok(post(standin, body_of([[("log", "x")]] * 10_000)))
    assert_error(post(standin, body_of([[("__TOPICID__", "x")]])), 400, "InvalidParam")
    assert_error(post(standin, body_of([[("_private", "x")]])), 400, "InvalidParam")
    assert_error(post(standin, body_of([[("", "x")]])), 400, "InvalidParam")


def test_it_allows_leading_underscores_when_not_strict():
    with ClsStandIn(credentials={SECRET_ID: SECRET_KEY}, topics=["t1"], strict=False) as server:
        assert_ok(post(server, body_of([[("__original_text__", "x")]])))
        assert_error(post(server, body_of([[("__FILENAME__", "x")]])), 400, "InvalidParam")


def test_it_enforces_the_size_limits(standin):
    assert_ok(post(standin, body_of([[("log", "v" * 1_000_000)]])))
    assert_error(post(standin, body_of([[("log", "v" * 1_000_001)]])), 403, "LogSizeExceed")
    # Six values of 0.9 MB in one group: 5.4 MB of values, body still under 6 MB.
    assert_error(post(standin, body_of([[("log", "v" * 900_000)]] * 6)), 403, "LogSizeExceed")
    assert_ok(post(standin, body_of([[("log", "v" * 900_000)]] * 5)))
    # Seven such logs in seven groups: every group is fine, the body is over 6 MB.
    assert_error(post(standin, body_of(*[[[("log", "v" * 900_000)]]] * 7)), 413, "LogSizeExceed")
    assert len(standin.received) == 2


def test_it_refuses_an_oversized_declared_length_without_reading_it(standin):
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=10)
    conn.putrequest("POST", "/structuredlog?topic_id=t1")
    conn.putheader("Content-Length", str(64 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())["errorcode"]) == (413, "LogSizeExceed")
    conn.close()


# -- fault injection ---------------------------------------------------------------------------


def test_it_injects_429_and_500_then_recovers(standin):
    standin.inject("429", n=2)
    standin.inject("500")
    assert_error(post(standin), 429, "SpeedQuotaExceed")
    assert_error(post(standin), 429, "SpeedQuotaExceed")
    assert_error(post(standin), 500, "InternalError")
    assert_ok(post(standin))
    assert standin.statuses() == [429, 429, 500, 200]
    assert len(standin.received) == 1


def test_it_lets_requests_through_before_a_fault(standin):
    standin.inject("500", after=1)
    assert_ok(post(standin))
    assert_error(post(standin), 500, "InternalError")


def test_it_answers_late_when_told_to_sleep(standin):
    standin.inject("sleep", seconds=0.5)
    assert_ok(post(standin))
    assert len(standin.received) == 1


def test_it_drops_connections_before_or_after_storing(standin):
    standin.inject("drop")
    with pytest.raises(http.client.RemoteDisconnected):
        post(standin)
    assert standin.received == []
    standin.inject("drop_after_store")
    with pytest.raises(http.client.RemoteDisconnected):
        post(standin)
    assert len(standin.received) == 1


def test_it_refuses_connections_while_down_and_serves_again_on_the_same_port(standin):
    port = standin.port
    assert_ok(post(standin))
    standin.down()
    with pytest.raises(ConnectionRefusedError):
        post(standin)
    standin.up()
    assert standin.port == port
    assert_ok(post(standin))
    assert len(standin.received) == 2


def _ask_again(conn: http.client.HTTPConnection) -> None:
    conn.request("POST", "/nope", body=b"", headers={"Content-Length": "0"})
    conn.getresponse().read()


def test_it_cuts_kept_alive_connections_when_going_down(standin):
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
    conn.request("POST", "/nope", body=b"", headers={"Content-Length": "0"})
    conn.getresponse().read()
    standin.down()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _ask_again(conn)
    conn.close()
    standin.up()


def test_it_refuses_unknown_fault_kinds(standin):
    with pytest.raises(ValueError, match="fault"):
        standin.inject("teapot")


# -- the decoder on arbitrary input ------------------------------------------------------------


def _outcome(fn, *args):
    """(result, None) or (None, the Reject raised): both are acceptable answers to bad input."""
    try:
        return fn(*args), None
    except Reject as e:
        return None, e


class _Headers(dict):
    def get(self, name, default=None):
        return super().get(name.lower(), default)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=2_000) | st.builds(lambda b: ONE_LOG[: len(b)] + b, st.binary(max_size=50)),
    compress=st.sampled_from(["", "lz4", "zstd", "deflate", "snappy"]),
)
def test_it_answers_any_body_with_200_or_a_clean_4xx(body, compress):
    now = int(time.time())
    checker = Checker({SECRET_ID: SECRET_KEY}, {"t1": "open"})
    headers = _Headers(
        {"host": "h", "content-type": "application/x-protobuf", "x-cls-compress-type": compress}
    )
    headers["authorization"] = cls_sign.authorization(
        SECRET_ID,
        SECRET_KEY,
        now - 60,
        now + 300,
        "POST",
        "/structuredlog",
        {"topic_id": "t1"},
        {"host": "h"},
    )
    received, refused = _outcome(checker.check, "POST", "/structuredlog?topic_id=t1", headers, body, "rid")
    if refused is not None:
        assert refused.status in (400, 403, 413)
        assert refused.code
        assert refused.message
    else:
        assert received.groups


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=500))
def test_it_parses_any_bytes_into_groups_or_a_reject(raw):
    groups, refused = _outcome(parse_groups, raw)
    if refused is not None:
        assert refused.status in (400, 403)
    else:
        assert all(1 <= len(g.logs) <= 10_000 for g in groups)
