"""Shared helpers for the forward tests: a typical row, and decoding what the sink produced."""

from forward.sinks import cls_pb2
from forward.sinks.row import ForwardRow


def make_row(i: int = 0, **kw) -> ForwardRow:
    base = {
        "ts_ns": 1_700_000_000_123_456_789 + i,
        "line": f"line {i}",
        "stream": "stderr",
        "level": 3,
        "tenant": "acme",
        "service": "web",
        "container_id": "c0ffee" * 10,
        "container_name": "web-1",
        "image": "nginx:1.25",
        "host": "node-1",
    }
    base.update(kw)
    return ForwardRow(**base)


def decode_log(data: bytes) -> tuple[int, list[tuple[str, str]]]:
    """(time, contents) of one serialised Log, parsed by the real protobuf runtime."""
    log = cls_pb2.Log.FromString(data)
    assert log.IsInitialized()
    return log.time, [(c.key, c.value) for c in log.contents]


def decode_body(body: bytes):
    message = cls_pb2.LogGroupList.FromString(body)
    assert message.IsInitialized()
    return message
