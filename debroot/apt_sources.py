"""Find the Debian mirror this machine already uses, so nothing in the repository names one.

The mirror is read at run time from apt's own configuration: deb822 files in
/etc/apt/sources.list.d/*.sources first, then one-line entries in /etc/apt/sources.list and
/etc/apt/sources.list.d/*.list. LOGSITE_TEST_APT_MIRROR overrides both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True, slots=True)
class Mirror:
    uri: str
    keyring: str | None  # Signed-By file, passed to debootstrap when apt names one


class NoMirrorError(RuntimeError):
    pass


def os_codename(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise NoMirrorError(f"no VERSION_CODENAME in {os_release}")


def find_mirror(suite: str, apt_dir: Path = APT_DIR, *, allow_override: bool = True) -> Mirror:
    """The first usable http(s)/file mirror that apt uses for `suite` (e.g. bookworm) main.

    The override names the release's mirror only; pass allow_override=False when looking up
    another archive such as bookworm-security.
    """
    override = os.environ.get("LOGSITE_TEST_APT_MIRROR")
    if override and allow_override:
        return Mirror(override, None)
    candidates = []
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        candidates += _deb822_entries(path.read_text())
    for path in [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]:
        if path.exists():
            candidates += _one_line_entries(path.read_text())
    for uri, suites, components, keyring in candidates:
        if suite in suites and "main" in components and uri.startswith(("http://", "https://", "file:")):
            return Mirror(uri.rstrip("/"), keyring)
    raise NoMirrorError(f"no apt source for suite {suite!r} with component main under {apt_dir}")


def _deb822_entries(text: str):
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes") == "no":
            continue
        suites = stanza.get("suites", "").split()
        components = stanza.get("components", "").split()
        keyring = stanza.get("signed-by", "").strip() or None
        if keyring and not keyring.startswith("/"):
            keyring = None  # an inline key block, not a file debootstrap could read
        for uri in stanza.get("uris", "").split():
            yield uri, suites, components, keyring


def _stanzas(text: str):
    stanza: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
        elif line[0].isspace() and key:
            stanza[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            stanza[key] = value.strip()
    if stanza:
        yield stanza


def _one_line_entries(text: str):
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        keyring = None
        if words and words[0].startswith("["):
            options = []
            while words:
                word = words.pop(0)
                options.append(word.strip("[]"))
                if word.endswith("]"):
                    break
            for option in options:
                if option.startswith("signed-by="):
                    keyring = option.split("=", 1)[1]
        if len(words) >= 3:
            yield words[0], [words[1]], words[2:], keyring
