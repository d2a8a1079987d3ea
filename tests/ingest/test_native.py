"""ingest/native/rowcodec.c against the Python it replaces: the same rows, the same COPY bytes,
the same levels, for generated records (the Python path is the definition)."""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import levels, normalize
from ingest.native import load
from ingest.native.build import built_sha256
from ingest.native.source import source_sha256
from ingest.normalize import Limits, normalize_batch
from ingest.receivers.dockertag import TagTemplate
from ingest.record import Record
from ingest.store import copy
from tests.ingest.test_receiver_syslog import _receiver as syslog_receiver

NOW = time.time_ns()
LIMITS = Limits(max_line_bytes=64, max_ts_age_ns=86400 * 10**9)

lines = st.one_of(
    st.binary(max_size=90),
    st.text(max_size=90),
    st.sampled_from([b"", b"ERROR x", b"warning: y", b"[info] z", b"errors", b"xerror", b"a" * 65]),
    st.builds(
        lambda words: " ".join(words).encode(),
        st.lists(st.sampled_from(["Err", "WARN", "critical", "info", "x", "emerg", "Trace9"]), max_size=6),
    ),
)
ints = st.one_of(
    st.none(),
    st.integers(min_value=NOW - 2 * 86400 * 10**9, max_value=NOW + 2 * 3600 * 10**9),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
)
records = st.builds(
    Record,
    line=lines,
    ts_ns=ints,
    received_ns=st.one_of(st.just(0), st.integers(min_value=1, max_value=NOW)),
    tenant=st.sampled_from(["default", "acme", "b\x00d"]),
    service=st.sampled_from(["", "api"]),
    container_id=st.sampled_from(["c1", "c2", ""]),
    container_name=st.sampled_from(["", "/web-1"]),
    stream=st.sampled_from(["stdout", "stderr", "other"]),
    level=st.one_of(st.none(), st.integers(min_value=-2, max_value=9), st.just(True)),
    attrs=st.one_of(st.none(), st.just({}), st.just({"k": "v"}), st.just({"dedup_key": "abc"})),
    driver_id=st.sampled_from([None, 1]),
)


@pytest.fixture
def rowcodec():
    module = load.load(required=True)
    assert module is normalize.native, "normalize.py does not use the loaded extension"
    return module


def python_batch(monkeypatch, recs):
    with monkeypatch.context() as m:
        m.setattr(normalize, "native", None)
        return normalize_batch(list(recs), LIMITS, NOW)


def test_the_extension_is_built_from_the_current_source():
    # .ci/run and scripts/test build it; a stale or missing build must not pass unnoticed.
    assert built_sha256() == source_sha256()
    assert load.load(required=True) is not None


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records, max_size=30))
def test_normalize_batch_gives_the_python_rows(rowcodec, monkeypatch, recs):
    native = normalize_batch(list(recs), LIMITS, NOW)
    python = python_batch(monkeypatch, recs)
    assert native.rows == python.rows
    assert [type(v) for row in native.rows for v in row] == [type(v) for row in python.rows for v in row]
    assert native.metas == python.metas
    assert native.keys == python.keys


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records, max_size=30), st.integers(min_value=1, max_value=2**40))
def test_encode_rows_gives_the_python_bytes(rowcodec, monkeypatch, recs, first_id):
    batch = python_batch(monkeypatch, recs)
    ckeys = [1000 + i for i in range(len(batch.metas))]
    expected = copy.encode_rows_python(batch.rows, ckeys, first_id)
    assert copy.encode_rows(batch.rows, ckeys, first_id) == expected


@given(st.binary(max_size=200))
def test_the_level_scan_agrees(data):
    module = load.load(required=True)
    assert module.severity_from_line(data) == levels.severity_from_line(data)


@given(st.lists(st.sampled_from([b"err", b"or", b"Warn", b"ing", b" ", b":", b"x", b"CRIT", b"ical", b"9"])))
def test_the_level_scan_agrees_at_word_edges(parts):
    data = b"".join(parts)
    assert load.load(required=True).severity_from_line(data) == levels.severity_from_line(data)


def test_a_long_line_is_scanned_only_at_its_start(rowcodec):
    cut = b"x" * 119 + b"error"
    assert rowcodec.severity_from_line(cut) == levels.severity_from_line(cut) is None
    assert rowcodec.severity_from_line(b" " * 115 + b"error") == 3
    # The scan window ends inside "errors": the lookahead sees the end, as in Python.
    assert levels.severity_from_line(b" " * 115 + b"errors") == 3


def test_bad_rows_are_refused_not_encoded(rowcodec):
    good = (0, NOW, NOW, 1, None, 0, b"x", None, None)
    with pytest.raises(TypeError):
        copy.encode_rows([good[:8]], [1], 1)
    with pytest.raises(TypeError):
        copy.encode_rows([(*good[:6], "text", None, None)], [1], 1)
    with pytest.raises(IndexError):
        copy.encode_rows([(5, *good[1:])], [1], 1)
    with pytest.raises(KeyError):
        copy.encode_rows([(*good[:4], 9, *good[5:])], [1], 1)
    with pytest.raises(OverflowError):
        copy.encode_rows([(0, 2**80, *good[2:])], [1], 1)


