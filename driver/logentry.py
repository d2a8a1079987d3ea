"""dockerd's LogEntry messages, built at import time from the field table in logentry.proto.

Not protoc output on purpose: gencode from a current protoc refuses to load on an older
`protobuf` runtime, and the plugin's rootfs uses the distribution's package (Debian 12 ships
protobuf 4.21). Building the descriptor here works from 4.21 to 7.x, so the plugin runs on
whatever `python3-protobuf` or pip wheel the rootfs has. tests/driver/test_logentry.py checks
that these fields match logentry.proto.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "logsite.driver"
_F = descriptor_pb2.FieldDescriptorProto

# (message, [(field, number, type, label, message type of a sub-message field)])
FIELDS: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
    (
        "LogEntry",
        [
            ("source", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
            ("time_nano", 2, _F.TYPE_INT64, _F.LABEL_OPTIONAL, ""),
            ("line", 3, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, ""),
            ("partial", 4, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
            ("partial_log_metadata", 5, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "PartialLogEntryMetadata"),
            ("attrs", 6, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "LogAttr"),
        ],
    ),
    (
        "PartialLogEntryMetadata",
        [
            ("last", 1, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
            ("id", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
            ("ordinal", 3, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ],
    ),
    (
        "LogAttr",
        [
            ("key", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
            ("value", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ],
    ),
]


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="logentry.proto", package=PACKAGE, syntax="proto3")
    for message_name, fields in FIELDS:
        message = file.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
    return file


def _message_classes() -> dict[str, type]:
    # A private pool: the default one would clash with anything else that registers this file.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(_file_proto().SerializeToString())
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        make = message_factory.GetMessageClass
    else:  # older runtimes; GetPrototype is gone from 5.x on. One factory, so that a
        # sub-message field and PartialLogEntryMetadata below are the same class.
        make = message_factory.MessageFactory(pool).GetPrototype
    return {name: make(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name, _ in FIELDS}


_CLASSES = _message_classes()
LogEntry = _CLASSES["LogEntry"]
PartialLogEntryMetadata = _CLASSES["PartialLogEntryMetadata"]
LogAttr = _CLASSES["LogAttr"]
