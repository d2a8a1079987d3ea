"""The CLS sink on its own and against the stand-in: signature, encoding, batching, rate limits,
and how answers are classified (retry vs final)."""

import hashlib
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forward.sinks import cls_pb2, cls_sign
from forward.sinks.cls import (
    ClsClient,
    ClsError,
    ClsFinalError,
    ClsRetryableError,
    ClsSink,
    classify_response,
)
from forward.sinks.cls_batch import RESERVED_KEYS, ClsBatcher, ClsLimits, encode_row
from forward.sinks.ratelimit import RateLimiter
from forward.sinks.row import ForwardRow
from tests.forward.cls_standin import ClsStandIn

# Tencent's documented examples (shared/CLS.md §2; request signature doc, all language versions).
DOC_SECRET_ID = "AKIDc9YlmrBcFk4C8sbmXQ8i65XXXXXXXXXX"
DOC_SECRET_KEY = "LUSE4nPK1d4tX5SHyXv6tZXXXXXXXXXX"
DOC_TIME = "1510109254;1510109314"
DOC_HOST = "ap-shanghai.cls.myqcloud.com"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_it_derives_the_documented_sign_key():
    assert cls_sign.sign_key(DOC_SECRET_KEY, DOC_TIME) == "a4501294d3a835f8dab6caf5c19837dd19eef357"


