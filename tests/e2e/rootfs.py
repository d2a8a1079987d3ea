"""Debian trees for the e2e tests, cached under LOGSITE_TEST_CACHE (default /var/cache/logsite-test).

The builder itself is debroot.rootfs, shared with the plugin's packaging script.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from debroot import rootfs as _rootfs
from debroot.rootfs import RootfsBuildError, build_info  # noqa: F401 - the harness's API

PYTHON_PACKAGES = ("python3",)


def cache_dir() -> Path:
    return Path(os.environ.get("LOGSITE_TEST_CACHE", "/var/cache/logsite-test"))


def ensure_rootfs(packages: Iterable[str] = PYTHON_PACKAGES, *, suite: str | None = None) -> Path:
    """A cached Debian minbase tree with `packages`; see debroot.rootfs.ensure_rootfs."""
    return _rootfs.ensure_rootfs(packages, cache_dir(), suite=suite)
