"""Root filesystems as tar streams for `docker import`: images cannot be pulled on these machines."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = Path("/bin/busybox")  # from Debian's busybox-static
PT_INTERP = 3


def is_static_elf(path: Path) -> bool:
    """True when the binary has no program interpreter, i.e. runs in an empty root filesystem."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # ELF, 64-bit
        return False
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    return all(
        struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] != PT_INTERP for i in range(phnum)
    )


def busybox_applets(busybox: Path = BUSYBOX) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True).stdout
    return sorted({name for name in out.split() if name and "/" not in name and name != "busybox"})


def busybox_tar(busybox: Path = BUSYBOX) -> bytes:
    """A whole image in one tar: /bin/busybox plus a symlink for every applet (sh, echo, seq, ...)."""
    if not busybox.exists():
        raise FileNotFoundError(f"{busybox} is missing: apt-get install busybox-static")
    if not is_static_elf(busybox):
        raise RuntimeError(f"{busybox} is dynamically linked: install busybox-static, not busybox")
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            tar.addfile(info)
        _add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        _add_bytes(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in busybox_applets(busybox):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", now
            tar.addfile(info)
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def tar_directory(rootfs: Path) -> subprocess.Popen[bytes]:
    """GNU tar streaming `rootfs` to stdout; it keeps device nodes, xattrs and owners as they are."""
    tar = shutil.which("tar")
    if tar is None:
        raise FileNotFoundError("tar is missing")
    return subprocess.Popen(
        [tar, "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
