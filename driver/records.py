"""Turns whole lines into Logsite HTTP-push objects, one NDJSON line each.

Each record carries the line's own dockerd timestamp (`ts_ns`), never the send time, so lines
replayed after an outage land where they belong.
"""

import json
import time
from typing import Any

from driver.container import ContainerInfo
from driver.options import Options
from driver.partials import Line


class RecordBuilder:
    def __init__(self, info: ContainerInfo, options: Options) -> None:
        self._options = options
        self._filter = options.filter_re
        self._template = options.template
        base: dict[str, Any] = {
            "container_id": info.container_id,
            "container_name": info.name,
            "image": info.image_name,
            "host": options.host,
        }
        if options.service:
            base["service"] = options.service
        # Only sent when asked for: a token bound to a tenant rejects records naming one.
        if options.tenant:
            base["tenant"] = options.tenant
        if options.labels:
            base["labels"] = options.labels
        self._base = base
        attrs: dict[str, Any] = {}
        if options.tag:
            attrs["tag"] = options.tag
        if options.env:
            attrs["env"] = options.env
        self._attrs = attrs
        # The container's fields never change, so their JSON is made once; per line only the
        # text, time and stream are encoded. This is the plugin's hottest path.
        self._head = b"{" + _dumps(base)[1:-1] + b',"line":'
        self._tail = b',"attrs":' + _dumps(attrs) + b"}" if attrs else b"}"
        self.filtered = 0

    def build(self, line: Line) -> bytes | None:
        """The record as one JSON line, or None when filter-regex leaves the line out."""
        # Invalid UTF-8 cannot travel in JSON text; U+FFFD keeps the rest of the line readable.
        text = line.line.decode("utf-8", "replace")
        if self._filter is not None and not self._filter.search(text):
            self.filtered += 1
            return None
        if self._template is not None:
            text = self._template.render(line.line, line.time_nano).decode("utf-8", "replace")
        stream = b',"stream":"stderr"' if line.source == "stderr" else b',"stream":"stdout"'
        if line.truncated_from is None and not line.incomplete:
            tail = self._tail
        else:
            attrs = dict(self._attrs)
            if line.truncated_from is not None:
                attrs["truncated_from_bytes"] = line.truncated_from
            if line.incomplete:
                attrs["partial_incomplete"] = True
            tail = b',"attrs":' + _dumps(attrs) + b"}"
        return b"".join(
            (self._head, _quote(text).encode(), b',"ts_ns":', str(line.time_nano).encode(), stream, tail)
        )

    def drop_report(self, dropped: int, buffer_bytes: int) -> bytes:
        """The record that tells Logsite how many lines this container lost to a full buffer."""
        record = dict(self._base)
        record["line"] = (
            f"logsite plugin: dropped {dropped} log lines of this container because its "
            f"{buffer_bytes}-byte on-disk buffer was full while Logsite was unreachable"
        )
        record["ts_ns"] = time.time_ns()
        record["stream"] = "stderr"
        record["attrs"] = {**self._attrs, "logsite_dropped": dropped}
        return _dumps(record)


_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _dumps(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
