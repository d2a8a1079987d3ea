"""Fluentd Forward decoder: frames built by hand from PROTOCOLS.md §3.2 (and msgpack for bulk)."""

import base64
import contextlib
import gzip
import json
import socket
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.partials import PartialAssembler
from ingest.receivers import fluentd
from ingest.receivers.errors import DecodeError
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.waiting import driver_stats, wait_rows

CID = "c" * 64


def mp_str(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 256
    return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xd9" + bytes([len(raw)])) + raw


def mp_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def docker_frame(line: bytes = b"hello", source="stdout", time_bytes=None, option=b"\x80", extra=()) -> bytes:
    """Docker's Message mode by hand: fixarray(4) [tag, time, record, option]."""
    if time_bytes is None:
        time_bytes = b"\xce" + struct.pack(">I", 1767225600)  # uint32 seconds
    record = mp_map(
        [
            (mp_str("container_id"), b"\xd9\x40" + CID.encode()),
            (mp_str("container_name"), mp_str("/web-1")),
            (mp_str("source"), mp_str(source)),
            (mp_str("log"), b"\xd9" + bytes([len(line)]) + line),
            *extra,
        ]
    )
    return b"\x94" + mp_str(CID[:12]) + time_bytes + record + option


def decode(data: bytes, **kw) -> list[fluentd.ForwardMessage]:
    return fluentd.ForwardDecoder(**kw).feed(data, received_ns=7)


def test_it_decodes_dockers_message_mode():
    (message,) = decode(docker_frame())
    assert (message.tag, message.chunk) == (CID[:12], None)
    (record,) = message.records
    assert record.line == "hello"
    assert record.ts_ns == 1767225600 * 1_000_000_000
    assert record.received_ns == 7
    assert (record.container_id, record.container_name, record.stream) == (CID, "web-1", "stdout")
    # The default tag template explains the tag, so it is not repeated per row.
    assert record.attrs is None


def test_it_reads_event_time_ext_type_0():
    event_time = b"\xd7\x00" + struct.pack(">II", 1767225600, 123456789)
    (message,) = decode(docker_frame(time_bytes=event_time, source="stderr"))
    assert message.records[0].ts_ns == 1767225600_123456789
    assert message.records[0].stream == "stderr"


def test_it_exposes_the_chunk_and_builds_the_ack():
    chunk = base64.b64encode(struct.pack("<Q", 1767225600) + b"r" * 8).decode()
    (message,) = decode(docker_frame(option=mp_map([(mp_str("chunk"), mp_str(chunk))])))
    assert message.chunk == chunk
    reply = fluentd.ack_reply(chunk)
    assert reply == b"\x81\xa3ack" + mp_str(chunk)
    assert msgpack.unpackb(reply) == {"ack": chunk}


def test_it_keeps_labels_and_foreign_tags_in_attrs():
    frame = docker_frame(extra=[(mp_str("com.example.team"), mp_str("blue"))])
    frame = b"\x94" + mp_str("app.web") + frame[1 + len(mp_str(CID[:12])) :]
    (message,) = decode(frame)
    assert message.records[0].attrs == {"com.example.team": "blue", "tag": "app.web"}


def test_it_decodes_forward_packed_and_compressed_modes():
    entries = [[1767225600 + i, {"log": f"line {i}", "source": "stdout"}] for i in range(3)]
    packed = b"".join(msgpack.packb(e) for e in entries)
    # Two gzip members back to back, as fluentd's compressed chunks may be.
    compressed = gzip.compress(packed[:10]) + gzip.compress(packed[10:])
    frames = [
        msgpack.packb(["t", entries, {}]),
        msgpack.packb(["t", packed]),
        msgpack.packb(["t", packed.decode("latin-1").encode("latin-1"), {"size": 3}], use_bin_type=True),
        msgpack.packb(["t", compressed, {"compressed": "gzip", "size": 3}], use_bin_type=True),
    ]
    for frame in frames:
        (message,) = decode(frame)
        assert [r.line for r in message.records] == ["line 0", "line 1", "line 2"]
        assert [r.ts_ns for r in message.records] == [(1767225600 + i) * 10**9 for i in range(3)]


def test_it_takes_packed_entries_sent_as_str():
    packed = msgpack.packb([1, {"log": "x"}])
    frame = b"\x92\xa1t" + b"\xd9" + bytes([len(packed)]) + packed
    (message,) = decode(frame)
    assert message.records[0].line == "x"


def test_it_ignores_heartbeats():
    decoder = fluentd.ForwardDecoder()
    assert decoder.feed(b"\xc0\xc0" + docker_frame() + b"\xc0") != []
    assert decoder.heartbeats == 3


def test_it_decodes_a_stream_fed_one_byte_at_a_time():
    stream = docker_frame(b"one") + docker_frame(b"two")
    decoder = fluentd.ForwardDecoder()
    messages = [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]
    assert [m.records[0].line for m in messages] == ["one", "two"]
    assert decoder.pending == 0


def test_it_keeps_invalid_utf8_in_the_line_as_bytes():
    (message,) = decode(docker_frame(b"caf\xe9 \x00 \xff"))
    assert message.records[0].line == b"caf\xe9 \x00 \xff"


def test_it_accepts_an_empty_line():
    (message,) = decode(docker_frame(b""))
    assert message.records[0].line == ""


def test_it_reassembles_dockers_partial_messages():
    def fragment(text: bytes, ordinal: int, last: bool):
        marks = [
            (mp_str("partial_message"), mp_str("true")),
            (mp_str("partial_id"), b"\xd9\x40" + b"p" * 64),
            (mp_str("partial_ordinal"), mp_str(str(ordinal))),
            (mp_str("partial_last"), mp_str("true" if last else "false")),
        ]
        return docker_frame(text, extra=marks)

    stream = fragment(b"a" * 200, 1, False) + fragment(b"b" * 200, 2, False) + fragment(b"c", 3, True)
    stream += docker_frame(b"next")
    assembler = PartialAssembler()
    lines = []
    for message in decode(stream):
        for record in message.records:
            lines += assembler.feed(record, now=0.0)
    assert [r.line for r in lines] == [b"a" * 200 + b"b" * 200 + b"c", "next"]
    assert lines[0].attrs is None
    assert lines[0].container_name == "web-1"


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x01", "not an array"),
        (b"\x91\xa1t", "not an array of 2 to 4"),
        (b"\x93\x05\x01\x80", "tag is not a string"),
        (b"\x94\xa1t\xa1x\x80\x80", "time is not"),
        (b"\x94\xa1t\xc3\x80\x80", "time is not"),
        (b"\x94\xa1t\x01\x05\x80", "record is not a map"),
        (b"\x94\xa1t\x01\x80\x05", "option is not a map"),
        (b"\x93\xa1t\x92\x05\x80\x80", "not a \\[time, record\\] pair"),
        (b"\x94\xa1t\x01\x80\x81\xa5chunk\x05", "chunk is not a string"),
        (b"\xc1", "invalid msgpack"),
        (b"\xdd\xff\xff\xff\xff", "invalid msgpack"),
        (b"\xd7\x05" + b"\x00" * 8, "not an array"),
        (msgpack.packb(["t", b"\x92\x01", {}]), "middle of an entry"),
        (msgpack.packb(["t", b"\xc1", {}]), "invalid msgpack in packed"),
        (msgpack.packb(["t", b"x", {"compressed": "zstd"}]), "unsupported compression"),
        (msgpack.packb(["t", b"not gzip", {"compressed": "gzip"}]), "not gzip"),
        (msgpack.packb(["t", 1, {"log": "x"}, {}, "extra"]), "2 to 4"),
        (msgpack.packb(["t", -1, {"log": "x"}]), "negative"),
        (b"\x94\xa1t\x01\x81\xa1k" + b"\x91" * 80 + b"\x01\x80", "nested deeper"),
    ],
)
def test_it_rejects_malformed_frames_clearly(frame, reason):
    with pytest.raises(DecodeError, match=reason):
        decode(frame)


