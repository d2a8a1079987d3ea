"""Where rowcodec.c is and which version it is (shared by the loader and the build)."""

import hashlib
from pathlib import Path

SOURCE = Path(__file__).with_name("rowcodec.c")


def source_sha256() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()
