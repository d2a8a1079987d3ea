"""GELF decoder: frames built by hand from the byte layout in PROTOCOLS.md §3.1."""

import contextlib
import gzip
import json
import os
import random
import socket
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.receivers import gelf
from ingest.receivers.errors import DecodeError
from tests.base import make_driver
from tests.support.waiting import driver_stats, wait_rows

CID = "f" * 64


def docker_message(line="hello", level=6, **extra):
    """What dockerd's gelf driver sends for one line."""
    message = {
        "version": "1.1",
        "host": "dockerhost",
        "short_message": line,
        "timestamp": 1767225600.123,
        "level": level,
        "_container_id": CID,
        "_container_name": "web-1",
        "_image_id": "sha256:" + "a" * 64,
        "_image_name": "nginx:latest",
        "_command": "nginx -g daemon off;",
        "_tag": CID[:12],
        "_created": "2026-01-02T03:04:05.123456789Z",
    }
    message.update(extra)
    return json.dumps(message).encode()


def chunks(payload: bytes, size: int = 1408, message_id: bytes = b"\x01" * 8) -> list[bytes]:
    """Docker's chunking: count = len // size + 1, so an exact multiple ends with an empty chunk."""
    count = len(payload) // size + 1
    return [
        gelf.MAGIC + message_id + bytes([seq, count]) + payload[seq * size : (seq + 1) * size]
        for seq in range(count)
    ]


def feed_all(reassembler, datagrams, now=0.0):
    results = [reassembler.feed(d, now) for d in datagrams]
    return [r for r in results if r is not None]


def test_it_maps_docker_fields():
    record = gelf.decode_payload(docker_message("hello"), received_ns=5)
    assert record.line == "hello"
    assert record.container_id == CID
    assert record.container_name == "web-1"
    assert record.image == "nginx:latest"
    assert record.host == "dockerhost"
    assert record.stream == "stdout"
    assert record.level == 6
    assert record.ts_ns == 1767225600_123_000_000
    assert record.received_ns == 5
    assert record.attrs == {
        "image_id": "sha256:" + "a" * 64,
        "command": "nginx -g daemon off;",
        "tag": CID[:12],
        "created": "2026-01-02T03:04:05.123456789Z",
    }


def test_it_maps_level_3_to_stderr_and_extra_fields_to_attrs():
    record = gelf.decode_payload(
        docker_message("boom", level=3, _env_mode="prod", _id="x", full_message="long")
    )
    assert record.stream == "stderr"
    assert record.level == 3
    assert record.attrs["env_mode"] == "prod"
    assert record.attrs["id"] == "x"
    assert record.attrs["full_message"] == "long"


def test_it_strips_a_leading_slash_from_the_name():
    assert gelf.decode_payload(docker_message(_container_name="/web-1")).container_name == "web-1"


@pytest.mark.parametrize(
    "compress", [gzip.compress, zlib.compress, lambda b: b], ids=["gzip", "zlib", "none"]
)
def test_it_detects_compression_after_reassembly(compress):
    payload = compress(docker_message("x" * 5000 + os.urandom(3000).hex()))
    parts = chunks(payload)
    assert len(parts) > 1
    random.Random(1).shuffle(parts)
    (whole,) = feed_all(gelf.ChunkReassembler(), parts)
    assert gelf.decode_payload(whole).line.startswith("x" * 5000)


def test_it_accepts_an_empty_last_chunk():
    message = docker_message("y")
    # Pad the JSON with spaces (still valid) to an exact multiple of 1408 bytes.
    payload = message[:-1] + b" " * (1408 * 3 - len(message)) + b"}"
    parts = chunks(payload)
    assert len(parts) == 4
    assert parts[-1] == parts[-1][:12]
    (whole,) = feed_all(gelf.ChunkReassembler(), parts[::-1])
    assert gelf.decode_payload(whole).line == "y"


def test_it_accepts_128_chunks_and_refuses_more():
    payload = docker_message("z" * (127 * 100))
    parts = chunks(payload, size=len(payload) // 127)
    assert len(parts) == 128
    assert feed_all(gelf.ChunkReassembler(), parts) == [payload]
    too_many = gelf.MAGIC + b"\x02" * 8 + bytes([0, 129]) + b"{}"
    with pytest.raises(DecodeError, match="chunk count 129"):
        gelf.ChunkReassembler().feed(too_many, 0)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (gelf.MAGIC + b"\x00" * 5, "shorter than its 12-byte header"),
        (gelf.MAGIC + b"\x00" * 8 + bytes([0, 0]), "chunk count 0"),
        (gelf.MAGIC + b"\x00" * 8 + bytes([5, 5]), "chunk number 5"),
    ],
)
def test_it_rejects_bad_chunk_headers(datagram, reason):
    with pytest.raises(DecodeError, match=reason):
        gelf.ChunkReassembler().feed(datagram, 0)


