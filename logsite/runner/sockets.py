"""Unix socket paths of the embedded services."""

import os
from pathlib import Path

from logsite.runner import RunError

# sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 107


def check_socket_path(path: Path) -> Path:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise RunError(
            f"the socket path {path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes a unix socket "
            "allows; set LOGSITE_DATA_DIR to a shorter directory"
        )
    return path