def test_it_refuses_a_message_over_the_limit():
    decoder = fluentd.ForwardDecoder(max_message_bytes=1000)
    with pytest.raises(DecodeError, match="larger than 1000"):
        decoder.feed(docker_frame(b"x" * 200)[:-1] + msgpack.packb({"big": "y" * 2000}))


def test_it_accepts_many_small_messages_in_one_large_read():
    frames = docker_frame(b"x" * 100) * 500
    decoder = fluentd.ForwardDecoder(max_message_bytes=1000)
    assert len(decoder.feed(frames)) == 500


def test_it_refuses_a_gzip_bomb_in_compressed_packed_forward():
    bomb = gzip.compress(b"\x00" * (32 * 1024 * 1024), compresslevel=9)
    frame = msgpack.packb(["t", bomb, {"compressed": "gzip"}], use_bin_type=True)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode(frame, max_decompressed_bytes=1024 * 1024)


def test_it_reports_a_truncated_message_as_pending():
    decoder = fluentd.ForwardDecoder()
    assert decoder.feed(docker_frame()[:-3]) == []
    assert decoder.pending > 0


def test_it_refuses_to_continue_after_a_bad_frame_is_found():
    decoder = fluentd.ForwardDecoder()
    with pytest.raises(DecodeError):
        decoder.feed(b"\xc1" + docker_frame())


