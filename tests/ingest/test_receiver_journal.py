"""Journal export decoder: streams built from the layout in PROTOCOLS.md §4.1."""

import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.partials import PartialAssembler
from ingest.receivers import journal
from ingest.receivers.errors import DecodeError
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.waiting import driver_stats, wait_rows

CID = "d" * 64
BOOT = "b" * 32


def text(name: str, value: str) -> bytes:
    return f"{name}={value}\n".encode()


def binary(name: str, value: bytes) -> bytes:
    return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"


def docker_entry(
    message: bytes = b"hello",
    seq: int = 1,
    priority: int = 6,
    extra: bytes = b"",
    stamp: str = "2026-01-01T00:00:00.123456789Z",
) -> bytes:
    """An entry as systemd-journal-upload sends one that Docker's journald driver wrote."""
    cursor = f"s=abc;i={seq:x};b={BOOT};m=1;t=2;x=3"
    fields = (
        text("__CURSOR", cursor)
        + text("__REALTIME_TIMESTAMP", "1767225600000001")
        + text("__MONOTONIC_TIMESTAMP", "123")
        + text("_BOOT_ID", BOOT)
        + (
            text("MESSAGE", message.decode())
            if b"\n" not in message and message.isascii()
            else binary("MESSAGE", message)
        )
        + text("PRIORITY", str(priority))
        + text("CONTAINER_ID", CID[:12])
        + text("CONTAINER_ID_FULL", CID)
        + text("CONTAINER_NAME", "web-1")
        + text("CONTAINER_TAG", CID[:12])
        + text("SYSLOG_IDENTIFIER", CID[:12])
        + text("IMAGE_NAME", "nginx:latest")
        + text("SYSLOG_TIMESTAMP", stamp)
        + text("CONTAINER_LOG_EPOCH", "e" * 32)
        + text("CONTAINER_LOG_ORDINAL", str(seq))
        + text("_PID", "999")
        + text("_COMM", "dockerd")
        + text("_BOOT_ID", BOOT)
        + text("_HOSTNAME", "node-1")
        + text("_TRANSPORT", "journal")
        + extra
    )
    return fields + b"\n"


def parse(data: bytes, **kw) -> list[journal.Entry]:
    parser = journal.ExportParser(**kw)
    entries = parser.feed(data)
    parser.finish()
    return entries


def test_it_parses_text_and_binary_fields():
    data = text("A", "x=y") + binary("B", b"line\nbreak\x00\xff") + text("A", "") + b"\n"
    (entry,) = parse(data)
    assert entry.fields == {"A": [b"x=y", b""], "B": [b"line\nbreak\x00\xff"]}


def test_it_maps_dockers_journald_fields():
    (entry,) = parse(docker_entry(b"hello", priority=3))
    record = journal.entry_to_record(entry, received_ns=4)
    assert record.line == b"hello"
    assert (record.level, record.stream) == (3, "stderr")
    assert (record.container_id, record.container_name, record.image) == (CID, "web-1", "nginx:latest")
    assert record.host == "node-1"
    assert record.ts_ns == 1767225600_123456789
    assert record.received_ns == 4
    # dockerd's own _PID/_COMM and the driver's bookkeeping are not repeated per row.
    assert record.attrs == {journal.DEDUP_KEY: f"journal:{BOOT}:s=abc;i=1;b={BOOT};m=1;t=2;x=3"}


def test_it_gives_a_resent_entry_the_same_dedup_key():
    first = journal.entry_to_record(parse(docker_entry(seq=5))[0])
    again = journal.entry_to_record(parse(docker_entry(seq=5))[0])
    other = journal.entry_to_record(parse(docker_entry(seq=6))[0])
    assert first.attrs[journal.DEDUP_KEY] == again.attrs[journal.DEDUP_KEY] != other.attrs[journal.DEDUP_KEY]


