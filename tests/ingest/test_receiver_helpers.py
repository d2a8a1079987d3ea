"""Shared receiver helpers: capped decompression, delimiter framing, tag templates, times, text."""

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.receivers import inflate, text, times
from ingest.receivers.dockertag import TagTemplate
from ingest.receivers.errors import DecodeError
from ingest.receivers.framing import DelimitedFramer


def test_it_gunzips_several_members_within_the_cap():
    data = gzip.compress(b"abc") + gzip.compress(b"def")
    assert inflate.gunzip(data, 6) == b"abcdef"
    with pytest.raises(DecodeError, match="exceeds the limit"):
        inflate.gunzip(data, 5)
    with pytest.raises(DecodeError, match="not gzip"):
        inflate.gunzip(data + b"junk", 100)


def test_it_detects_the_compression():
    assert inflate.decompress_detected(gzip.compress(b"{}"), 10) == b"{}"
    assert inflate.decompress_detected(zlib.compress(b"{}"), 10) == b"{}"
    assert inflate.decompress_detected(b"{}", 10) == b"{}"
    with pytest.raises(DecodeError, match="size limit"):
        inflate.decompress_detected(b"{" * 11, 10)


def test_it_frames_on_a_delimiter_and_skips_oversize_frames():
    framer = DelimitedFramer(b"\n", 5)
    assert framer.feed(b"ab\ncd") == [b"ab"]
    assert framer.feed(b"efghij") == []
    assert framer.feed(b"kl\nok\n") == [b"ok"]
    assert framer.oversize == 1
    assert framer.feed(b"\n") == [b""]
    assert framer.feed(b"tail") == []
    assert framer.finish() == b"tail"
    assert framer.finish() is None


@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\x00", b"")), max_size=20), st.integers(1, 50)
)
@settings(max_examples=200, deadline=None)
def test_it_returns_the_frames_whatever_the_read_sizes(frames, piece):
    stream = b"".join(f + b"\x00" for f in frames)
    framer = DelimitedFramer(b"\x00", 30)
    got = [f for i in range(0, len(stream), piece) for f in framer.feed(stream[i : i + piece])]
    assert got == frames


@pytest.mark.parametrize(
    ("template", "tag", "fields"),
    [
        ("{{.ID}}", "0123456789ab", {"container_id": "0123456789ab"}),
        ("{{.ID}}", "sshd", None),
        ("{{.FullID}}", "a" * 64, {"container_id": "a" * 64}),
        ("{{.Name}}", "web-1", {"container_name": "web-1"}),
        ("{{.Name}}", "web 1", None),
        ("docker/{{.Name}}", "docker/web_1.x", {"container_name": "web_1.x"}),
        (
            "{{.ImageName}}/{{.Name}}/{{.ID}}",
            "reg:5000/org/img:1/web/0123456789ab",
            {"image": "reg:5000/org/img:1", "container_name": "web", "container_id": "0123456789ab"},
        ),
        ("{{ .DaemonName }}-{{.ImageID}}", "docker-0123456789ab", {"image_id": "0123456789ab"}),
        ("", "0123456789ab", None),
        ("a.b", "aXb", None),
    ],
)
def test_it_reads_container_identity_back_out_of_a_tag(template, tag, fields):
    assert TagTemplate(template).parse(tag) == fields


@pytest.mark.parametrize("template", ["{{.Command}}", "{{.ID | upper}}", "{{.Name}}{{", "{{.Label}}"])
def test_it_refuses_templates_it_cannot_read_back(template):
    with pytest.raises(ValueError, match="tag template"):
        TagTemplate(template)


@pytest.mark.parametrize(
    ("stamp", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-01-02T03:04:05.123456789Z", 1767323045_123456789),
        ("2026-01-02T04:04:05.1+01:00", 1767323045_100000000),
    ],
)
def test_it_parses_rfc3339_to_ns(stamp, ns):
    assert times.rfc3339_to_ns(stamp) == ns


@pytest.mark.parametrize(
    "stamp", ["2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z", "yesterday", "2026-01-01T00:00:00.Z"]
)
def test_it_rejects_bad_rfc3339(stamp):
    with pytest.raises(DecodeError):
        times.rfc3339_to_ns(stamp)


def test_it_converts_seconds_exactly():
    assert times.decimal_seconds_to_ns("1767225600.123456") == 1767225600_123456000
    assert times.decimal_seconds_to_ns("5") == 5_000_000_000
    assert times.float_seconds_to_ns(1767225600.123) == 1767225600_123000000
    for bad in (float("nan"), float("inf"), -1.0, 1e13):
        with pytest.raises(DecodeError):
            times.float_seconds_to_ns(bad)


def test_it_makes_strings_storable():
    assert text.line_value("plain") == "plain"
    assert text.line_value("a\x00b") == b"a\x00b"
    assert text.line_value(b"caf\xe9".decode("utf-8", "surrogateescape")) == b"caf\xe9"
    assert text.line_value("\ud800") == b"\xed\xa0\x80"
    assert text.clean_value({"k\x00": ["\ud800", b"\xff", 1.5, float("nan"), None, True]}) == {
        "k\u2400": ["\ufffd", "\ufffd", 1.5, None, None, True]
    }
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(DecodeError, match="nested deeper"):
        text.clean_value(deep)
