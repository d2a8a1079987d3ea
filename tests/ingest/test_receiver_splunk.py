"""Splunk HEC decoder: bodies shaped like Docker's splunk driver sends them (PROTOCOLS.md §3.4)."""

import contextlib
import gzip
import json

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.receivers import splunk
from ingest.receivers.dockertag import TagTemplate
from ingest.receivers.errors import DecodeError
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.waiting import driver_stats

ID12 = "0123456789ab"


def inline(line, source="stdout", time="1767225600.123456", **top):
    event = {"line": line, "source": source, "tag": ID12}
    return json.dumps({"event": event, "time": time, "host": "dockerhost", **top}).encode()


def test_it_decodes_concatenated_inline_events():
    body = inline("one") + inline("two", source="stderr", source_="x") + b"\n" + inline("three")
    records = splunk.decode_events(body, received_ns=9)
    assert [r.line for r in records] == ["one", "two", "three"]
    assert [r.stream for r in records] == ["stdout", "stderr", "stdout"]
    first = records[0]
    assert first.ts_ns == 1767225600_123456000
    assert (first.host, first.container_id, first.received_ns) == ("dockerhost", ID12, 9)
    assert first.attrs is None
    # Top-level keys HEC does not define are ignored, as Splunk does.
    assert records[1].attrs is None


def test_it_keeps_source_sourcetype_index_and_docker_attrs():
    event = {"line": "x", "source": "stdout", "tag": "custom tag", "attrs": {"team": "blue"}}
    body = json.dumps(
        {
            "event": event,
            "time": "1.5",
            "source": "app",
            "sourcetype": "docker",
            "index": "main",
            "fields": {"a": 1},
        }
    ).encode()
    (record,) = splunk.decode_events(body)
    assert record.attrs == {
        "source": "app",
        "sourcetype": "docker",
        "index": "main",
        "fields": {"a": 1},
        "tag": "custom tag",
        "team": "blue",
    }
    assert record.ts_ns == 1_500_000_000


def test_it_stores_a_json_format_line_as_json_text():
    body = json.dumps(
        {"event": {"line": {"level": "info", "n": 1}, "source": "stdout", "tag": ID12}}
    ).encode()
    (record,) = splunk.decode_events(body)
    assert json.loads(record.line) == {"level": "info", "n": 1}


def test_it_reads_the_tag_of_the_raw_format():
    body = json.dumps({"event": f"{ID12} hello world", "time": "1767225600.000001"}).encode()
    (record,) = splunk.decode_events(body)
    assert (record.line, record.container_id, record.ts_ns) == ("hello world", ID12, 1767225600_000001000)
    (other,) = splunk.decode_events(json.dumps({"event": "plain text"}).encode())
    assert (other.line, other.container_id) == ("plain text", "")


def test_it_reads_names_through_the_tag_template():
    body = json.dumps({"event": {"line": "x", "tag": "web-1"}}).encode()
    (record,) = splunk.decode_events(body, tags=TagTemplate("{{.Name}}"))
    assert record.container_name == "web-1"


def test_it_stores_events_of_other_senders_as_json_text():
    body = json.dumps({"event": {"message": "m", "k": [1, 2]}}).encode() + json.dumps({"event": 42}).encode()
    records = splunk.decode_events(body)
    assert [json.loads(r.line) for r in records] == [{"message": "m", "k": [1, 2]}, 42]


def test_it_accepts_numeric_time():
    (record,) = splunk.decode_events(json.dumps({"event": "x", "time": 1767225600.25}).encode())
    assert record.ts_ns == 1767225600_250000000


def test_it_keeps_invalid_utf8_and_nul_in_the_line():
    body = b'{"event": {"line": "caf\xe9 \\u0000", "source": "stdout"}}'
    (record,) = splunk.decode_events(body)
    assert record.line == b"caf\xe9 \x00"


def test_it_decompresses_gzip_with_a_cap():
    body = gzip.compress(inline("a")) + gzip.compress(inline("b"))
    assert [r.line for r in splunk.decode_events(splunk.decompress(body, "gzip", 10_000))] == ["a", "b"]
    bomb = gzip.compress(b" " * (32 * 1024 * 1024), compresslevel=9)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        splunk.decompress(bomb, "gzip", 1024 * 1024)
    with pytest.raises(splunk.HecError, match="Unsupported Content-Encoding"):
        splunk.decompress(body, "br", 10_000)
    with pytest.raises(splunk.HecError, match="too large"):
        splunk.decompress(b"x" * 20, None, 10)
    assert splunk.decompress(b"{}", "identity", 10) == b"{}"


