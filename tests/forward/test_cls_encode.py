"""Rows → serialised CLS `Log` messages: fields, names, truncation, and proof that the
hand-written bytes are what the protobuf runtime reads back."""

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from forward.sinks import cls_pb2
from forward.sinks.cls_encode import (
    RESERVED_KEYS,
    LogLimits,
    RowEncoder,
    encode_row,
    truncation_marker,
    varint,
)
from ingest.levels import NAME_BY_SEVERITY
from tests.forward.support import decode_log, make_row


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


def test_it_encodes_a_row_as_key_values_with_its_own_time_in_ms():
    row = make_row(
        labels={"com.docker.compose.service": "web", "odd key!": "x"}, attrs={"user": "bob", "n": 3}
    )
    assert decode_log(encode_row(row).data) == (
        1_700_000_000_123,
        [
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
        ],
    )


def test_it_encodes_times_and_lengths_of_every_varint_size():
    for n in (0, 1, 127, 128, 16383, 16384, 2**21, 2**63 - 1, -1, -(2**63)):
        assert cls_pb2.Log.FromString(b"\x08" + varint(n)).time == n
    long_line = "x" * 300_000  # three-byte lengths inside two-byte-length Contents
    assert decode_log(encode_row(make_row(line=long_line, ts_ns=-5_000_000)).data)[1][0] == ("log", long_line)
    assert decode_log(encode_row(make_row(ts_ns=-5_000_000)).data)[0] == -5


def test_it_reuses_container_metadata_only_while_it_is_the_same():
    encoder = RowEncoder()
    a = make_row(1, labels={"team": "a"})
    same = make_row(2, labels={"team": "a"})
    relabelled = make_row(3, labels={"team": "b"})
    other = make_row(4, container_name="web-2", labels={"team": "a"})
    fields = [dict(decode_log(encoder.encode(r).data)[1]) for r in (a, same, relabelled, other)]
    assert [(f["label.team"], f["container_name"], f["log"]) for f in fields] == [
        ("a", "web-1", "line 1"),
        ("a", "web-1", "line 2"),
        ("b", "web-1", "line 3"),
        ("a", "web-2", "line 4"),
    ]
    a.labels["team"] = "mutated"  # a caller's later change must not leak into cached bytes
    assert dict(decode_log(encoder.encode(same).data)[1])["label.team"] == "a"


def test_it_never_emits_reserved_or_underscore_keys_even_for_hostile_labels():
    hostile = dict.fromkeys([*RESERVED_KEYS, "_x", "", "a\nb", "é"], "v")
    _, contents = decode_log(encode_row(make_row(labels=hostile, attrs=hostile)).data)
    assert len(contents) == 9 + 2 * len(hostile)
    for key, _ in contents:
        assert key
        assert not key.startswith("_")
        assert not any(key.startswith(r) for r in RESERVED_KEYS)
        assert re.fullmatch(r"[A-Za-z0-9_.\-/@]+", key)


def test_it_truncates_an_oversized_value_at_a_character_boundary_and_marks_it():
    line = "é" * 600_000  # 1.2 MB of UTF-8
    fields = dict(decode_log(encode_row(make_row(line=line)).data)[1])
    assert len(fields["log"].encode()) == 1_000_000
    assert line.startswith(fields["log"])
    assert fields["truncated"] == "log"


def test_it_drops_extra_fields_that_do_not_fit_one_log_and_marks_it():
    attrs = {f"a{i}": "x" * 999_000 for i in range(8)}
    log = encode_row(make_row(attrs=attrs))
    assert len(log.data) <= LogLimits().max_log_bytes
    fields = dict(decode_log(log.data)[1])
    assert fields["truncated"] == "fields"
    assert fields["log"] == "line 0"
    assert 1 <= sum(k.startswith("attr.") for k in fields) < 8


def test_it_lists_what_it_cut_in_whole_names_within_its_length():
    assert truncation_marker(["fields", "log"]) == "fields,log"
    names = ["fields", "log", "label." + "a" * 40, "attr.b", "attr.c"]
    assert truncation_marker(names) == "fields,log,label." + "a" * 40 + ",+2"
    assert truncation_marker(["label." + "a" * 80]) == "+1"
    assert all(len(truncation_marker(names[:n])) <= 60 for n in range(6))


def test_it_replaces_unencodable_text_instead_of_failing():
    log = encode_row(make_row(line=b"bad \xff bytes".decode("utf-8", "surrogateescape")))
    assert dict(decode_log(log.data)[1])["log"] == "bad ? bytes"
    log = encode_row(make_row(line=b"raw \xfe"))
    assert dict(decode_log(log.data)[1])["log"] == "raw \ufffd"