@pytest.mark.parametrize(
    ("method", "path", "params", "headers", "info_sha1", "sig"),
    [
        (
            "GET",
            "/logset",
            {"logset_name": "testset"},
            {"host": DOC_HOST},
            "74713a7e01250b81424dac21dced038ee5b8054d",
            "42a7a1d1b44f14ae39a5e7fc3172feec6a08b197",
        ),
        (
            "GET",
            "/logset",
            {"logset_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
            {"host": DOC_HOST},
            "35601c3365a361b62b980fda754318c29862d39c",
            "2c53900d3fe8d2e875db8a6af5fe7303ee1567a8",
        ),
        (
            "PUT",
            "/logset",
            {},
            {
                "content-md5": "f9c7fc33c7eab68dfa8a52508d1f4659",
                "content-type": "application/json",
                "host": DOC_HOST,
            },
            "0ca0242c3d50441fda6aa234d31bea7a7a12a1ea",
            "85a55e61de42483ba03bffd07a6c01b8d651af51",
        ),
    ],
)
def test_it_matches_the_documented_signature_vectors(method, path, params, headers, info_sha1, sig):
    info = cls_sign.http_request_info(method, path, params, headers)
    assert _sha1(info) == info_sha1
    assert cls_sign.string_to_sign(DOC_TIME, info) == f"sha1\n{DOC_TIME}\n{info_sha1}\n"
    assert cls_sign.signature(DOC_SECRET_KEY, DOC_TIME, method, path, params, headers) == sig
    start, end = (int(x) for x in DOC_TIME.split(";"))
    auth = cls_sign.authorization(DOC_SECRET_ID, DOC_SECRET_KEY, start, end, method, path, params, headers)
    assert auth == (
        f"q-sign-algorithm=sha1&q-ak={DOC_SECRET_ID}&q-sign-time={DOC_TIME}&q-key-time={DOC_TIME}"
        f"&q-header-list={';'.join(headers)}&q-url-param-list={';'.join(params)}&q-signature={sig}"
    )


def test_it_matches_the_upload_vector_with_header_names_in_any_case():
    key_time = "1700000000;1700000360"
    params = {"topic_id": "0c5f8b2e-1111-2222-3333-444455556666"}
    headers = {"Host": "ap-guangzhou.cls.tencentcs.com", "Content-Type": "application/x-protobuf"}
    info = cls_sign.http_request_info("POST", "/structuredlog", params, headers)
    assert "content-type=application%2Fx-protobuf&host=ap-guangzhou.cls.tencentcs.com" in info
    assert cls_sign.sign_key(DOC_SECRET_KEY, key_time) == "f4b6173e052012833ca6d0cd2605c21f62326b11"
    assert _sha1(info) == "59436f59c802a0ff225319b2eb6a12ff3f93e460"
    sig = cls_sign.signature(DOC_SECRET_KEY, key_time, "POST", "/structuredlog", params, headers)
    assert sig == "3cb770fe8c2e38be1a02e53cc912f148c81191b0"


def _proto_fields(text: str) -> dict[str, set[tuple]]:
    """message name → {(label, type, name, number)} from cls.proto (flat, nested names dotted)."""
    fields: dict[str, set[tuple]] = {}
    stack: list[str] = []
    for raw in text.splitlines():
        line = raw.split("//")[0].strip()
        if m := re.fullmatch(r"message (\w+) \{", line):
            stack.append(m.group(1))
            fields[".".join(stack)] = set()
        elif line == "}":
            stack.pop()
        elif m := re.fullmatch(r"(required|optional|repeated) ([\w.]+) (\w+) = (\d+);", line):
            fields[".".join(stack)].add((m.group(1), m.group(2), m.group(3), int(m.group(4))))
    return fields


def test_it_builds_the_same_messages_as_cls_proto():
    proto = (Path(__file__).parents[2] / "forward" / "sinks" / "cls.proto").read_text()
    expected = _proto_fields(proto)
    labels = {1: "optional", 2: "required", 3: "repeated"}
    scalar = {9: "string", 3: "int64"}
    built: dict[str, set[tuple]] = {}

    def walk(message, prefix=""):
        name = prefix + message.name
        built[name] = set()
        for f in message.field:
            type_ = scalar.get(f.type) or f.type_name.removeprefix(".cls.").removeprefix(name + ".")
            built[name].add((labels[f.label], type_, f.name, f.number))
        for nested in message.nested_type:
            walk(nested, name + ".")

    for message in cls_pb2.FILE_DESCRIPTOR_PROTO.message_type:
        walk(message)
    assert built == expected
    assert set(expected) == {"Log", "Log.Content", "LogTag", "LogGroup", "LogGroupList"}


# -- encoding ----------------------------------------------------------------------------------


def _row(i: int = 0, **kw) -> ForwardRow:
    base = {
        "ts_ns": 1_700_000_000_123_456_789 + i,
        "line": f"line {i}",
        "stream": "stderr",
        "level": 3,
        "tenant": "acme",
        "service": "web",
        "container_id": "c0ffee" * 10,
        "container_name": "web-1",
        "image": "nginx:1.25",
        "host": "node-1",
    }
    base.update(kw)
    return ForwardRow(**base)


def test_it_encodes_a_row_as_key_values_with_its_own_time_in_ms():
    log = encode_row(
        _row(labels={"com.docker.compose.service": "web", "odd key!": "x"}, attrs={"user": "bob", "n": 3}),
        ClsLimits(),
    )
    assert log.time_ms == 1_700_000_000_123
    assert log.contents == [
        ("log", "line 0"),
        ("stream", "stderr"),
        ("level", "error"),
        ("tenant", "acme"),
        ("service", "web"),
        ("container_id", "c0ffee" * 10),
        ("container_name", "web-1"),
        ("image", "nginx:1.25"),
        ("host", "node-1"),
        ("label.com.docker.compose.service", "web"),
        ("label.odd_key_", "x"),
        ("attr.user", "bob"),
        ("attr.n", "3"),
    ]


def test_it_never_emits_reserved_or_underscore_keys_even_for_hostile_labels():
    hostile = dict.fromkeys([*RESERVED_KEYS, "_x", "", "a\nb", "é"], "v")
    log = encode_row(_row(labels=hostile, attrs=hostile), ClsLimits())
    for key, _ in log.contents:
        assert key
        assert not key.startswith("_")
        assert not any(key.startswith(r) for r in RESERVED_KEYS)
        assert re.fullmatch(r"[A-Za-z0-9_.\-/@]+", key)


def test_it_truncates_an_oversized_value_at_a_character_boundary_and_marks_it():
    line = "é" * 600_000  # 1.2 MB of UTF-8
    log = encode_row(_row(line=line), ClsLimits())
    fields = dict(log.contents)
    assert len(fields["log"].encode()) <= 1_000_000
    assert line.startswith(fields["log"])
    assert fields["truncated"] == "log"


def test_it_drops_extra_fields_that_do_not_fit_one_log_and_marks_it():
    attrs = {f"a{i}": "x" * 999_000 for i in range(8)}
    log = encode_row(_row(attrs=attrs), ClsLimits())
    assert log.size <= ClsLimits().max_log_bytes
    assert dict(log.contents)["truncated"] == "fields"
    assert dict(log.contents)["log"] == "line 0"


def test_it_replaces_unencodable_text_instead_of_failing():
    log = encode_row(_row(line=b"bad \xff bytes".decode("utf-8", "surrogateescape")), ClsLimits())
    assert dict(log.contents)["log"] == "bad ? bytes"
    log = encode_row(_row(line=b"raw \xfe"), ClsLimits())
    assert dict(log.contents)["log"] == "raw \ufffd"


# -- batching ----------------------------------------------------------------------------------


def _decode(body: bytes):
    message = cls_pb2.LogGroupList()
    message.ParseFromString(body)
    assert message.IsInitialized()
    return message


def _check_request(request, limits: ClsLimits) -> list:
    """Assert one request is within every limit; return its logs in order."""
    assert len(request.body) <= limits.max_body_bytes
    message = _decode(request.body)
    assert 1 <= len(message.logGroupList) <= limits.max_groups_per_request
    assert request.groups == len(message.logGroupList)
    logs = []
    for group in message.logGroupList:
        assert 1 <= len(group.logs) <= limits.max_logs_per_group
        values = 0
        for log in group.logs:
            for c in log.contents:
                size = len(c.value.encode())
                assert size <= limits.max_value_bytes
                values += size
        assert values <= limits.max_group_value_bytes
        logs.extend(group.logs)
    assert request.rows == len(logs)
    return logs


SMALL_LIMITS = ClsLimits(
    max_groups_per_request=3,
    max_logs_per_group=4,
    max_value_bytes=300,
    max_group_value_bytes=700,
    max_body_bytes=2_000,
    max_log_bytes=650,
    max_key_chars=16,
    max_group_meta_bytes=100,
)

row_strategy = st.builds(
    _row,
    i=st.integers(0, 10**12),
    # Mostly short lines, often long ones (ASCII and multi-byte) that press on the size limits.
    line=st.text(max_size=60) | st.builds(str.__mul__, st.sampled_from(["x", "é", "✓"]), st.integers(0, 400)),
    level=st.none() | st.integers(0, 7),
    labels=st.none() | st.dictionaries(st.text(max_size=20), st.text(max_size=120), max_size=4),
    attrs=st.none()
    | st.dictionaries(
        st.text(max_size=20), st.integers() | st.text(max_size=120) | st.booleans(), max_size=3
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_strategy, max_size=40), source=st.sampled_from(["", "node-1"]))
def test_it_splits_any_rows_into_requests_within_limits_keeping_order(rows, source):
    batcher = ClsBatcher(SMALL_LIMITS, source=source, tags={"env": "test"} if source else None)
    sent = []
    for request in batcher.requests(rows):
        sent.extend(_check_request(request, SMALL_LIMITS))
    assert len(sent) == len(rows)
    for row, log in zip(rows, sent, strict=True):
        expected = encode_row(row, SMALL_LIMITS)
        assert log.time == row.ts_ns // 1_000_000
        assert [(c.key, c.value) for c in log.contents] == expected.contents
        # A line is either sent whole or cut and marked.
        text = dict(expected.contents)["log"]
        assert text == row.line or (
            "log" in dict(expected.contents).get("truncated", "") and row.line.startswith(text)
        )


def test_it_respects_the_real_limits_on_counts_and_sizes():
    limits = ClsLimits()
    batcher = ClsBatcher(limits)
    # 101 000 tiny rows: 10 000 logs per group, at most 10 groups per request → 2 requests.
    requests_ = list(batcher.requests(ForwardRow(ts_ns=i, line="x") for i in range(101_000)))
    assert [r.groups for r in requests_] == [10, 1]
    assert sum(len(_check_request(r, limits)) for r in requests_) == 101_000
    # Typical rows (~200 bytes): the 6 MB body limit closes a request after 3 full groups.
    requests_ = list(batcher.requests(_row(i) for i in range(35_000)))
    assert [r.groups for r in requests_] == [3, 1]
    assert all(len(r.body) > 5_900_000 for r in requests_[:-1])
    assert sum(len(_check_request(r, limits)) for r in requests_) == 35_000
    # 1 MB lines: 4 fit the 5 MB group value budget with their other fields, and 5 … no.
    big = [_row(i, line=str(i % 10) * 999_000) for i in range(13)]
    requests_ = list(batcher.requests(big))
    for r in requests_:
        _check_request(r, limits)
    assert sum(r.rows for r in requests_) == 13
    assert all(len(r.body) > 3_900_000 for r in requests_[:-1])  # full, not one log per request


def test_it_refuses_group_metadata_that_leaves_no_room():
    with pytest.raises(ValueError, match="tags"):
        ClsBatcher(tags={"k": "v" * 70_000})


# -- answer classification ---------------------------------------------------------------------


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


# -- rate limiting -----------------------------------------------------------------------------


class FakeClock:
    """Time that only moves when the limiter sleeps, so rates are checked exactly, not timed."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _max_in_window(events: list[tuple[float, int]], width: float = 1.0) -> tuple[int, int]:
    most_requests = most_bytes = 0
    for i, (start, _) in enumerate(events):
        inside = [n for t, n in events[i:] if t < start + width - 1e-9]
        most_requests = max(most_requests, len(inside))
        most_bytes = max(most_bytes, sum(inside))
    return most_requests, most_bytes


def test_it_keeps_every_second_under_500_requests():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    events = []
    for _ in range(2_000):
        limiter.acquire(100)
        events.append((clock.now, 100))
    most_requests, _ = _max_in_window(events)
    assert 480 <= most_requests <= 500
    assert clock.now - 1000.0 >= (2_000 - 50) / 450 - 1e-6  # the long-run rate, not a burst


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 2_000_000), min_size=1, max_size=60))
def test_it_keeps_every_second_under_5_mb_for_any_request_sizes(sizes):
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    events = []
    for size in sizes:
        limiter.acquire(size)
        events.append((clock.now, size))
    # A request bigger than the bucket goes once the bucket is full and leaves a debt, so a
    # window can exceed the limit by at most the part of one request above the bucket size.
    _, most_bytes = _max_in_window(events)
    assert most_bytes <= 5_000_000 + max(0, max(sizes) - 500_000)


def test_it_makes_the_next_request_wait_after_an_oversized_one():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    assert limiter.acquire(6_000_000) == 0  # a full bucket lets it go at once
    waited = limiter.acquire(1)
    assert waited == pytest.approx((6_000_000 - 500_000 + 1) / 4_500_000)


# -- client against the stand-in ---------------------------------------------------------------


@pytest.fixture
def standin():
    server = ClsStandIn(topics=["topic-1", "topic-2"], refuse_replay=True).start()
    yield server
    server.stop()


def _client(standin, **kw) -> ClsClient:
    secret_id, secret_key = standin.credentials
    kw.setdefault("timeout", (2.0, 5.0))
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


def test_it_rejects_endpoints_it_would_have_to_guess_about():
    for endpoint in ("ap-guangzhou.cls.tencentcs.com", "ftp://x", "https://host/path", "https://host?x=1"):
        with pytest.raises(ValueError, match="endpoint"):
            ClsClient(endpoint, "id", "key")