def test_it_keeps_the_fields_of_ordinary_services():
    data = (
        text("__CURSOR", "c1")
        + text("__REALTIME_TIMESTAMP", "1767225600000001")
        + text("_BOOT_ID", BOOT)
        + text("MESSAGE", "Started foo.service")
        + text("PRIORITY", "5")
        + text("SYSLOG_IDENTIFIER", "systemd")
        + text("SYSLOG_TIMESTAMP", "Jan  1 00:00:00 ")
        + text("_SYSTEMD_UNIT", "init.scope")
        + text("_PID", "1")
        + text("_HOSTNAME", "node-1")
        + b"\n"
    )
    record = journal.entry_to_record(parse(data)[0])
    assert record.ts_ns == 1767225600_000001000
    assert (record.container_id, record.level, record.stream) == ("", 5, "stdout")
    assert record.attrs == {
        journal.DEDUP_KEY: f"journal:{BOOT}:c1",
        "SYSLOG_IDENTIFIER": "systemd",
        "SYSLOG_TIMESTAMP": "Jan  1 00:00:00 ",
        "_SYSTEMD_UNIT": "init.scope",
        "_PID": "1",
    }


def test_it_prefers_the_source_realtime_timestamp_over_the_receive_stamp():
    data = (
        text("__REALTIME_TIMESTAMP", "2000")
        + text("_SOURCE_REALTIME_TIMESTAMP", "1000")
        + text("MESSAGE", "m")
    )
    assert journal.entry_to_record(parse(data + b"\n")[0]).ts_ns == 1_000_000


def test_it_parses_a_stream_fed_one_byte_at_a_time():
    stream = docker_entry(b"one", seq=1) + docker_entry(b"two\nlines\xff", seq=2) + b"\n\n"
    parser = journal.ExportParser()
    entries = [e for i in range(len(stream)) for e in parser.feed(stream[i : i + 1])]
    assert [e.first("MESSAGE") for e in entries] == [b"one", b"two\nlines\xff"]
    assert not parser.in_entry
    parser.finish()


def test_it_reassembles_dockers_partial_fields():
    def fragment(message: bytes, ordinal: int, last: bool) -> bytes:
        marks = text("CONTAINER_PARTIAL_ID", "p" * 32) + text("CONTAINER_PARTIAL_ORDINAL", str(ordinal))
        marks += text("CONTAINER_PARTIAL_LAST", "true" if last else "false")
        if not last:
            marks += text("CONTAINER_PARTIAL_MESSAGE", "true")
        return docker_entry(message, seq=ordinal, extra=marks)

    stream = fragment(b"a" * 100, 1, False) + fragment(b"b" * 100, 2, False) + fragment(b"", 3, True)
    stream += docker_entry(b"whole", seq=4)
    assembler = PartialAssembler()
    out = []
    for entry in parse(stream):
        out += assembler.feed(journal.entry_to_record(entry), now=0.0)
    assert [r.line for r in out] == [b"a" * 100 + b"b" * 100, b"whole"]
    assert "partial" not in out[0].attrs


def test_it_reassembles_the_old_journald_partial_marking():
    marked = text("CONTAINER_PARTIAL_MESSAGE", "true")
    stream = (
        docker_entry(b"first ", extra=marked) + docker_entry(b"second ", extra=marked) + docker_entry(b"end")
    )
    assembler = PartialAssembler()
    out = []
    for entry in parse(stream):
        out += assembler.feed(journal.entry_to_record(entry), now=0.0)
    assert [r.line for r in out] == [b"first second end"]


def test_it_truncates_an_oversize_field_without_failing_the_upload():
    data = binary("COREDUMP", b"x" * 5000) + text("MESSAGE", "m" * 3000) + text("OK", "1") + b"\n"
    parser = journal.ExportParser(max_field_bytes=1000)
    (entry,) = [e for i in range(0, len(data), 100) for e in parser.feed(data[i : i + 100])]
    assert entry.fields == {"COREDUMP": [b"x" * 1000], "MESSAGE": [b"m" * 1000], "OK": [b"1"]}
    assert entry.truncated == ["COREDUMP", "MESSAGE"]
    assert journal.entry_to_record(entry).attrs["truncated_fields"] == ["COREDUMP", "MESSAGE"]


def test_it_streams_a_huge_text_field_without_buffering_it():
    parser = journal.ExportParser(max_field_bytes=100_000)
    assert parser.feed(b"MESSAGE=") == []
    for _ in range(200):
        assert parser.feed(b"y" * 65536) == []
        assert len(parser._buf) <= 70_000
    (entry,) = parser.feed(b"\n\n")
    assert len(entry.first("MESSAGE")) == 100_000
    assert entry.truncated == ["MESSAGE"]