def test_it_treats_a_single_chunk_set_as_a_whole_message():
    assert gelf.ChunkReassembler().feed(gelf.MAGIC + b"\x00" * 8 + bytes([0, 1]) + b"{}", 0) == b"{}"


def test_it_rejects_a_chunk_count_that_changes_within_a_message():
    reassembler = gelf.ChunkReassembler()
    assert reassembler.feed(gelf.MAGIC + b"\x03" * 8 + bytes([0, 3]) + b"a", 0) is None
    with pytest.raises(DecodeError, match="changed"):
        reassembler.feed(gelf.MAGIC + b"\x03" * 8 + bytes([1, 4]) + b"b", 0)
    assert len(reassembler) == 0


def test_it_drops_incomplete_sets_after_five_seconds_and_counts_them():
    reassembler = gelf.ChunkReassembler()
    parts = chunks(docker_message("w" * 4000))
    assert reassembler.feed(parts[0], now=100.0) is None
    assert reassembler.expire(104.9) == 0
    assert len(reassembler) == 1
    assert reassembler.expire(105.0) == 1
    assert (len(reassembler), reassembler.expired) == (0, 1)
    # The rest arriving late starts a new set that never completes.
    assert feed_all(reassembler, parts[1:], now=106.0) == []


def test_it_expires_old_sets_when_new_chunks_arrive():
    reassembler = gelf.ChunkReassembler()
    first = chunks(docker_message("a" * 3000), message_id=b"A" * 8)
    second = chunks(docker_message("b" * 3000), message_id=b"B" * 8)
    reassembler.feed(first[0], now=0.0)
    reassembler.feed(second[0], now=6.0)
    assert reassembler.expired == 1
    assert len(reassembler) == 1


def test_it_caps_memory_held_by_pending_sets():
    reassembler = gelf.ChunkReassembler(max_pending_bytes=10_000)
    for i in range(50):
        reassembler.feed(gelf.MAGIC + i.to_bytes(8, "big") + bytes([0, 2]) + b"x" * 1000, now=0.0)
    assert len(reassembler) == 10
    assert reassembler.evicted == 40
    # The newest sets survived and can still complete.
    whole = reassembler.feed(gelf.MAGIC + (49).to_bytes(8, "big") + bytes([1, 2]) + b"y", now=0.0)
    assert whole == b"x" * 1000 + b"y"


def test_it_ignores_and_counts_duplicate_chunks():
    reassembler = gelf.ChunkReassembler()
    parts = chunks(docker_message("d" * 3000))
    assert feed_all(reassembler, [parts[0], parts[0], *parts[1:]]) != []
    assert reassembler.duplicates == 1


