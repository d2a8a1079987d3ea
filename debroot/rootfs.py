"""Debian root filesystems built with debootstrap, cached once per machine.

Used for the Docker logging plugin (a plugin needs a rootfs directory, and images cannot be
pulled here) and for any image that needs more than busybox. A build takes one to three
minutes, so the result is kept in a cache directory, keyed by suite, architecture and package
list; a file lock makes concurrent builds wait for one build instead of racing. The mirror comes
from this machine's apt sources at run time (see apt_sources.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from debroot import apt_sources
from debroot.fs import remove_tree, unmount_under

RECIPE_VERSION = 1  # bump when the build steps change so cached trees are rebuilt
# Not needed at run time and about a third of the tree; a smaller tree makes
# `docker plugin create` (which tars and gzips the rootfs) faster.
TRIM_TREES = ("usr/share/doc", "usr/share/man", "usr/share/info")
TRIM_FILES = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*")


class RootfsBuildError(RuntimeError):
    pass


def ensure_rootfs(
    packages: Iterable[str],
    cache: Path,
    *,
    suite: str | None = None,
    mirror: str | None = None,
    updates: bool = False,
    refresh: bool = False,
) -> Path:
    """The path of a Debian minbase tree with `packages` installed, building it if needed.

    `suite` defaults to this machine's release and `mirror` to the one its apt sources use for
    that suite. With `updates`, the tree is then upgraded from the suite's -updates and
    -security archives wherever this machine's apt sources find them (about a minute more):
    for trees that ship to users, such as the plugin's. Treat the tree as read-only: it is
    shared by every build and test session on the machine (hard-link copies are fine as long
    as files are replaced, not edited). `refresh` builds the tree again even if it is cached.
    """
    suite = suite or apt_sources.os_codename()
    wanted = sorted(set(packages))
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True)
    # The key of a tree without updates is what it was before they existed: caches stay valid.
    recipe = [RECIPE_VERSION, wanted, "updates"] if updates else [RECIPE_VERSION, wanted]
    digest = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    key = f"{suite}-{arch.stdout.strip()}-{digest}"
    trees = cache / "rootfs"
    final = trees / key
    if final.is_dir() and not refresh:  # complete: a tree only appears here by an atomic rename
        return final
    trees.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "rootfs.lock"):
        if refresh and final.is_dir():
            # Renamed first so that the tree is never seen half deleted.
            os.rename(final, trees / f".build-stale-{os.getpid()}")
        if not final.is_dir():
            _remove_unfinished(trees)
            _build(final, suite, wanted, cache, mirror, updates)
    return final


def build_info(tree: Path) -> dict:
    """What was built and how long it took, recorded next to the tree."""
    return json.loads(tree.with_suffix(".json").read_text())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_unfinished(trees: Path) -> None:
    # Left by a build that was killed; debootstrap may have had /proc or /sys mounted in it.
    for stale in trees.glob(".build-*"):
        unmount_under(stale)
        remove_tree(stale)


def _build(
    final: Path, suite: str, packages: list[str], cache: Path, mirror_uri: str | None, updates: bool
) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise RootfsBuildError(
            "debootstrap is missing: apt-get install debootstrap debian-archive-keyring "
            "(in a Logsite checkout: scripts/install-system-packages)"
        )
    mirror = apt_sources.Mirror(mirror_uri, None) if mirror_uri else apt_sources.find_mirror(suite)
    work = final.parent / f".build-{final.name}-{os.getpid()}"
    target = work / "root"
    debs = cache / "debs"  # shared by every package list, so later builds download less
    debs.mkdir(parents=True, exist_ok=True)
    work.mkdir()
    argv = [debootstrap, "--variant=minbase", f"--cache-dir={debs}"]
    if packages:
        argv.append(f"--include={','.join(packages)}")
    if mirror.keyring:
        argv.append(f"--keyring={mirror.keyring}")
    argv += [suite, str(target), mirror.uri]
    started = time.monotonic()
    with open(work / "debootstrap.log", "wb") as log:
        result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=1800, check=False)
    unmount_under(target)
    if result.returncode != 0:
        tail = "\n".join((work / "debootstrap.log").read_text(errors="replace").splitlines()[-40:])
        raise RootfsBuildError(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")
    upgraded_from = _upgrade(target, suite, work / "upgrade.log") if updates else []
    for relative in TRIM_TREES:
        shutil.rmtree(target / relative, ignore_errors=True)
    for pattern in TRIM_FILES:  # files only: apt in the tree still finds its directories
        for path in target.glob(pattern):
            path.unlink()
    seconds = time.monotonic() - started
    info = {
        "suite": suite,
        "packages": packages,
        "mirror": mirror.uri,
        "upgraded_from": upgraded_from,
        "build_seconds": round(seconds, 1),
    }
    final.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    os.rename(target, final)
    remove_tree(work)


def _upgrade(target: Path, suite: str, log_path: Path) -> list[str]:
    """Upgrade the tree from `suite`-updates and -security as this machine's apt finds them.

    Returns the sources used. apt runs inside the tree (chroot), which debootstrap gave this
    machine's resolv.conf; the sources stay in the tree so that it says where it came from.
    """
    sources = []
    for archive in (f"{suite}-updates", f"{suite}-security"):
        try:
            found = apt_sources.find_mirror(archive, allow_override=False)
        except apt_sources.NoMirrorError:
            continue
        sources.append(f"deb {found.uri} {archive} main")
    if not sources:
        return []
    (target / "etc/apt/sources.list.d/updates.list").write_text("\n".join(sources) + "\n")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    with open(log_path, "wb") as log:
        for step in (["apt-get", "update"], ["apt-get", "-y", "upgrade"], ["apt-get", "clean"]):
            argv = ["chroot", str(target), *step]
            result = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=1800)
            if result.returncode != 0:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
                raise RootfsBuildError(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")
    return sources
