"""`bin/logsite tail` (python -m cli tail) against uvicorn and a real ingest process, with an API token."""

import subprocess
import sys
import threading
import time

import pytest

from cli.tail import safe_text, ws_url
from tests.search.tail.support import token_for
from tests.support.processes import REPO

pytestmark = pytest.mark.django_db(transaction=True)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", "tail", *args]


def test_it_prints_recent_lines_and_exits(web, pusher, actors):
    pusher.push_sync("tenant-a", [f"cli {i}" for i in range(8)], stream="stderr")
    pusher.push_sync("tenant-b", ["not for alice"])
    token = token_for(actors.alice)
    done = subprocess.run(
        cli("--url", web.url, "--token", token, "--recent", "5", "--json"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    import json

    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["line"] for r in records] == [f"cli {i}" for i in range(3, 8)]
    assert {(r["container"], r["tenant"], r["stream"]) for r in records} == {("web-1", "tenant-a", "stderr")}


def test_it_follows_live_lines(web, pusher, actors):
    token = token_for(actors.alice)
    proc = subprocess.Popen(
        cli('"follow me"', "-f", "--url", web.url, "--token", token, "--recent", "0"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        time.sleep(2)  # the subscription is in place (and anything sent before is not "new")
        pusher.push_sync("tenant-a", ["follow me 1", "not me", "\x1b]0;title\x07follow me 2"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(got) < 2:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    assert [line.split(" ", 3)[3].rstrip("\n") for line in got] == ["follow me 1", "follow me 2"]


def test_it_refuses_a_wrong_token(web):
    done = subprocess.run(
        cli("--url", web.url, "--token", "lsu_wrong"), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3
    assert "refused" in done.stderr


def test_it_reports_a_bad_query(web, actors):
    done = subprocess.run(
        cli("level>=loud", "--url", web.url, "--token", token_for(actors.alice)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "at character 8" in done.stderr


def test_it_keeps_colours_but_no_other_terminal_control():
    assert (
        safe_text("\x1b[31mred\x1b[0m\x1b]0;pwned\x07 \x1b[2Jok\x07", colours=True)
        == "\x1b[31mred\x1b[0m ok\x1b[0m"
    )
    assert safe_text("\x1b[31mred\x1b[0m\r\x08x", colours=False) == "redx"
    assert ws_url("https://logs.example/base/") == (
        "wss://logs.example/base/ws/tail/",
        "https://logs.example",
    )