def test_it_refuses_a_gzip_bomb_without_inflating_it():
    bomb = gzip.compress(b"{" + b" " * (32 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="exceeds the limit"):
            gelf.decode_payload(bomb, max_message_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_it_refuses_a_zlib_bomb():
    with pytest.raises(DecodeError, match="exceeds the limit"):
        gelf.decode_payload(zlib.compress(b" " * (20 * 1024 * 1024)), max_message_bytes=1024 * 1024)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not JSON"),
        (b"\x00\x01garbage", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": "1.1"}', "short_message"),
        (b'{"short_message": 5}', "short_message"),
        (b'{"short_message": "x", "level": "info"}', "level"),
        (b'{"short_message": "x", "level": 9}', "level"),
        (b'{"short_message": "x", "level": true}', "level"),
        (b'{"short_message": "x", "timestamp": "soon"}', "seconds"),
        (b'{"short_message": "x", "timestamp": true}', "timestamp"),
        (b'{"short_message": "x", "timestamp": -1.5}', "out of range"),
        (b'{"short_message": "x", "host": 7}', "host"),
        (gzip.compress(b"not json"), "not JSON"),
        (gzip.compress(b"{}")[:-6], "truncated gzip"),
        (b"\x1f\x8b\x08\x00garbage-garbage", "corrupt gzip"),
        (b'{"short_message": "x", "_deep": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_it_rejects_malformed_messages_clearly(payload, reason):
    with pytest.raises(DecodeError, match=reason):
        gelf.decode_payload(payload)


def test_it_keeps_invalid_utf8_and_nul_for_the_pipeline_and_cleans_attrs():
    raw = b'{"short_message": "caf\xe9 \\u0000 end", "_note": "a\\u0000b\\ud800"}'
    record = gelf.decode_payload(raw)
    assert record.line == b"caf\xe9 \x00 end"
    assert record.attrs == {"note": "a\u2400b\ufffd"}


def test_it_frames_tcp_messages_on_nul():
    framer = gelf.tcp_framer()
    stream = docker_message("one") + b"\x00" + docker_message("two") + b"\x00" + docker_message("three")
    frames = []
    for i in range(0, len(stream), 7):
        frames += framer.feed(stream[i : i + 7])
    assert [gelf.decode_payload(f).line for f in frames] == ["one", "two"]
    assert gelf.decode_payload(framer.finish()).line == "three"


def test_it_takes_a_1mb_line_over_tcp_and_skips_a_larger_one():
    framer = gelf.tcp_framer(max_message_bytes=1_100_000)
    big, huge = docker_message("m" * 1_000_000), docker_message("h" * 2_000_000)
    frames = framer.feed(big + b"\x00" + huge + b"\x00" + docker_message("after") + b"\x00")
    assert [len(gelf.decode_payload(f).line) for f in frames] == [1_000_000, 5]
    assert framer.oversize == 1


# --- hypothesis -----------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=300)
_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=16).filter(
    lambda n: n not in {"container_id", "container_name", "image_name", "id"}
)


@st.composite
def gelf_messages(draw):
    level = draw(st.sampled_from([3, 6]))
    message = {
        "version": "1.1",
        "host": draw(_text),
        "short_message": draw(_text),
        "timestamp": draw(st.integers(0, 4_000_000_000_000)) / 1000,
        "level": level,
        "_container_id": draw(st.binary(min_size=32, max_size=32)).hex(),
        "_container_name": draw(_names),
        "_image_name": draw(_text),
    }
    extras = draw(st.dictionaries(_names, _text, max_size=5))
    message.update({"_" + k: v for k, v in extras.items()})
    return message, extras


@given(
    gelf_messages(),
    st.sampled_from(["gzip", "zlib", "none"]),
    st.integers(1, 2000),
    st.randoms(use_true_random=False),
)
@settings(max_examples=100, deadline=None)
def test_it_decodes_whatever_a_gelf_sender_encodes(generated, compression, chunk_size, rnd):
    message, extras = generated
    payload = json.dumps(message).encode()
    payload = {"gzip": gzip.compress, "zlib": zlib.compress, "none": lambda b: b}[compression](payload)
    if len(payload) // chunk_size + 1 <= 128:
        parts = chunks(payload, size=chunk_size)
        rnd.shuffle(parts)
        (payload,) = feed_all(gelf.ChunkReassembler(), parts)
    record = gelf.decode_payload(payload)
    assert record.line == message["short_message"]
    assert record.ts_ns == round(message["timestamp"] * 1000) * 1_000_000
    assert record.host == message["host"]
    assert (record.container_id, record.container_name, record.image) == (
        message["_container_id"],
        message["_container_name"],
        message["_image_name"],
    )
    assert record.stream == ("stderr" if message["level"] == 3 else "stdout")
    assert (record.attrs or {}) == extras


@given(st.binary(max_size=3000), st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_it_raises_nothing_but_decode_error_on_random_bytes(data, prefix):
    reassembler = gelf.ChunkReassembler()
    for datagram in (data, gelf.MAGIC + prefix + data, prefix):
        try:
            whole = reassembler.feed(datagram, 0.0)
            if whole is not None:
                gelf.decode_payload(whole)
        except DecodeError:
            pass
    framer = gelf.tcp_framer(max_message_bytes=500)
    for frame in framer.feed(data + b"\x00" + prefix):
        with contextlib.suppress(DecodeError):
            gelf.decode_payload(frame)


# --- transport, through a real ingest process --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_stores_gelf_over_udp_and_tcp_and_counts_bad_datagrams(actors, ingest, unused_tcp_port):
    driver, _ = make_driver("gelf", f"127.0.0.1:{unused_tcp_port}", tenant=actors.tenant_a)
    proc = ingest([driver.id])
    address = ("127.0.0.1", unused_tcp_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(docker_message("plain udp"), address)
        parts = chunks(
            gzip.compress(docker_message("chunked " + "z" * 40_000 + os.urandom(2000).hex(), level=3))
        )
        random.Random(2).shuffle(parts)
        for part in parts:
            udp.sendto(part, address)
        udp.sendto(b"\x1e\x0f short", address)
        udp.sendto(b"not gelf at all", address)
    with socket.create_connection(address) as tcp:
        tcp.sendall(
            docker_message("over tcp") + b"\x00" + b"{broken\x00" + docker_message("last, unterminated")
        )
    rows = wait_rows(4)
    lines = sorted(r["line"][:20] for r in rows)
    assert lines == sorted(["plain udp", "chunked " + "z" * 12, "over tcp", "last, unterminated"])
    assert {(r["tenant"], r["container_id"], r["name"]) for r in rows} == {("tenant-a", CID, "web-1")}
    assert next(r for r in rows if r["line"].startswith("chunked"))["stream"] == 2
    stats = driver_stats(proc, driver, lambda d: d.get("malformed", 0) >= 3)
    assert stats["received"] == 4
