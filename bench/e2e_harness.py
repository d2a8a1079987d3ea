"""Prints how long the e2e Docker harness takes: dockerd start, image imports, plugin create, stop.

python -m bench.e2e_harness              # uses (or builds once) the cached python rootfs
python -m bench.e2e_harness --cold       # also times a fresh debootstrap into a temp cache
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.e2e import rootfs
from tests.e2e.dockerd import Dockerd

# Answers Plugin.Activate so `plugin enable` completes, and nothing else.
ACTIVATE_ONLY = b"""
import socketserver
from http.server import BaseHTTPRequestHandler

class Api(BaseHTTPRequestHandler):
    def do_POST(self):
        body = b'{"Implements": ["LogDriver"]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

socketserver.UnixStreamServer("/run/docker/plugins/bench.sock", Api).serve_forever()
"""
PLUGIN_CONFIG = {
    "description": "bench plugin",
    "documentation": "bench/e2e_harness.py",
    "entrypoint": ["/usr/bin/python3", "/bench.py"],
    "interface": {"types": ["docker.logdriver/1.0"], "socket": "bench.sock"},
    "network": {"type": "host"},
}


def timed(label: str, func, *args, **kwargs):
    started = time.monotonic()
    result = func(*args, **kwargs)
    print(f"{label:<40} {time.monotonic() - started:8.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="time a debootstrap build from scratch")
    options = parser.parse_args()
    if options.cold:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as cache:
            os.environ["LOGSITE_TEST_CACHE"] = cache
            tree = timed("debootstrap python rootfs (cold)", rootfs.ensure_rootfs)
            print(f"{'  rootfs size':<40} {_size_mb(tree):8.0f} MB")
            os.environ.pop("LOGSITE_TEST_CACHE")
    tree = timed("python rootfs (cached or built)", rootfs.ensure_rootfs)
    daemon = Dockerd()
    timed("dockerd start until `docker info`", daemon.start)
    try:
        tag = timed("import busybox image", daemon.import_busybox)
        timed("docker run busybox echo", daemon.run, tag, "echo", "hi")
        timed("import python rootfs as image", daemon.import_rootfs, "bench-python:1", tree)
        files = {"bench.py": ACTIVATE_ONLY}
        timed("plugin create (python rootfs)", daemon.create_plugin, "bench:1", PLUGIN_CONFIG, tree, files)
        timed("docker plugin enable", daemon.enable_plugin, "bench:1")
    finally:
        timed("stop and clean up", daemon.stop)


def _size_mb(tree: Path) -> float:
    total = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


if __name__ == "__main__":
    if shutil.which("dockerd") is None:
        raise SystemExit("dockerd missing: run scripts/install-system-packages")
    main()
