"""Reading container identity back out of a Docker log tag.

syslog and splunk carry no container fields, only the tag that `--log-opt tag=…` renders
from a Go template (default `{{.ID}}`, the 12-hex short id). The rule: the driver's
`tag_template` option holds the same template the Docker host uses; a tag that fully
matches it yields the container id, name and image it encodes. A tag that does not match
(or an empty template) is not taken as container identity at all, because syslog's
APP-NAME of an ordinary program ("sshd", "cron") must not become a container.
"""

import re

from .text import ascii_or_clean

# Docker's placeholder → (Record field, what the value can look like).
_PLACEHOLDERS = {
    "ID": ("container_id", r"[0-9a-f]{12}"),
    "FullID": ("container_id", r"[0-9a-f]{64}"),
    # Docker's own rule for container names.
    "Name": ("container_name", r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"),
    "ImageName": ("image", r"[^\s\[\]]+?"),
    "ImageID": ("image_id", r"[0-9a-f]{12}"),
    "ImageFullID": ("image_id", r"sha256:[0-9a-f]{64}"),
    "DaemonName": (None, r"[^\s\[\]]+?"),
    "Hostname": (None, r"[^\s\[\]]+?"),
}
# What a tag can say about a Record (image_id has no Record field).
RECORD_FIELDS = ("container_id", "container_name", "image")
_PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
DEFAULT_TEMPLATE = "{{.ID}}"


# Tags repeat on every line of a container: remember this many answers per template.
_CACHED_TAGS = 8192


class TagTemplate:
    def __init__(self, template: str = DEFAULT_TEMPLATE):
        self.template = template
        self._regex = self._compile(template) if template else None
        self._parsed: dict[str, dict[str, str] | None] = {}
        self._parsed_bytes: dict[bytes, dict[str, str] | None] = {}

    @staticmethod
    def _compile(template: str) -> re.Pattern:
        pattern, used, pos = [], set(), 0
        for m in _PLACEHOLDER.finditer(template):
            name = m.group(1)
            if name not in _PLACEHOLDERS:
                known = ", ".join(sorted(_PLACEHOLDERS))
                raise ValueError(f"tag template: {{{{.{name}}}}} cannot be read back (known: {known})")
            pattern.append(re.escape(template[pos : m.start()]))
            value = _PLACEHOLDERS[name][1]
            group = f"p_{name}_{len(used)}"
            used.add(group)
            pattern.append(f"(?P<{group}>{value})")
            pos = m.end()
        rest = template[pos:]
        if "{{" in rest:
            raise ValueError("tag template: only plain {{.Field}} placeholders are supported")
        pattern.append(re.escape(rest))
        return re.compile("".join(pattern))

    def parse(self, tag: str) -> dict[str, str] | None:
        """Record fields the tag encodes (a shared dict: read it, do not change it), or None when
        the tag is not one of this template's."""
        try:
            return self._parsed[tag]
        except KeyError:
            pass
        if len(self._parsed) >= _CACHED_TAGS:
            self._parsed.clear()
        fields = self._parsed[tag] = self._parse(tag)
        return fields

    def record_fields(self, tag: bytes) -> dict[str, str] | None:
        """For a tag still in bytes (syslog): the Record keyword arguments it gives (container
        id, name, image; shared, do not change), or None when it is not this template's."""
        try:
            return self._parsed_bytes[tag]
        except KeyError:
            pass
        if len(self._parsed_bytes) >= _CACHED_TAGS:
            self._parsed_bytes.clear()
        fields = self.parse(ascii_or_clean(tag))
        if fields is not None:
            fields = {k: v for k, v in fields.items() if k in RECORD_FIELDS}
        self._parsed_bytes[tag] = fields
        return fields

    def _parse(self, tag: str) -> dict[str, str] | None:
        if self._regex is None:
            return None
        m = self._regex.fullmatch(tag)
        if m is None:
            return None
        fields: dict[str, str] = {}
        for group, value in m.groupdict().items():
            field = _PLACEHOLDERS[group.split("_")[1]][0]
            if field is not None:
                fields[field] = value
        return fields