def test_it_drops_fields_beyond_the_count_and_entry_limits():
    data = b"".join(text(f"F{i}", "v") for i in range(10)) + b"\n"
    (entry,) = parse(data, max_fields=4)
    assert list(entry.fields) == ["F0", "F1", "F2", "F3"]
    assert entry.truncated == [f"F{i}" for i in range(4, 10)]
    (entry,) = parse(text("A", "x" * 50) + text("B", "y" * 50) + text("C", "z") + b"\n", max_entry_bytes=80)
    assert entry.fields == {"A": [b"x" * 50], "B": [b"y" * 30]}
    assert entry.truncated == ["B", "C"]


def test_it_skips_empty_entries():
    assert parse(b"\n\n\n") == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"lower=case\n\n", "invalid field name"),
        (b"=value\n\n", "invalid field name"),
        (b"1ABC=x\n\n", "invalid field name"),
        (b"A" * 65 + b"=x\n\n", "invalid field name"),
        (b"BAD NAME\n\n", "invalid field name"),
        (b"B\n" + struct.pack("<Q", 3) + b"abcX\n", "not followed by a newline"),
        (b"X" * 70_000, "too long for a field name"),
    ],
)
def test_it_rejects_broken_structure_clearly(data, reason):
    parser = journal.ExportParser()
    with pytest.raises(DecodeError, match=reason):
        parser.feed(data)
    with pytest.raises(DecodeError, match="already failed"):
        parser.feed(b"\n")


@pytest.mark.parametrize(
    "data",
    [
        text("A", "1"),
        b"A=1",
        b"B\n\x05\x00",
        b"B\n" + struct.pack("<Q", 10) + b"abc",
        b"B\n" + struct.pack("<Q", 1) + b"a",
    ],
)
def test_it_reports_a_premature_end_of_data(data):
    parser = journal.ExportParser()
    assert parser.feed(data) == []
    with pytest.raises(DecodeError, match="premature end"):
        parser.finish()


def test_it_survives_a_huge_binary_length():
    parser = journal.ExportParser(max_field_bytes=10)
    assert parser.feed(b"B\n" + struct.pack("<Q", 2**64 - 1) + b"a" * 100) == []
    assert parser.in_entry


# --- hypothesis -----------------------------------------------------------------------

_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ_"),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", max_size=20),
)
_values = st.one_of(
    st.text(st.characters(min_codepoint=32, exclude_categories=("Cs",)), max_size=100),
    st.binary(max_size=200),
)


def export(entries) -> bytes:
    out = bytearray()
    for fields in entries:
        for name, value in fields:
            if isinstance(value, str):
                out += name.encode() + b"=" + value.encode() + b"\n"
            else:
                out += binary(name, value)
        out += b"\n"
    return bytes(out)


@given(
    st.lists(st.lists(st.tuples(_names, _values), min_size=1, max_size=12), max_size=6),
    st.lists(st.integers(1, 400), min_size=1, max_size=30),
)
@settings(max_examples=100, deadline=None)
def test_it_parses_whatever_the_uploader_exports_in_any_chunking(entries, cuts):
    stream = export(entries)
    parser = journal.ExportParser()
    got, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += parser.feed(stream[pos : pos + step])
        pos, i = pos + step, i + 1
    parser.finish()
    expected = []
    for fields in entries:
        grouped: dict[str, list[bytes]] = {}
        for name, value in fields:
            grouped.setdefault(name, []).append(value.encode() if isinstance(value, str) else value)
        expected.append(grouped)
    assert [e.fields for e in got] == expected
    for entry in got:
        journal.entry_to_record(entry)


@given(st.binary(max_size=2000))
@settings(max_examples=400, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_bytes(data):
    parser = journal.ExportParser(max_field_bytes=50, max_fields=5)
    try:
        for entry in parser.feed(data):
            journal.entry_to_record(entry)
        parser.finish()
    except DecodeError:
        pass


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "MESSAGE",
                    "PRIORITY",
                    "CONTAINER_ID_FULL",
                    "SYSLOG_TIMESTAMP",
                    "__REALTIME_TIMESTAMP",
                    "_SOURCE_REALTIME_TIMESTAMP",
                    "CONTAINER_PARTIAL_ORDINAL",
                    "CONTAINER_PARTIAL_ID",
                    "__CURSOR",
                    "_BOOT_ID",
                    "CONTAINER_NAME",
                    "X",
                ]
            ),
            st.binary(max_size=40),
        ),
        max_size=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_it_maps_any_field_values_without_raising(fields):
    entry = journal.Entry()
    for name, value in fields:
        entry.fields.setdefault(name, []).append(value)
    journal.entry_to_record(entry)