SMALL = LogLimits(max_value_bytes=300, max_log_bytes=900, max_key_chars=16)
text = st.text(max_size=40) | st.builds(str.__mul__, st.sampled_from(["x", "é", "✓"]), st.integers(0, 400))


def _expected_pairs(row) -> list[tuple[str, str]]:
    """What a row should become before any limit applies: the spec, written independently."""
    pairs = [("log", row.line), ("stream", row.stream or "stdout")]
    if row.level is not None:
        pairs.append(("level", NAME_BY_SEVERITY[row.level]))
    for key in ("tenant", "service", "container_id", "container_name", "image", "host"):
        if getattr(row, key):
            pairs.append((key, getattr(row, key)))
    for prefix, mapping in (("label.", row.labels), ("attr.", row.attrs)):
        for name, value in (mapping or {}).items():
            if value is not None and value != "":
                key = prefix + re.sub(r"[^A-Za-z0-9_.\-/@]", "_", name)[:16]
                pairs.append((key, value if isinstance(value, str) else str(value).lower()))
    return pairs


@settings(max_examples=300, deadline=None)
@given(
    line=text,
    level=st.none() | st.integers(0, 7),
    service=st.sampled_from(["", "web", "x" * 350]),
    labels=st.none() | st.dictionaries(st.text(max_size=20), text, max_size=4),
    attrs=st.none() | st.dictionaries(st.text(max_size=20), text | st.booleans(), max_size=3),
)
def test_it_keeps_every_field_in_order_or_says_what_it_cut(line, level, service, labels, attrs):
    row = make_row(line=line, level=level, service=service, labels=labels, attrs=attrs)
    log = RowEncoder(SMALL).encode(row)
    assert len(log.data) <= SMALL.max_log_bytes
    time_ms, contents = decode_log(log.data)
    assert time_ms == row.ts_ns // 1_000_000
    marker = dict(contents).pop("truncated", "") if contents[-1][0] == "truncated" else ""
    if marker:
        contents = contents[:-1]
    assert log.values_bytes == sum(len(v.encode()) for _, v in contents) + len(marker)
    expected = iter(_expected_pairs(row))
    skipped = False
    for key, value in contents:
        assert len(value.encode()) <= SMALL.max_value_bytes
        cut_and_said = key in marker.split(",") or marker.rsplit(",", 1)[-1].startswith("+")
        # Sent fields are expected ones, in order, whole or cut as the marker says. Two names
        # can clean up to the same key (";" and ":" both become "_"), so the match is on the
        # value too: the first of them may be the one that was dropped.
        for want_key, want_value in expected:
            if want_key == key and (value == want_value or (cut_and_said and want_value.startswith(value))):
                break
            skipped = True
        else:
            raise AssertionError(f"unexpected, out-of-order or wrongly cut field {key!r}")
    skipped = skipped or next(expected, None) is not None
    # "fields" (anything dropped) always comes first, so it is never the part left out.
    assert marker.startswith("fields") == skipped
    assert len(marker) <= 60
    assert contents[0][0] == "log"


@settings(max_examples=300, deadline=None)
@given(
    line=text,
    level=st.none() | st.integers(0, 7),
    service=st.sampled_from(["", "web", "x" * 350]),
    labels=st.none() | st.dictionaries(st.text(max_size=20), text, max_size=4),
    attrs=st.none() | st.dictionaries(st.text(max_size=20), text, max_size=2),
    ts_ns=st.integers(0, 2**62) | st.integers(-(10**15), -1),
)
def test_the_fast_path_builds_the_same_bytes_as_the_general_one(line, level, service, labels, attrs, ts_ns):
    row = make_row(line=line, level=level, service=service, labels=labels, attrs=attrs, ts_ns=ts_ns)
    fast = RowEncoder(SMALL).encode(row)
    general = RowEncoder(SMALL)._encode_general(row)
    assert (fast.data, fast.values_bytes) == (general.data, general.values_bytes)


def test_consecutive_times_reuse_the_varint_tail_correctly():
    encoder = RowEncoder()
    for ts_ms in (127, 128, 16_383, 16_384, 1_700_000_000_000, 1_700_000_000_127, 1_700_000_000_128, 2**40):
        assert decode_log(encoder.encode(make_row(ts_ns=ts_ms * 1_000_000)).data)[0] == ts_ms
