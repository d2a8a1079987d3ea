"""The `template` log-opt, which reshapes each line, and dockerd's `tag` log-opt.

Container facts are fixed for the life of a stream, so they are rendered once at StartLogging
and only `{log}` and `{timestamp}` are filled per line. `{log}` is spliced in as raw bytes so a
template never changes how the line's own bytes are handled.
"""

import re

from driver.container import ContainerInfo
from driver.timefmt import format_rfc3339_ns


class TemplateError(ValueError):
    pass


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_STATIC_FIELDS = ("container_id", "container_name", "image_name", "daemon_name")


class Template:
    __slots__ = ("_parts",)

    def __init__(self, parts: list[bytes | str]) -> None:
        # bytes are literal text; the strings "log" and "timestamp" mark per-line fields.
        self._parts = parts

    @classmethod
    def parse(cls, text: str, info: ContainerInfo) -> "Template":
        static = {
            "container_id": info.container_id,
            "container_name": info.name,
            "image_name": info.image_name,
            "daemon_name": info.daemon_name,
        }
        parts: list[bytes | str] = []
        literal: list[str] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            literal.append(text[pos : m.start()])
            pos = m.end()
            token = m.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
                continue
            name = m.group(1)
            if name is None:
                raise TemplateError(f"template has an unmatched {token!r}; write {token * 2} for a literal")
            if name in static:
                literal.append(static[name])
            elif name.startswith("label:") and len(name) > len("label:"):
                literal.append(info.labels.get(name[len("label:") :], ""))
            elif name in ("log", "timestamp"):
                parts.append("".join(literal).encode())
                literal = []
                parts.append(name)
            else:
                known = ", ".join("{" + f + "}" for f in ("log", "timestamp", *_STATIC_FIELDS, "label:NAME"))
                raise TemplateError(f"template field {{{name}}} is unknown; known fields: {known}")
        literal.append(text[pos:])
        parts.append("".join(literal).encode())
        return cls([p for p in parts if p != b""])

    def render(self, line: bytes, time_nano: int) -> bytes:
        out = []
        for part in self._parts:
            if part == "log":
                out.append(line)
            elif part == "timestamp":
                out.append(format_rfc3339_ns(time_nano).encode())
            else:
                assert isinstance(part, bytes)
                out.append(part)
        return b"".join(out)


_TAG_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def render_tag(text: str, info: ContainerInfo) -> str:
    """dockerd's `tag` is a Go template; the plain field references cover what people use."""
    fields = {
        "ID": info.short_id,
        "FullID": info.container_id,
        "Name": info.name,
        "ImageName": info.image_name,
        "ImageID": info.image_id.removeprefix("sha256:")[:12],
        "ImageFullID": info.image_id,
        "DaemonName": info.daemon_name,
    }

    def field(m: re.Match[str]) -> str:
        if m.group(1) not in fields:
            raise TemplateError(f"tag field .{m.group(1)} is not supported; use one of {', '.join(fields)}")
        return fields[m.group(1)]

    rendered = _TAG_FIELD.sub(field, text)
    if "{{" in rendered:
        raise TemplateError("tag supports only plain fields such as {{.Name}} or {{.ID}}")
    return rendered
