import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.driver.dockerd_peer import DockerdFifo, call, info
from tests.driver.logsite_peer import LogsitePeer

REPO = Path(__file__).resolve().parents[2]


class PluginProcess:
    """`python -m driver` as its own process, the way the plugin runs inside its rootfs."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        # A unix socket path must stay under ~108 bytes; pytest's tmp paths can be longer.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="lsp-"))
        self.socket = self.socket_dir / "logsite.sock"
        self.state_dir = workdir / "state"
        self.log_path = workdir / "plugin.log"
        self.env = {
            **os.environ,
            "LOGSITE_PLUGIN_SOCKET": str(self.socket),
            "LOGSITE_STATE_DIR": str(self.state_dir),
            "LOGSITE_RETRY_MAX_SECONDS": "0.5",
            "LOGSITE_FOLLOW_POLL_SECONDS": "0.1",
            "LOGSITE_HOST": "node-1",
            "LOG_LEVEL": "DEBUG",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driver"], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        give_up = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"plugin exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket))
                return
            except OSError:
                if time.monotonic() > give_up:
                    raise AssertionError(f"plugin socket never came up:\n{self.log()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"plugin ignored SIGTERM:\n{self.log()}") from None
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def call(self, method, body=None):
        return call(self.socket, method, body)

    def streams(self) -> list[Path]:
        d = self.state_dir / "streams"
        return sorted(d.iterdir()) if d.is_dir() else []


@pytest.fixture
def logsite():
    peer = LogsitePeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def plugin_env(logsite):
    """Plugin-wide settings, as `docker plugin set` would give them."""
    return {"LOGSITE_URL": logsite.url, "LOGSITE_TOKEN": logsite.token}


@pytest.fixture
def plugin(tmp_path, plugin_env):
    p = PluginProcess(tmp_path, plugin_env)
    p.start()
    yield p
    p.stop()
    shutil.rmtree(p.socket_dir, ignore_errors=True)
    if any(w in p.log() for w in ("Traceback", "Task exception was never retrieved")):
        raise AssertionError(f"plugin logged an unexpected exception:\n{p.log()}")


class Container:
    """One container's logging session as dockerd drives it."""

    def __init__(self, plugin: PluginProcess, directory: Path, opts=None, **info_fields) -> None:
        self.plugin = plugin
        self.fifo = DockerdFifo(directory)
        self.info = info(opts=opts, **info_fields)
        self.id = self.info["ContainerID"]

    def start(self) -> dict:
        status, answer = self.plugin.call(
            "LogDriver.StartLogging", {"File": str(self.fifo.path), "Info": self.info}
        )
        assert status == 200
        return answer

    def stop(self) -> None:
        status, answer = self.plugin.call("LogDriver.StopLogging", {"File": str(self.fifo.path)})
        assert (status, answer) == (200, {"Err": ""})


@pytest.fixture
def container(plugin, tmp_path):
    made = []

    def make(opts=None, **info_fields) -> Container:
        c = Container(plugin, tmp_path, opts, **info_fields)
        made.append(c)
        return c

    yield make
    for c in made:
        c.fifo.close()
