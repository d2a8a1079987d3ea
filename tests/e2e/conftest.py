"""Fixtures for end-to-end tests that need a real Docker engine.

Use `dockerd` (one daemon for the whole session) and `busybox_image` (its tag) to run
containers; `python_rootfs` for a Debian tree with python3 to build a plugin from. They fail the
test when something cannot start; they never skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import rootfs
from tests.e2e.dockerd import Dockerd, reap_abandoned

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The first session on a machine builds the rootfs with debootstrap: 1 min on an idle machine,
# 3+ min on a busy one. That counts against whichever test asks for it first.
ROOTFS_BUILD_TIMEOUT = 1800
NEEDS_ROOTFS = {"python_rootfs", "logsite_plugin"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if NEEDS_ROOTFS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timeout(ROOTFS_BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    reap_abandoned()
    daemon = Dockerd().start()
    try:
        yield daemon
    finally:
        # Plugins log to dockerd's log too, so keep it for whoever reads a failed run.
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(daemon.log_path, ARTIFACTS / f"{daemon.root.name}-dockerd.log")
        daemon.stop()


@pytest.fixture(scope="session")
def busybox_image(dockerd: Dockerd) -> str:
    return dockerd.import_busybox()


@pytest.fixture(scope="session")
def python_rootfs() -> Path:
    return rootfs.ensure_rootfs(rootfs.PYTHON_PACKAGES)
