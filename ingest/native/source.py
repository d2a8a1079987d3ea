"""Which sources make up ingest/native's extension, and which version they are (shared by the
loader and the build)."""

import hashlib
from pathlib import Path

DIRECTORY = Path(__file__).parent


def sources() -> list[Path]:
    return sorted(DIRECTORY.glob("*.c"))


def source_sha256() -> str:
    digest = hashlib.sha256()
    for path in sorted([*DIRECTORY.glob("*.c"), *DIRECTORY.glob("*.h")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
