"""Syslog decoder: messages laid out exactly as PROTOCOLS.md §3.3 says Docker and logger write them."""

import contextlib
import json
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.receivers import syslog
from ingest.receivers.base import DriverConfig
from ingest.receivers.dockertag import TagTemplate
from ingest.receivers.errors import DecodeError
from tests.base import make_driver
from tests.support.waiting import driver_stats, wait_rows

ID12 = "0123456789ab"


def test_it_reads_dockers_default_format_without_a_hostname():
    record = syslog.parse_message(f"<30>Jan  2 15:04:05 {ID12}[812]: hello: world\n".encode(), received_ns=3)
    assert record.line == b"hello: world"
    assert (record.level, record.stream) == (6, "stdout")
    assert record.container_id == ID12
    assert record.host == ""
    # BSD time has no year or zone: receive time is used.
    assert (record.ts_ns, record.received_ns) == (None, 3)
    assert record.attrs is None


def test_it_reads_dockers_rfc3164_format_with_a_hostname():
    record = syslog.parse_message(f"<27>Nov 26 09:06:13 dockerhost {ID12}[812]: boom\n".encode())
    assert (record.line, record.host, record.container_id) == (b"boom", "dockerhost", ID12)
    assert (record.level, record.stream) == (3, "stderr")


def test_it_reads_dockers_rfc5424_format():
    data = f"<30>1 2026-01-02T03:04:05+01:00 dockerhost {ID12} 812 {ID12} - line\n".encode()
    record = syslog.parse_message(data)
    assert record.ts_ns == 1767319445 * 10**9
    assert (record.line, record.host, record.container_id) == (b"line", "dockerhost", ID12)
    assert record.attrs is None


def test_it_reads_rfc5424micro_fractions():
    data = f"<27>1 2026-01-02T03:04:05.123456Z h {ID12} 812 {ID12} - x\n".encode()
    assert syslog.parse_message(data).ts_ns == 1767323045_123456000


def test_it_reads_structured_data_into_attrs():
    data = (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Appl\\"ic\\\\a\\]tion" eventID="1011" eventID="1012"]'
        b'[examplePriority@32473 class="high"]'
        b" \xef\xbb\xbfAn application event"
    )
    record = syslog.parse_message(data)
    assert record.line == b"An application event"
    assert record.ts_ns == 1065910455_003000000
    assert (record.level, record.stream, record.host) == (5, "stdout", "mymachine.example.com")
    assert record.attrs == {
        "app": "evntslog",
        "msgid": "ID47",
        "facility": 20,
        "sd": {
            "exampleSDID@32473": {"iut": "3", "eventSource": 'Appl"ic\\a]tion', "eventID": ["1011", "1012"]},
            "examplePriority@32473": {"class": "high"},
        },
    }


def test_it_keeps_a_program_tag_as_app_not_as_container():
    record = syslog.parse_message(b"<13>Nov 26 09:06:13 myhost sshd[42]: Accepted key\n")
    assert (record.container_id, record.container_name) == ("", "")
    assert record.attrs == {"app": "sshd", "procid": "42", "facility": 1}
    assert record.line == b"Accepted key"


def test_it_reads_names_and_images_through_the_tag_template():
    tags = TagTemplate("{{.ImageName}}/{{.Name}}/{{.ID}}")
    data = f"<30>Jan  2 15:04:05 registry:5000/team/nginx:1.2/web-1/{ID12}[812]: hi\n".encode()
    record = syslog.parse_message(data, tags=tags)
    assert (record.image, record.container_name, record.container_id) == (
        "registry:5000/team/nginx:1.2",
        "web-1",
        ID12,
    )
    by_name = syslog.parse_message(b"<30>1 - h web-1 812 web-1 - hi", tags=TagTemplate("{{.Name}}"))
    assert by_name.container_name == "web-1"


def test_it_takes_messages_without_timestamp_or_tag():
    assert syslog.parse_message(b"<13>just text").line == b"just text"
    record = syslog.parse_message(b"<13>Nov 26 09:06:13 host only words here")
    assert (record.host, record.line) == ("host", b"only words here")
    nil = syslog.parse_message(b"<13>1 - - - - - -")
    assert (nil.line, nil.ts_ns, nil.host) == (b"", None, "")


def test_it_reads_an_rfc3339_time_in_bsd_layout():
    record = syslog.parse_message(b"<13>2026-01-02T03:04:05.5Z host app: x")
    assert record.ts_ns == 1767323045_500000000
    assert (record.host, record.line) == ("host", b"x")


def test_it_keeps_a_line_with_a_bad_timestamp():
    record = syslog.parse_message(b"<13>1 2026-13-45T99:00:00Z h app - - - text")
    assert record.line == b"text"
    assert record.ts_ns is None
    assert record.attrs["timestamp"] == "2026-13-45T99:00:00Z"


def test_it_keeps_invalid_utf8_nul_and_cr_in_the_line():
    record = syslog.parse_message(f"<30>Jan  2 15:04:05 {ID12}[1]: caf\xe9\x00\r\n".encode("latin-1"))
    assert record.line == b"caf\xe9\x00\r"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "<PRI>"),
        (b"no pri", "<PRI>"),
        (b"<abc>x", "<PRI>"),
        (b"<192>x", "above 191"),
        (b"<13>1 2026-01-02T03:04:05Z host", "header incomplete"),
        (b"<13>1 - h a p m x", "neither"),
        (b"<13>1 - h a p m [id", "malformed structured data"),
        (b'<13>1 - h a p m [id k="v', "unterminated"),
        (b"<13>1 - h a p m [id k=v]", "parameter"),
        (b'<13>1 - h a p m [="v"]', "SD-ID"),
        (b'<13>1 - h a p m [id k="v"]x', "not followed by a space"),
    ],
)
def test_it_rejects_malformed_messages_clearly(data, reason):
    with pytest.raises(DecodeError, match=reason):
        syslog.parse_message(data)


def test_it_frames_newline_and_octet_counting_on_one_stream():
    first = f"<30>Jan  2 15:04:05 {ID12}[1]: one\n".encode()
    second = f"<30>1 - h {ID12} 1 {ID12} - two\n".encode()
    stream = first + str(len(second)).encode() + b" " + second + b"\r\n" + first
    framer = syslog.StreamFramer()
    frames = []
    for i in range(0, len(stream), 5):
        frames += framer.feed(stream[i : i + 5])
    assert [syslog.parse_message(f).line for f in frames] == [b"one", b"two", b"one"]
    assert framer.finish() is None


def test_it_returns_an_unterminated_last_message_at_end_of_stream():
    framer = syslog.StreamFramer()
    assert framer.feed(b"<13>last words") == []
    assert framer.finish() == b"<13>last words"


def test_it_skips_oversize_messages_and_keeps_going():
    framer = syslog.StreamFramer(max_message_bytes=1_100_000)
    mb_line = b"<13>" + b"m" * 1_000_000 + b"\n"
    huge = b"<13>" + b"h" * 2_000_000
    stream = mb_line + huge + b"\n" + b"2000000 " + huge[:2_000_000] + b"<13>after\n"
    frames = []
    for i in range(0, len(stream), 65536):
        frames += framer.feed(stream[i : i + 65536])
    assert [len(f) for f in frames] == [1_000_004, 9]
    assert framer.oversize == 2


def test_it_recovers_from_a_broken_length_prefix():
    framer = syslog.StreamFramer()
    assert framer.feed(b"12345678901234 nonsense\n<13>ok\n") == [b"<13>ok"]
    assert framer.feed(b"12x <13>bad prefix\n<13>fine\n") == [b"<13>fine"]
    assert framer.malformed == 2


# --- hypothesis -----------------------------------------------------------------------

# "-" alone is RFC 5424's NILVALUE, not a host name.
_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=20).filter(lambda w: w != "-")
_msg = st.binary(max_size=300).filter(lambda b: b"\n" not in b and not b.startswith(b"\xef\xbb\xbf"))


@st.composite
def messages(draw):
    fmt = draw(st.sampled_from(["default", "rfc3164", "rfc5424", "rfc5424micro"]))
    severity = draw(st.sampled_from([3, 6]))
    facility = draw(st.integers(0, 23))
    host = draw(_word)
    cid = draw(st.binary(min_size=6, max_size=6)).hex()
    msg = draw(_msg)
    seconds = draw(st.integers(0, 4_000_000_000))
    micros = draw(st.integers(0, 999_999))
    pri = f"<{facility * 8 + severity}>".encode()
    if fmt in ("default", "rfc3164"):
        stamp = b"Jan  2 15:04:05"
        head = stamp + b" " + (b"" if fmt == "default" else host.encode() + b" ")
        data = pri + head + f"{cid}[77]: ".encode() + msg
        ts_ns = None
    else:
        from datetime import UTC, datetime

        moment = datetime.fromtimestamp(seconds, UTC)
        frac = f".{micros:06d}" if fmt == "rfc5424micro" else ""
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + "+00:00"
        data = pri + f"1 {stamp} {host} {cid} 77 {cid} - ".encode() + msg
        ts_ns = seconds * 10**9 + (micros * 1000 if frac else 0)
    return data + b"\n", {
        "fmt": fmt,
        "severity": severity,
        "host": host,
        "cid": cid,
        "msg": msg,
        "ts_ns": ts_ns,
    }