# --- transport, through a real ingest process --------------------------------------------

# Stored times must be recent, or the pipeline replaces them with the receive time.
RECENT = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recent_entry(message: bytes, seq: int) -> bytes:
    return docker_entry(message, seq=seq, stamp=RECENT)


@pytest.fixture
def upload(actors, ingest, unused_tcp_port):
    driver, token = make_driver("journal", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])

    def send(body, token=token, content_type=journal.CONTENT_TYPE):
        # The token as the URL's password, the way systemd-journal-upload (curl) would send it.
        return requests.post(
            f"http://logsite:{token}@127.0.0.1:{unused_tcp_port}/upload",
            data=body,
            headers={"Content-Type": content_type},
            timeout=60,
        )

    send.proc, send.driver = proc, driver
    return send


@pytest.mark.django_db(transaction=True)
def test_it_stores_entries_while_the_upload_is_still_open(upload):
    def body():
        yield recent_entry(b"first", seq=1)
        # The request is still open: the entry must be committed before the next one is sent.
        wait_rows(1)
        yield recent_entry(b"second\nwith a newline \xff", seq=2)

    response = upload(body())
    assert response.status_code == 200, response.text
    rows = log_rows()
    assert [r["line"] for r in rows] == ["first", "second\nwith a newline \ufffd"]
    assert bytes(rows[1]["raw"]) == b"second\nwith a newline \xff"
    assert {(r["tenant"], r["container_id"], r["name"]) for r in rows} == {("tenant-a", CID, "web-1")}


@pytest.mark.django_db(transaction=True)
def test_it_stores_a_resent_batch_only_once(upload):
    batch = b"".join(recent_entry(f"line {i}".encode(), seq=i) for i in range(50))
    assert upload(batch).status_code == 200
    assert upload(batch).status_code == 200
    more = batch + recent_entry(b"new", seq=50)
    assert upload(iter([more[:1000], more[1000:]])).status_code == 200
    assert [r["line"] for r in log_rows()] == [f"line {i}" for i in range(50)] + ["new"]


@pytest.mark.django_db(transaction=True)
def test_it_refuses_bad_uploads_and_keeps_serving(upload):
    assert upload(recent_entry(b"x", 1), token="wrong").status_code == 401
    assert upload(recent_entry(b"x", 1), content_type="text/plain").status_code == 415
    truncated = upload(recent_entry(b"complete", seq=1) + recent_entry(b"cut", seq=2)[:30])
    assert truncated.status_code == 417
    assert b"premature end" in truncated.content
    broken = upload(recent_entry(b"fine", seq=3) + b"bad name=x\n\n")
    assert broken.status_code == 400
    # What arrived whole before the error is stored; a re-send will not duplicate it.
    assert [r["line"] for r in log_rows()] == ["complete", "fine"]
    assert upload(recent_entry(b"complete", seq=1) + recent_entry(b"cut", seq=2)).status_code == 200
    assert [r["line"] for r in log_rows()] == ["complete", "fine", "cut"]
    driver_stats(upload.proc, upload.driver, lambda d: d.get("malformed", 0) >= 2)


@pytest.mark.django_db(transaction=True)
def test_it_stores_two_concurrent_identical_uploads_once(upload):
    batch = b"".join(recent_entry(f"line {i}".encode(), seq=i) for i in range(300))
    both_sent = threading.Barrier(2)

    def body():
        yield batch
        # Both requests hold all their entries before either ends: neither can be "first".
        both_sent.wait(60)
        yield b""

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: upload(body()), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert [r["line"] for r in log_rows()] == [f"line {i}" for i in range(300)]
    stats = upload.proc.wait_stats(lambda s: s["committed"] >= 300)
    assert stats["deduplicated"] == 300


@pytest.mark.django_db(transaction=True)
def test_it_recognises_a_resent_entry_whose_own_time_was_replaced(upload):
    old = docker_entry(b"from long ago", seq=1, stamp="2001-01-01T00:00:00Z")
    assert upload(old).status_code == 200
    assert upload(old).status_code == 200
    (row,) = log_rows()
    assert row["line"] == "from long ago"
