"""Remove what a dockerd or debootstrap run can leave behind: mounts, processes, cgroups.

Everything here is selected by a path or name unique to one harness instance, so it never
touches another helper's daemon or the host's own Docker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

# Also needed by the rootfs builder, which must not depend on tests; still used from here.
from debroot.fs import mounts_under, remove_tree, unmount_under  # noqa: F401

CGROUP_ROOT = Path("/sys/fs/cgroup")


def pids_with_cmdline_containing(needle: str) -> list[int]:
    """Processes whose command line mentions `needle` (an instance's unique root or namespace)."""
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def cgroup_dirs(name: str) -> list[Path]:
    """Cgroups named `name` (a unique cgroup parent or plugin id) in every hierarchy, with their
    children, deepest first. Searched for by name because runc places a relative cgroup path
    under the cgroup of whoever started dockerd, which differs between hierarchies."""
    name = name.strip("/")
    found: list[Path] = []
    if not name or not CGROUP_ROOT.is_dir():
        return found
    for directory, subdirs, _files in os.walk(CGROUP_ROOT):
        if Path(directory).name == name:
            found += [Path(d) for d, _, _ in os.walk(directory)]
            subdirs.clear()
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def pids_in_cgroups(dirs: list[Path]) -> set[int]:
    pids: set[int] = set()
    for directory in dirs:
        try:
            pids |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        except OSError:
            continue
    return pids


def kill_and_reap(pids: set[int] | list[int], wait: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)


def remove_cgroups(dirs: list[Path]) -> None:
    for directory in dirs:  # deepest first, and rmdir only succeeds on empty cgroups
        with contextlib.suppress(OSError):
            directory.rmdir()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie is dead; its parent (often pid 1) reaps it
