"""The ASGI app (pages + websockets) served by uvicorn in a subprocess on the test database,
and Debian's Chromium through Playwright (never a downloaded browser)."""

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import REPO, child_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"
UVICORN = [sys.executable, "-m", "uvicorn", "logsite.asgi:application", "--host", "127.0.0.1"]
UVICORN += ["--log-level", "warning"]


class WebProcess:
    def __init__(self, tmp_path: Path, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = tmp_path / "web.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "WebProcess":
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [*UVICORN, "--port", str(self.port)],
            cwd=REPO,
            env=child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web server exited:\n{self.log_tail()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"web server did not answer in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log_tail(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
        return ""


@pytest.fixture
def web(tmp_path, pusher, unused_tcp_port):
    server = WebProcess(tmp_path, unused_tcp_port).start()
    yield server
    server.stop()


def launch_chromium(playwright):
    """Chromium or a failed test that says why (a browser test never skips)."""
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as e:
        pytest.fail(f"cannot start {CHROMIUM}: {e}")


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form [type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
