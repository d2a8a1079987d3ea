import re
from pathlib import Path

from driver.fifo import FrameDecoder
from driver.logentry import FIELDS, LogEntry, _file_proto

PROTO = Path(__file__).resolve().parents[2] / "driver" / "logentry.proto"
# The FileDescriptorProto that protoc 35.1 generated from logentry.proto (it was the serialized
# file in the former logentry_pb2.py): the runtime-built descriptor must be the same bytes.
PROTOC_DESCRIPTOR = (
    b'\n\x0elogentry.proto\x12\x0elogsite.driver"\xbb\x01\n\x08LogEntry\x12\x0e\n\x06source\x18\x01'
    b" \x01(\t\x12\x11\n\ttime_nano\x18\x02 \x01(\x03\x12\x0c\n\x04line\x18\x03 \x01(\x0c\x12\x0f\n"
    b"\x07partial\x18\x04 \x01(\x08\x12E\n\x14partial_log_metadata\x18\x05 \x01(\x0b2'.logsite.driver."
    b'PartialLogEntryMetadata\x12&\n\x05attrs\x18\x06 \x03(\x0b2\x17.logsite.driver.LogAttr"D\n'
    b"\x17PartialLogEntryMetadata\x12\x0c\n\x04last\x18\x01 \x01(\x08\x12\n\n\x02id\x18\x02 \x01(\t"
    b'\x12\x0f\n\x07ordinal\x18\x03 \x01(\x05"%\n\x07LogAttr\x12\x0b\n\x03key\x18\x01 \x01(\t\x12\r\n'
    b"\x05value\x18\x02 \x01(\tb\x06proto3"
)


def test_it_builds_the_descriptor_protoc_makes_from_the_proto_file():
    assert _file_proto().SerializeToString() == PROTOC_DESCRIPTOR


def test_it_has_the_fields_the_proto_file_declares():
    declared = {}
    message = None
    for line in PROTO.read_text().splitlines():
        code = line.split("//", 1)[0]
        if m := re.match(r"\s*message (\w+)", code):
            message = m.group(1)
            declared[message] = set()
        elif m := re.match(r"\s*(?:repeated )?[\w.]+ (\w+) = (\d+);", code):
            declared[message].add((m.group(1), int(m.group(2))))

    assert declared == {name: {(f[0], f[1]) for f in fields} for name, fields in FIELDS}


def test_it_decodes_a_frame_as_dockerd_writes_it():
    # dockerd's Go encoding of {Source: "stderr", TimeNano: 1, Line: "hi", Partial: true,
    # PartialLogMetadata: {Last: true, ID: "g", Ordinal: 2}}, with its length prefix.
    body = b"\n\x06stderr\x10\x01\x1a\x02hi \x01*\x07\x08\x01\x12\x01g\x18\x02"
    (entry,) = FrameDecoder().feed(len(body).to_bytes(4, "big") + body)

    assert (entry.source, entry.time_nano, entry.line, entry.partial) == ("stderr", 1, b"hi", True)
    assert (entry.partial_log_metadata.last, entry.partial_log_metadata.id) == (True, "g")
    assert entry.partial_log_metadata.ordinal == 2
    assert isinstance(entry, LogEntry)