# --- hypothesis -----------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=200)
# NUL in attrs is replaced (tested above); here values must come back unchanged.
_attr_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=50)


def _as_bytes(line):
    return line if isinstance(line, bytes) else line.encode()


_key = st.text("abcdefghijklmnopqrstuvwxyz._", min_size=1, max_size=12).filter(
    lambda k: (
        k not in {"log", "source", "container_id", "container_name", "message", "tag"}
        and not k.startswith("partial_")
    )
)


@st.composite
def events(draw):
    ts_ns = draw(st.integers(0, 2**32 - 1)) * 10**9 + draw(st.integers(0, 10**9 - 1))
    line = draw(st.one_of(_text, st.binary(max_size=200)))
    body = {
        "container_id": draw(st.binary(min_size=32, max_size=32)).hex(),
        "container_name": "/" + draw(_key),
        "source": draw(st.sampled_from(["stdout", "stderr"])),
        "log": line,
    }
    body.update(draw(st.dictionaries(_key, _attr_text, max_size=4)))
    return ts_ns, body


def _event_time(ns: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", ns // 10**9, ns % 10**9))


@given(
    st.lists(events(), min_size=1, max_size=5),
    st.sampled_from(["message", "forward", "packed", "compressed"]),
    st.integers(1, 300),
    st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_it_decodes_whatever_a_forward_sender_encodes(evts, mode, piece, ack):
    option = {"chunk": "abc=="} if ack else {}
    entries = [[_event_time(ns), body] for ns, body in evts]
    if mode == "message":
        frames = [msgpack.packb(["tag.x", *entry, option], use_bin_type=True) for entry in entries]
    elif mode == "forward":
        frames = [msgpack.packb(["tag.x", entries, option], use_bin_type=True)]
    else:
        packed = b"".join(msgpack.packb(e, use_bin_type=True) for e in entries)
        if mode == "compressed":
            packed, option = gzip.compress(packed), {**option, "compressed": "gzip"}
        frames = [msgpack.packb(["tag.x", packed, option], use_bin_type=True)]
    stream = b"".join(frames)
    decoder = fluentd.ForwardDecoder()
    messages = [m for i in range(0, len(stream), piece) for m in decoder.feed(stream[i : i + piece])]
    assert decoder.pending == 0
    assert all(m.chunk == ("abc==" if ack else None) for m in messages)
    records = [r for m in messages for r in m.records]
    assert len(records) == len(evts)
    for record, (ns, body) in zip(records, evts, strict=True):
        assert record.ts_ns == ns
        assert _as_bytes(record.line) == _as_bytes(body["log"])
        assert record.container_id == body["container_id"]
        assert record.container_name == body["container_name"][1:]
        assert record.stream == body["source"]
        extra = {
            k: v for k, v in body.items() if k not in {"log", "source", "container_id", "container_name"}
        }
        assert record.attrs == {**extra, "tag": "tag.x"}


@given(st.binary(max_size=2000))
@settings(max_examples=400, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_bytes(data):
    decoder = fluentd.ForwardDecoder(max_message_bytes=4096)
    with contextlib.suppress(DecodeError):
        decoder.feed(data)


_scalars = (
    st.none() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20) | st.binary(max_size=20)
)


@given(
    st.recursive(
        _scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4), max_leaves=12
    )
)
@settings(max_examples=200, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_msgpack_values(value):
    for frame in (value, ["t", value], ["t", 1, value], ["t", value, {}], ["t", 1, {"log": value}, value]):
        with contextlib.suppress(DecodeError):
            decode(msgpack.packb(frame, use_bin_type=True))


# --- transport, through a real ingest process --------------------------------------------


def _fragment_marks(ordinal: int, last: bool) -> list[tuple[bytes, bytes]]:
    return [
        (mp_str("partial_message"), mp_str("true")),
        (mp_str("partial_id"), b"\xd9\x40" + b"q" * 64),
        (mp_str("partial_ordinal"), mp_str(str(ordinal))),
        (mp_str("partial_last"), mp_str("true" if last else "false")),
    ]


@pytest.mark.django_db(transaction=True)
def test_it_acks_only_what_is_committed_and_joins_fragments(actors, ingest, unused_tcp_port):
    driver, _ = make_driver("fluentd", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])
    address = ("127.0.0.1", unused_tcp_port)
    chunk = base64.b64encode(b"c" * 16).decode()
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(docker_frame(b"acked line", option=mp_map([(mp_str("chunk"), mp_str(chunk))])))
        unpacker = msgpack.Unpacker()
        while (reply := next(unpacker, None)) is None:
            unpacker.feed(conn.recv(1024))
        assert reply == {"ack": chunk}
        # The ack promised durability: the row must already be there, no waiting.
        assert [r["line"] for r in log_rows()] == ["acked line"]

        conn.sendall(
            docker_frame(b"a" * 200, extra=_fragment_marks(1, False))
            + docker_frame(b"b" * 200, extra=_fragment_marks(2, False))
            + docker_frame(b"c", extra=_fragment_marks(3, True))
            + b"\xc0"
            + docker_frame(b"after", source="stderr")
        )
        rows = wait_rows(3)
    assert [r["line"] for r in rows] == ["acked line", "a" * 200 + "b" * 200 + "c", "after"]
    assert {(r["tenant"], r["container_id"], r["name"]) for r in rows} == {("tenant-a", CID, "web-1")}
    assert rows[2]["stream"] == 2

    with socket.create_connection(address, timeout=30) as bad:
        bad.sendall(b"\xc1" + docker_frame(b"never"))
        assert bad.recv(100) == b""  # the server hangs up on a stream it cannot resynchronise
    with socket.create_connection(address, timeout=30) as again:
        again.sendall(docker_frame(b"still serving"))
    wait_rows(4)
    driver_stats(proc, driver, lambda d: d.get("malformed", 0) >= 1)


def _read_ack(conn: socket.socket) -> dict:
    unpacker = msgpack.Unpacker()
    while (reply := next(unpacker, None)) is None:
        data = conn.recv(1024)
        assert data, "connection closed before the ack"
        unpacker.feed(data)
    return reply


@pytest.mark.django_db(transaction=True)
def test_it_acks_a_resent_chunk_without_storing_it_twice(actors, ingest, unused_tcp_port):
    driver, _ = make_driver("fluentd", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    ingest([driver.id])
    address = ("127.0.0.1", unused_tcp_port)

    def frame(line: bytes, chunk: str) -> bytes:
        return docker_frame(line, option=mp_map([(mp_str("chunk"), mp_str(chunk))]))

    once, twice = (base64.b64encode(struct.pack("<Q", 1767225600) + c * 8).decode() for c in (b"1", b"2"))
    # Both copies are in flight at once, on two connections, as Docker 20.10 re-sends them.
    connections = [socket.create_connection(address, timeout=30) for _ in range(3)]
    with contextlib.ExitStack() as stack:
        for conn in connections:
            stack.enter_context(conn)
        connections[0].sendall(frame(b"sent twice", once))
        connections[1].sendall(frame(b"sent twice", once))
        assert [_read_ack(c) for c in connections[:2]] == [{"ack": once}] * 2
        connections[2].sendall(frame(b"sent twice", once) + frame(b"another", twice))
        assert [_read_ack(connections[2]) for _ in range(2)] == [{"ack": once}, {"ack": twice}]
    assert [r["line"] for r in log_rows()] == ["sent twice", "another"]


# --- Docker 20.10's ack client: two copiers share one connection ----------------------------
# fluent-logger-golang 1.6 lets a container's stdout and stderr copiers write on one connection
# and read each ack with one read into a fresh buffer, dropping whatever else that read returned.


def _acked(line: str, source: str, chunk: str, ordinal: int | None = None, last: bool = False) -> bytes:
    """Docker's Message mode with fluentd-request-ack, for lines of any length."""
    record = {"container_id": CID, "container_name": "/web-1", "source": source, "log": line}
    if ordinal is not None:
        record |= {
            "partial_message": "true",
            "partial_id": "p" * 64,
            "partial_ordinal": str(ordinal),
            "partial_last": "true" if last else "false",
        }
    return msgpack.packb([CID[:12], 1767225600, record, {"chunk": chunk}])


def _chunk(n: int) -> str:
    return base64.b64encode(struct.pack("<QQ", 1767225600, n)).decode()


def _gapped_fluentd(actors, ingest, port: int) -> tuple[str, int]:
    """A fluentd driver whose acks to one connection keep a large gap (so the checks do not
    depend on how fast a test runs) and whose silent shared connections close soon."""
    options = {"ack_gap_ms": 3000, "shared_idle_close_s": 0.5}
    driver, _ = make_driver("fluentd", f"127.0.0.1:{port}", tenant=actors.tenant_a, **options)
    ingest([driver.id])
    return ("127.0.0.1", port)


def _store_alone(address, frame: bytes) -> dict:
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(frame)
        return _read_ack(conn)


@pytest.mark.django_db(transaction=True)
def test_one_read_never_carries_the_acks_of_two_copiers(actors, ingest, unused_tcp_port):
    address = _gapped_fluentd(actors, ingest, unused_tcp_port)
    err, fragment = _acked("err-2", "stderr", _chunk(1)), _acked("f" * 16384, "stdout", _chunk(2), 1)
    # Both are stored already: their re-sends are answered without a commit in between, which
    # is how two acks came to be written back to back.
    assert _store_alone(address, err) == {"ack": _chunk(1)}
    assert _store_alone(address, fragment) == {"ack": _chunk(2)}

    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(err + fragment)  # stderr's copier wrote first, then stdout's
        assert conn.recv(4096) == fluentd.ack_reply(_chunk(1))
        conn.setblocking(False)
        with pytest.raises(BlockingIOError):  # the stdout copier's ack is not there yet
            conn.recv(4096, socket.MSG_PEEK)
        conn.settimeout(30)
        assert conn.recv(4096) == fluentd.ack_reply(_chunk(2))
        # A copier whose ack its neighbour took would wait for ever: a silent shared connection
        # is closed, so that it re-sends.
        assert conn.recv(4096) == b""
    assert len(log_rows()) == 2


@pytest.mark.django_db(transaction=True)
def test_it_stores_what_arrived_before_the_sender_reset_the_connection(actors, ingest, unused_tcp_port):
    driver, _ = make_driver("fluentd", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    ingest([driver.id])
    address = ("127.0.0.1", unused_tcp_port)
    pieces = ["a" * 16384, "b" * 16384, "c" * 8192]
    frames = [_acked(p, "stdout", _chunk(10 + i), i + 1, last=i == 2) for i, p in enumerate(pieces)]
    conn = socket.create_connection(address, timeout=30)
    conn.sendall(frames[0] + frames[1])
    # What the Docker client does when it reads a neighbour's ack: close at once. With unread
    # data (or SO_LINGER 0) the close is a reset, which must not discard the second fragment.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    rows = wait_rows(2)
    # Both were stored, so the re-sends are answered at once and stored nothing again.
    assert [_store_alone(address, f) for f in frames] == [{"ack": _chunk(10 + i)} for i in range(3)]
    rows = wait_rows(3)
    assert [r["line"] for r in rows] == pieces
    marks = [json.loads(r["attrs"])["partial"] for r in rows]
    assert [(m["ordinal"], m["last"]) for m in marks] == [(1, False), (2, False), (3, True)]
    assert len(log_rows()) == 3


@pytest.mark.django_db(transaction=True)
def test_the_other_streams_ack_waits_even_when_its_message_came_after_ours(actors, ingest, unused_tcp_port):
    # A copier starved of CPU reads its ack late: by then the other stream's message may have
    # arrived after our ack was written, and its ack must still not join ours in one read.
    address = _gapped_fluentd(actors, ingest, unused_tcp_port)
    out, err = _acked("out-1", "stdout", _chunk(21)), _acked("err-1", "stderr", _chunk(22))
    assert [_store_alone(address, f) for f in (out, err)] == [{"ack": _chunk(21)}, {"ack": _chunk(22)}]

    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(out)
        assert conn.recv(4096, socket.MSG_PEEK) == fluentd.ack_reply(_chunk(21))  # written, not read
        conn.sendall(err)
        assert conn.recv(4096) == fluentd.ack_reply(_chunk(21))
        conn.setblocking(False)
        with pytest.raises(BlockingIOError):
            conn.recv(4096, socket.MSG_PEEK)
        conn.settimeout(30)
        assert conn.recv(4096) == fluentd.ack_reply(_chunk(22))
        assert conn.recv(4096) == b""  # shared and then silent: closed
