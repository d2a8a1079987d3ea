"""The harness itself: a real dockerd, its json-file and syslog drivers, a managed plugin, cleanup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import cleanup
from tests.e2e.dockerd import Dockerd, DockerdError, reap_abandoned

pytestmark = pytest.mark.e2e

# A log-driver plugin small enough to read at a glance: it answers the plugin API and relays each
# raw frame from dockerd's fifo (length prefix removed) as one UDP datagram to 127.0.0.1:FWD_PORT.
RELAY_PLUGIN = b"""
import json, os, signal, socket, struct, sys, threading
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingUnixStreamServer

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
PORT = int(os.environ["FWD_PORT"])

def relay(path):
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with open(path, "rb") as fifo:
        while len(head := fifo.read(4)) == 4:
            out.sendto(fifo.read(struct.unpack(">I", head)[0]), ("127.0.0.1", PORT))

class Api(BaseHTTPRequestHandler):
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        if self.path == "/Plugin.Activate":
            answer = {"Implements": ["LogDriver"]}
        elif self.path == "/LogDriver.StartLogging":
            threading.Thread(target=relay, args=(request["File"],), daemon=True).start()
            answer = {}
        else:
            answer = {}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # the default one fails on a unix socket's empty peer address
        pass

os.makedirs("/run/docker/plugins", exist_ok=True)
ThreadingUnixStreamServer("/run/docker/plugins/relay.sock", Api).serve_forever()
"""

RELAY_CONFIG = {
    "description": "Logsite e2e relay plugin",
    "documentation": "tests/e2e/test_dockerd_harness.py",
    "entrypoint": ["/usr/bin/python3", "/relay.py"],
    "interface": {"types": ["docker.logdriver/1.0"], "socket": "relay.sock"},
    "network": {"type": "host"},
    "env": [{"name": "FWD_PORT", "settable": ["value"], "value": "0"}],
}


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(60)  # a bound on waiting, not a speed assertion
    yield sock
    sock.close()


def receive_until(sock: socket.socket, *markers: bytes) -> list[bytes]:
    """Datagrams received until each marker has appeared in one of them (or the timeout fails)."""
    datagrams: list[bytes] = []
    while not all(any(m in d for d in datagrams) for m in markers):
        datagrams.append(sock.recv(65535))
    return datagrams


def test_it_runs_a_container_and_serves_its_json_file_logs(dockerd: Dockerd, busybox_image: str):
    script = "echo out-1; echo err-1 >&2; seq 3; printf 'no-newline' >&2"
    result = dockerd.run(busybox_image, "sh", "-c", script)

    assert result.returncode == 0
    assert len(result.container_id) == 64
    logs = dockerd.logs(result.container_id)
    assert logs.stdout == b"out-1\n1\n2\n3\n"
    assert logs.stderr == b"err-1\nno-newline"  # a last line without a newline stays without one
    assert dockerd.inspect(result.container_id)["HostConfig"]["LogConfig"]["Type"] == "json-file"


def test_it_ships_syslog_datagrams_from_the_daemon_to_loopback(
    dockerd: Dockerd, busybox_image: str, udp_listener: socket.socket
):
    port = udp_listener.getsockname()[1]
    marker = f"syslog-{uuid.uuid4().hex}"
    dockerd.run(
        busybox_image,
        "echo",
        marker,
        name=f"sys-{marker[-8:]}",
        log_driver="syslog",
        log_opts={
            "syslog-address": f"udp://127.0.0.1:{port}",
            "syslog-format": "rfc5424",
            "tag": "{{.Name}}",
        },
    )

    datagrams = receive_until(udp_listener, marker.encode())
    line = next(d for d in datagrams if marker.encode() in d)
    assert line.startswith(b"<30>1 ")  # facility daemon (3) * 8 + severity info (6), version 1
    assert f"sys-{marker[-8:]}".encode() in line


def test_it_gives_host_network_containers_the_host_loopback(dockerd: Dockerd, busybox_image: str):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(60)
    marker = f"tcp-{uuid.uuid4().hex}"

    with server:
        port = server.getsockname()[1]
        # Detached: busybox nc only exits once the server closes the connection.
        client = dockerd.run(
            busybox_image, "sh", "-c", f"echo {marker} | nc 127.0.0.1 {port}", network="host", detach=True
        )
        connection, _ = server.accept()
        with connection:
            assert connection.makefile("rb").readline() == f"{marker}\n".encode()
    assert dockerd.wait(client.container_id) == 0


def test_it_runs_a_python_log_driver_plugin_built_from_the_cached_rootfs(
    dockerd: Dockerd, busybox_image: str, python_rootfs: Path, udp_listener: socket.socket
):
    name = f"logsite-relay-{uuid.uuid4().hex[:8]}:e2e"
    dockerd.create_plugin(name, RELAY_CONFIG, python_rootfs, {"relay.py": RELAY_PLUGIN})
    dockerd.enable_plugin(name, {"FWD_PORT": str(udp_listener.getsockname()[1])})
    marker = f"plugin-{uuid.uuid4().hex}"

    script = f"echo {marker}-out; echo {marker}-err >&2"
    result = dockerd.run(busybox_image, "sh", "-c", script, log_driver=name)

    assert result.stdout == f"{marker}-out\n".encode()  # attaching still works with a plugin driver
    frames = receive_until(udp_listener, f"{marker}-out".encode(), f"{marker}-err".encode())
    assert any(f"{marker}-out".encode() in f and b"stdout" in f for f in frames)
    assert any(f"{marker}-err".encode() in f and b"stderr" in f for f in frames)
    assert not (python_rootfs / "relay.py").exists()  # the shared cache was not written to


def test_it_fails_loudly_with_the_daemon_log_when_dockerd_cannot_start():
    daemon = Dockerd(extra_args=["--storage-driver=no-such-driver"])

    with pytest.raises(DockerdError, match="no-such-driver"):
        daemon.start()

    assert not daemon.root.exists()
    assert cleanup.pids_with_cmdline_containing(f"{daemon.root}/") == []


def test_it_leaves_no_process_mount_or_cgroup_behind_after_stop():
    daemon = Dockerd().start()
    daemon.import_busybox()
    running = daemon.run("logsite-busybox:e2e", "sleep", "1000", detach=True)
    assert daemon.inspect(running.container_id)["State"]["Running"]
    assert cleanup.mounts_under(daemon.root)
    assert cleanup.cgroup_dirs(daemon.cgroup_parent)

    daemon.stop()

    assert cleanup.pids_with_cmdline_containing(f"{daemon.root}/") == []
    assert cleanup.pids_with_cmdline_containing(running.container_id) == []
    assert cleanup.mounts_under(daemon.root) == []
    assert cleanup.cgroup_dirs(daemon.cgroup_parent) == []
    assert not daemon.root.exists()


def test_it_reaps_a_daemon_whose_test_process_was_killed():
    # The child plays a test session that dies from SIGKILL (no finalizers) with a container running.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tests.e2e.dockerd import Dockerd\n"
            "d = Dockerd().start()\n"
            "d.run(d.import_busybox(), 'sleep', '1000', detach=True)\n"
            "print(d.root, flush=True)\n"
            "import time; time.sleep(1000)\n",
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None
    root = Path(child.stdout.readline().decode().strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    orphan = Dockerd(root)
    assert cleanup.pids_with_cmdline_containing(f"{root}/")

    assert root in reap_abandoned()

    assert cleanup.pids_with_cmdline_containing(f"{root}/") == []
    assert cleanup.pids_with_cmdline_containing(orphan.namespace) == []
    assert cleanup.mounts_under(root) == []
    assert cleanup.cgroup_dirs(orphan.cgroup_parent) == []
    assert not root.exists()
