"""Mounts and trees a debootstrap run (or a dockerd) can leave behind, removed safely."""

from __future__ import annotations

import subprocess
from pathlib import Path


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (the order they must be unmounted in)."""
    prefix = str(root).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = _unescape(line.split()[4])
        if mount_point == prefix or mount_point.startswith(prefix + "/"):
            found.append(mount_point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_under(root: Path) -> None:
    # Lazy unmount: a netns file or a shm mount may still be held open by a dying shim, and a
    # busy mount must not abort the cleanup of everything else.
    for mount_point in mounts_under(root):
        subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"could not unmount {left}")


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def remove_tree(path: Path) -> None:
    """rm -rf that stays on one filesystem: should a mount under a daemon root or a debootstrap
    tree survive (a bind of /dev, /proc, a netns), its contents are never deleted through it."""
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=False)
