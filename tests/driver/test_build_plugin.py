"""The packaging script's own steps; tests/e2e/test_plugin_e2e.py runs it against a real dockerd."""

import argparse
import json
import os

import pytest

from driver import build_plugin


@pytest.fixture
def base(tmp_path):
    """A stand-in for the cached Debian tree: only what assemble() must leave alone."""
    tree = tmp_path / "cached"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/python3").write_bytes(b"#!interpreter\n")
    return tree


def test_it_writes_config_and_the_plugin_code_without_touching_the_cached_tree(tmp_path, base):
    plugin = build_plugin.assemble(tmp_path / "plugin", base)

    config = json.loads((plugin / "config.json").read_text())
    assert config["entrypoint"] == ["python3", "-m", "driver"]
    assert config["network"] == {"type": "host"}
    code = plugin / "rootfs/opt/logsite/driver"
    assert sorted(p.name for p in code.iterdir()) == sorted(p.name for p in build_plugin.plugin_files())
    assert {"__main__.py", "main.py", "logentry.py"} <= {p.name for p in code.iterdir()}
    assert not (code / "build_plugin.py").exists()  # the builder needs the checkout, not the plugin
    assert (plugin / "rootfs/run/docker/plugins").is_dir()
    assert (plugin / "rootfs/var/lib/logsite-plugin").is_dir()
    # Hard-linked, and nothing new was written into the cache.
    assert os.path.samefile(plugin / "rootfs/usr/bin/python3", base / "usr/bin/python3")
    assert sorted(str(p.relative_to(base)) for p in base.rglob("*")) == ["usr", "usr/bin", "usr/bin/python3"]


def test_it_collects_the_settings_with_the_token_from_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGSITE_TOKEN", "from-env")
    token_file = tmp_path / "token"
    token_file.write_text("lgs_from_file\n")
    args = build_plugin.parse_args(
        ["--url", "http://l:8514", "--token-file", str(token_file), "--set", "LOG_LEVEL=DEBUG"]
    )

    assert build_plugin.settings_from(args) == {
        "LOGSITE_URL": "http://l:8514",
        "LOGSITE_TOKEN": "lgs_from_file",
        "LOG_LEVEL": "DEBUG",
    }


def test_it_refuses_a_setting_without_a_value():
    args = argparse.Namespace(url=None, read_url=None, token=None, token_file=None, set=["LOGSITE_URL"])
    with pytest.raises(build_plugin.BuildError, match="KEY=VALUE"):
        build_plugin.settings_from(args)