@pytest.mark.parametrize(
    ("body", "code", "index"),
    [
        (b"", 5, None),
        (b"  \n ", 5, None),
        (b"[1]", 6, 0),
        (inline("a") + b"{bad json", 6, 1),
        (inline("a") + b"42", 6, 1),
        (b'{"time": "1"}', 12, 0),
        (b'{"event": null}', 13, 0),
        (b'{"event": "   "}', 13, 0),
        (b'{"event": "x", "time": "yesterday"}', 6, 0),
        (b'{"event": "x", "time": true}', 6, 0),
        (b'{"event": "x", "time": -5}', 6, 0),
        (b'{"event": "x", "time": [1]}', 6, 0),
        (b'{"event": {"line": "x", "deep": ' + b"[" * 100 + b"]" * 100 + b"}}", None, None),
        (b"{" * 100_000, 6, 0),
    ],
)
def test_it_rejects_bad_bodies_with_hec_codes(body, code, index):
    with pytest.raises(DecodeError) as caught:
        splunk.decode_events(body)
    if code is not None:
        assert (caught.value.code, caught.value.index) == (code, index)
        answer = caught.value.body()
        assert answer["code"] == code
        assert answer.get("invalid-event-number") == index


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Splunk abc-123", "abc-123"),
        ("splunk   abc ", "abc"),
        ("Bearer t", "t"),
        ("Basic dXNlcjpwYXNz", None),
        ("Splunk", None),
        ("Splunk  ", None),
        ("", None),
        (None, None),
    ],
)
def test_it_reads_the_token_from_the_authorization_header(header, token):
    assert splunk.token_from_authorization(header) == token


# --- hypothesis -----------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200)


@st.composite
def docker_events(draw):
    fmt = draw(st.sampled_from(["inline", "json", "raw"]))
    line = draw(_text.filter(lambda s: s.strip()) if fmt == "raw" else _text)
    micros = draw(st.integers(0, 4_000_000_000_000_000))
    cid = draw(st.binary(min_size=6, max_size=6)).hex()
    source = draw(st.sampled_from(["stdout", "stderr"]))
    if fmt == "raw":
        event = f"{cid} {line}"
    else:
        value = line
        if fmt == "json":
            value = draw(
                # No NUL in keys either: clean_value makes it U+2400 (test_receiver_helpers.py).
                st.one_of(
                    st.just(line), st.dictionaries(_text.map(lambda k: k[:5]), st.integers(), max_size=3)
                )
            )
        event = {"line": value, "source": source, "tag": cid}
    obj = {"event": event, "time": f"{micros // 10**6}.{micros % 10**6:06d}", "host": draw(_text)}
    return obj, {"fmt": fmt, "line": line, "value": event, "micros": micros, "cid": cid, "source": source}


@given(st.lists(docker_events(), min_size=1, max_size=10), st.booleans())
@settings(max_examples=100, deadline=None)
def test_it_decodes_whatever_dockers_splunk_driver_encodes(generated, compress):
    body = b"".join(json.dumps(obj).encode() for obj, _ in generated)
    if compress:
        body = splunk.decompress(gzip.compress(body), "gzip", 10 * len(body) + 100)
    records = splunk.decode_events(body)
    assert len(records) == len(generated)
    for record, (obj, expected) in zip(records, generated, strict=True):
        assert record.ts_ns == expected["micros"] * 1000
        assert record.host == obj["host"]
        assert record.container_id == expected["cid"]
        if expected["fmt"] == "raw":
            assert record.line == expected["line"]
        else:
            value = expected["value"]["line"]
            assert record.line == value if isinstance(value, str) else json.loads(record.line) == value
            assert record.stream == expected["source"]


@given(st.binary(max_size=1000))
@settings(max_examples=400, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_bytes(data):
    for candidate in (data, b'{"event": ' + data + b"}"):
        with contextlib.suppress(DecodeError):
            splunk.decode_events(candidate)
    with contextlib.suppress(DecodeError):
        splunk.decompress(data, "gzip", 1000)


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=15,
    )
)
@settings(max_examples=150, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_json(value):
    for obj in (
        value,
        {"event": value},
        {"event": "x", "time": value},
        {"event": {"line": value}, "host": value},
    ):
        with contextlib.suppress(DecodeError):
            splunk.decode_events(json.dumps(obj).encode())


# --- transport, through a real ingest process --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_serves_dockers_hec_calls_and_answers_200_after_commit(actors, ingest, unused_tcp_port):
    driver, token = make_driver("splunk", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])
    url = f"http://127.0.0.1:{unused_tcp_port}/services/collector/event/1.0"
    auth = {"Authorization": f"Splunk {token}"}

    assert requests.options(url, timeout=30).status_code == 200
    health = requests.get(f"http://127.0.0.1:{unused_tcp_port}/services/collector/health", timeout=30)
    assert health.status_code == 200
    assert requests.post(url, data=inline("x"), timeout=30).status_code == 401
    assert (
        requests.post(url, data=inline("x"), headers={"Authorization": "Splunk nope"}, timeout=30).status_code
        == 403
    )

    body = gzip.compress(inline("one") + inline("two", source="stderr"))
    response = requests.post(url, data=body, headers={**auth, "Content-Encoding": "gzip"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"text": "Success", "code": 0}
    rows = log_rows()  # 200 means committed: no waiting
    assert [(r["line"], r["stream"], r["container_id"], r["tenant"]) for r in rows] == [
        ("one", 1, ID12, "tenant-a"),
        ("two", 2, ID12, "tenant-a"),
    ]

    bad = requests.post(url, data=inline("fine") + b'{"time": "1"}', headers=auth, timeout=30)
    assert bad.status_code == 400
    assert bad.json() == {"text": "Event field is required", "code": 12, "invalid-event-number": 1}
    bomb = gzip.compress(b" " * (40 * 1024 * 1024))
    too_big = requests.post(url, data=bomb, headers={**auth, "Content-Encoding": "gzip"}, timeout=30)
    assert too_big.status_code == 413
    assert len(log_rows()) == 2
    driver_stats(proc, driver, lambda d: d.get("malformed", 0) >= 1)
