"""Compiles ingest/native/*.c into ingest/native/_native<EXT_SUFFIX>, next to the sources.

    python -m ingest.native.build [--optional]

Needs a C compiler and the Python headers (Debian: gcc, python3-dev; the pyenv and python:3.11
images have both). The build is stamped with the sources' SHA-256 and is skipped when the
current one is up to date; it is written to a temporary file and renamed, so processes that
build at the same time never load a half-written file. --optional turns a failed build into a
warning (the Python write path is then used).
"""

import argparse
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile

from ingest.native.source import DIRECTORY, source_sha256, sources

TARGET = DIRECTORY / ("_native" + sysconfig.get_config_var("EXT_SUFFIX"))


def built_sha256() -> str | None:
    """The stamp of the current build, read without importing it (a running process may hold
    another version imported)."""
    try:
        data = TARGET.read_bytes()
    except FileNotFoundError:
        return None
    marker = b"SOURCE_SHA256="
    at = data.find(marker)
    return data[at + len(marker) : at + len(marker) + 64].decode("ascii", "replace") if at >= 0 else None


def build(force: bool = False) -> bool:
    """True when a build was needed and done; raises CalledProcessError when the compiler fails."""
    sha = source_sha256()
    if not force and built_sha256() == sha:
        return False
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    fd, tmp = tempfile.mkstemp(prefix=".native-", suffix=".so", dir=TARGET.parent)
    os.close(fd)
    try:
        subprocess.run(
            [
                *cc,
                "-O2",
                "-Wall",
                "-fPIC",
                "-shared",
                f"-I{sysconfig.get_paths()['include']}",
                f'-DSOURCE_SHA256="{sha}"',
                *map(str, sources()),
                "-o",
                tmp,
            ],
            check=True,
        )
        os.replace(tmp, TARGET)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--optional", action="store_true", help="a failed build is only a warning")
    parser.add_argument("--force", action="store_true", help="build even when up to date")
    args = parser.parse_args()
    try:
        done = build(force=args.force)
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"ingest.native: build failed ({e}); the Python write path will be used", file=sys.stderr)
        return 0 if args.optional else 1
    print(f"ingest.native: {'built' if done else 'up to date'}: {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