@given(
    st.lists(messages(), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.integers(1, 500),
)
@settings(max_examples=150, deadline=None)
def test_it_decodes_whatever_a_syslog_sender_encodes(generated, counted, piece):
    stream = b"".join(
        (str(len(data)).encode() + b" " + data) if octets else data
        for (data, _), octets in zip(generated, counted, strict=False)
    )
    framer = syslog.StreamFramer()
    frames = [f for i in range(0, len(stream), piece) for f in framer.feed(stream[i : i + piece])]
    assert len(frames) == len(generated)
    for frame, (_, expected) in zip(frames, generated, strict=True):
        record = syslog.parse_message(frame)
        assert record.line == expected["msg"]
        assert record.level == expected["severity"]
        assert record.stream == ("stderr" if expected["severity"] == 3 else "stdout")
        assert record.container_id == expected["cid"]
        assert record.host == ("" if expected["fmt"] == "default" else expected["host"])
        assert record.ts_ns == expected["ts_ns"]


_field = st.one_of(
    st.just(b"-"),
    st.sampled_from([ID12.encode(), b"web-1", b"nginx:1/web-1/" + ID12.encode(), b"sshd"]),
    st.binary(min_size=1, max_size=12),
)
_stamp = st.one_of(
    st.sampled_from(
        [b"-", b"2026-01-02T03:04:05Z", b"2026-01-02T03:04:05.123456+01:00", b"2026-13-02T03:04:05Z"]
    ),
    st.binary(max_size=30),
)


@given(
    st.integers(0, 200),
    _stamp,
    _field,
    _field,
    _field,
    st.binary(max_size=40),
    st.sampled_from(
        [TagTemplate(), TagTemplate("{{.Name}}"), TagTemplate("{{.ImageName}}/{{.Name}}/{{.ID}}")]
    ),
)
@settings(max_examples=500, deadline=None)
def test_its_fast_path_for_docker_agrees_with_the_general_parser(pri, stamp, host, app, tail, message, tags):
    data = b"<%d>1 %s %s %s 812 %s %s" % (pri, stamp, host, app, app, tail + message)
    try:
        general = syslog._parse(data, tags, 7)
    except DecodeError:
        general = None
    fast = syslog._docker_5424(data, tags, 7)
    assert fast is None or fast == general


def test_it_takes_the_fast_path_for_what_docker_sends():
    for data in (
        f"<30>1 2026-01-02T03:04:05+01:00 dockerhost {ID12} 812 {ID12} - line".encode(),
        f"<27>1 2026-01-02T03:04:05.123456Z dockerhost {ID12} 812 {ID12} -".encode(),
    ):
        assert syslog._docker_5424(data, TagTemplate(), 7) == syslog._parse(data, TagTemplate(), 7)
        assert syslog._docker_5424(data, TagTemplate(), 7) is not None


# Octet-counted frames may end with the sender's newline, which is not part of the line.
_message = st.one_of(st.binary(max_size=40), st.binary(max_size=40).map(lambda b: b + b"\n"))


def _receiver(tags: TagTemplate, tenant: str | None) -> syslog.SyslogReceiver:
    driver = DriverConfig(7, "s", "syslog", "tcp://127.0.0.1:1", tenant, "", {"tag_template": tags.template})
    return syslog.SyslogReceiver(driver, pipeline=None)


@given(
    st.lists(st.tuples(st.integers(0, 200), _stamp, _field, _field, _message), max_size=6),
    st.sampled_from([TagTemplate(), TagTemplate("{{.ImageName}}/{{.Name}}/{{.ID}}")]),
    st.sampled_from([None, "team-a"]),
    st.sampled_from(["", "10.0.0.9"]),
)
@settings(max_examples=300, deadline=None)
def test_the_receivers_cached_headers_give_what_the_general_parser_gives(frames, tags, tenant, peer):
    # Twice through one receiver, so that the second pass is served from its header cache.
    data = [
        b"<%d>1 %s %s %s 812 %s - %s" % (pri, stamp, host, app, app, msg)
        for pri, stamp, host, app, msg in frames
    ]
    receiver = _receiver(tags, tenant)
    expected = []
    for frame in data:
        try:
            record = syslog.parse_message(frame, tags=tags, received_ns=5)
        except DecodeError:
            continue
        record.host = record.host or peer
        record.tenant, record.driver_id = tenant or "default", 7
        expected.append(record)
    assert receiver._decode(data, peer, 5) == expected
    assert receiver._decode(data, peer, 5) == expected


@given(st.binary(max_size=500))
@settings(max_examples=400, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_bytes(data):
    for candidate in (data, b"<13>" + data, b"<13>1 " + data):
        with contextlib.suppress(DecodeError):
            syslog.parse_message(candidate)
    framer = syslog.StreamFramer(max_message_bytes=100)
    framer.feed(data)
    framer.finish()


# --- transport, through a real ingest process --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_stores_syslog_over_udp_and_tcp(actors, ingest, unused_tcp_port):
    driver, _ = make_driver("syslog", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])
    address = ("127.0.0.1", unused_tcp_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(f"<30>Jan  2 15:04:05 {ID12}[1]: over udp\n".encode(), address)
        udp.sendto(b"garbage without pri", address)
    counted = f"<27>1 2026-01-02T03:04:05.123456Z dockerhost {ID12} 1 {ID12} - counted\n".encode()
    with socket.create_connection(address) as tcp:
        tcp.sendall(
            f"<30>Nov 26 09:06:13 dockerhost {ID12}[1]: newline\n".encode()
            + str(len(counted)).encode()
            + b" "
            + counted
            + b"<13>Nov 26 09:06:13 dockerhost sshd[5]: not a container\n"
        )
    rows = wait_rows(4)
    by_line = {r["line"]: r for r in rows}
    assert set(by_line) == {"over udp", "newline", "counted", "not a container"}
    assert by_line["over udp"]["container_id"] == ID12
    assert by_line["counted"]["stream"] == 2
    assert by_line["counted"]["level"] == 3
    # Not a container: the row is keyed by its host, and its program name kept.
    assert by_line["not a container"]["container_id"] == "dockerhost"
    assert json.loads(by_line["not a container"]["attrs"])["app"] == "sshd"
    assert {r["tenant"] for r in rows} == {"tenant-a"}
    driver_stats(proc, driver, lambda d: d.get("malformed", 0) >= 1)


@pytest.mark.django_db(transaction=True)
def test_it_slows_a_tcp_sender_down_instead_of_dropping_when_the_queue_is_full(
    actors, ingest, unused_tcp_port
):
    driver, _ = make_driver("syslog", f"tcp://127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    # A queue of 1,000 lines against 30,000 sent at once: without flow control most would drop.
    proc = ingest([driver.id], LOGSITE_QUEUE_LINES=1000, LOGSITE_BATCH_LINES=500)
    lines = 30_000
    with socket.create_connection(("127.0.0.1", unused_tcp_port)) as tcp:
        tcp.sendall(b"".join(b"<14>1 - host app - - - flood %d\n" % n for n in range(lines)))
    rows = wait_rows(lines, timeout=120)
    assert sorted(r["line"] for r in rows) == sorted(f"flood {n}" for n in range(lines))
    stats = proc.wait_stats(lambda s: s["committed"] >= lines)
    assert stats["dropped"] == 0
