import subprocess
import sys
import time

import pytest
import requests

from tests.support.processes import REPO, child_env


@pytest.fixture
def server(unused_tcp_port, tmp_path):
    log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "logsite.asgi:application", "--port", str(unused_tcp_port)],
        cwd=REPO,
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{unused_tcp_port}"
    for _ in range(300):
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError((tmp_path / "uvicorn.log").read_text())
    yield url, proc
    proc.terminate()
    proc.wait(30)
