"""Process privileges for the supervised children.

Postgres refuses to run as root (a compromised server must not own the machine). When Logsite
runs as root (in a container, on a fresh VM) the embedded Postgres therefore runs as its own
unprivileged system user, which must be able to reach the server binaries and its data.
"""

import ctypes
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from logsite.runner import RunError

POSTGRES_SYSTEM_USER = "logsite-postgres"
_PR_SET_PDEATHSIG = 1


def postgres_account() -> pwd.struct_passwd | None:
    """The account the embedded Postgres runs as; None means this process's own."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        pass
    command = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent"]
    command += ["--shell", "/usr/sbin/nologin", POSTGRES_SYSTEM_USER]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = (getattr(e, "stderr", None) or str(e)).strip()
        raise RunError(
            f"Postgres cannot run as root and the system user {POSTGRES_SYSTEM_USER!r} could not be "
            f"created ({detail}); create that user, or run Logsite as an ordinary user"
        ) from e
    return pwd.getpwnam(POSTGRES_SYSTEM_USER)


def make_reachable(path: Path) -> list[Path]:
    """Give `path` and its parents o+x (enter, not list) where they lack it; return what changed."""
    changed = []
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(directory)
    return changed


def die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec_fn that has the kernel send `sig` to the child when the supervisor dies.

    Even a SIGKILLed supervisor then leaves no orphans: each child gets its usual stop signal.
    """
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec
