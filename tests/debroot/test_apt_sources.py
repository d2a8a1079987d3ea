"""Mirror discovery for debootstrap, from apt configuration files written into a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from debroot.apt_sources import Mirror, NoMirrorError, find_mirror

DEB822 = """\
Types: deb-src
URIs: http://source.example/debian
Suites: bookworm
Components: main

Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian http://second.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/example.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.fixture
def apt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LOGSITE_TEST_APT_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_it_takes_the_first_deb_stanza_for_the_suite(apt_dir: Path):
    (apt_dir / "sources.list.d" / "debian.sources").write_text(DEB822)

    assert find_mirror("bookworm", apt_dir) == Mirror(
        "http://mirror.example/debian", "/usr/share/keyrings/example.gpg"
    )
    assert find_mirror("bookworm-security", apt_dir).uri == "http://security.example/debian-security"


def test_it_reads_one_line_sources_with_options(apt_dir: Path):
    (apt_dir / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://source.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/k.gpg] http://one.example/debian/ bookworm main\n"
    )

    assert find_mirror("bookworm", apt_dir) == Mirror("http://one.example/debian", "/etc/apt/keyrings/k.gpg")


def test_it_ignores_disabled_stanzas_and_other_suites(apt_dir: Path):
    (apt_dir / "sources.list.d" / "old.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    (apt_dir / "sources.list.d" / "other.list").write_text("deb http://other.example/debian trixie main\n")

    with pytest.raises(NoMirrorError, match="bookworm"):
        find_mirror("bookworm", apt_dir)


def test_it_prefers_the_environment_override(apt_dir: Path, monkeypatch: pytest.MonkeyPatch):
    (apt_dir / "sources.list.d" / "debian.sources").write_text(DEB822)
    monkeypatch.setenv("LOGSITE_TEST_APT_MIRROR", "http://override.example/debian")

    assert find_mirror("bookworm", apt_dir) == Mirror("http://override.example/debian", None)