def test_a_record_subclass_takes_the_python_path(rowcodec, monkeypatch):
    class Tagged(Record):
        __slots__ = ()

    recs = [Tagged(line=b"hello error"), Record(line=b"plain")]
    assert normalize_batch(recs, LIMITS, NOW).rows == python_batch(monkeypatch, recs).rows


def test_an_error_in_a_callback_propagates(rowcodec):
    def new_meta(rec):
        raise LookupError("no such tenant")

    rows = []
    with pytest.raises(LookupError, match="no such tenant"):
        rowcodec.normalize_into([Record(line=b"x")], rows, {}, new_meta, None, 10, 0, 2**62, NOW, {})
    assert rows == []


# --- syslog5424.c ------------------------------------------------------------------------

_digits = st.text("0123456789", min_size=1, max_size=10).map(str.encode)
_stamps = st.one_of(
    st.sampled_from(
        [
            b"-",
            b"2026-01-02T03:04:05Z",
            b"2026-01-02T03:04:05.1Z",
            b"2026-01-02T03:04:05.123456789-07:30",
            b"2026-01-02T03:04:05.1234567890Z",
            b"2026-13-02T03:04:05Z",
            b"2026-01-02T03:04:05+0100",
            b"2026-01-02 03:04:05Z",
        ]
    ),
    st.builds(lambda f: b"2026-11-26T10:00:00." + f + b"Z", _digits),
    st.binary(min_size=1, max_size=30),
)
_words = st.one_of(
    st.sampled_from([b"-", b"0123456789ab", b"web-1", b"nginx:1/web-1/0123456789ab", b"a\tb", b""]),
    st.binary(max_size=12),
)
_frames = st.one_of(
    st.builds(
        lambda pri, stamp, host, app, sep, msg, nl: (
            b"<%s>1 %s %s %s 812 %s -%s%s%s" % (pri, stamp, host, app, app, sep, msg, nl)
        ),
        st.one_of(_digits, st.just(b"")),
        _stamps,
        _words,
        _words,
        st.sampled_from([b" ", b"", b"x", b"  "]),
        st.one_of(st.binary(max_size=20), st.just(b"\xef\xbb\xbfbom"), st.just(b"a\nb")),
        st.sampled_from([b"", b"\n", b"\n\n"]),
    ),
    st.binary(max_size=60),
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_frames, max_size=12),
    st.sampled_from([TagTemplate(), TagTemplate("{{.ImageName}}/{{.Name}}/{{.ID}}")]),
    st.sampled_from(["", "10.0.0.9"]),
)
def test_docker_5424_gives_the_python_records(frames, tags, peer):
    load.load(required=True)
    fast, slow = syslog_receiver(tags, "team-a"), syslog_receiver(tags, "team-a")
    for _ in range(2):  # the second pass is served from the receivers' header caches
        assert fast._decode_native(frames, peer, 5) == slow._decode_python(frames, peer, 5)
        assert (fast.stats.malformed, fast.stats.last_error) == (slow.stats.malformed, slow.stats.last_error)


def test_the_syslog_receiver_uses_the_extension():
    receiver = syslog_receiver(TagTemplate(), "team-a")
    frame = b"<30>1 2026-11-26T10:00:00.5Z host 0123456789ab 812 0123456789ab - hello"
    assert receiver._decode([frame], "", 5) == receiver._decode_native([frame], "", 5)
    assert load.load(required=True) is not None


# --- syslog_framing.c ----------------------------------------------------------------------

_pieces = st.one_of(
    st.builds(lambda m: b"%d %s" % (len(m), m), st.binary(max_size=30)),  # well-formed
    st.builds(lambda m, d: b"%d %s" % (len(m) + d, m), st.binary(max_size=30), st.integers(-3, 3)),
    st.sampled_from(
        [b"\n", b"\r\n", b"\x00", b"99999999999 x", b"12x ab", b"<13>1 - - - - - - hi\n", b"40 "]
    ),
    st.sampled_from([b"0000000003 abc", b"00000000003 abc", b"0 ", b"3 ab"]),  # digit-count edges
    st.binary(max_size=20),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_pieces, max_size=20), st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_octet_frames_leave_the_framer_unchanged(monkeypatch, pieces, cuts):
    from ingest.receivers import syslog

    load.load(required=True)
    data = b"".join(pieces)
    chunks, at = [], 0
    for cut in cuts * (len(data) // max(sum(cuts), 1) + 1):
        chunks.append(data[at : at + cut])
        at += cut
    chunks.append(data[at:])

    def run(native):
        with monkeypatch.context() as m:
            if not native:
                m.setattr(syslog, "native", None)
            framer = syslog.StreamFramer(max_message_bytes=24)
            frames = [frame for chunk in chunks for frame in framer.feed(chunk)]
            return frames, framer.finish(), framer.oversize, framer.malformed

    assert run(True) == run(False)
