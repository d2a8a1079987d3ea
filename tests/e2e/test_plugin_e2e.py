"""The Logsite logging plugin under a real dockerd, shipping to a real ingest and read API.

The plugin is built and installed once per module by driver/build_plugin.py itself (debootstrap
rootfs from the machine's mirror, cached; `docker plugin create`, `set`, `enable`). Each test
gets its own plugin-kind driver row (same bind address and token, so the installed plugin's
settings stay valid), a `manage.py ingest` serving it, and the web server for `docker logs`.
Timings are printed (run with -s to see them), never asserted.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.db import connection

from driver.timefmt import format_rfc3339_ns, parse_rfc3339_ns
from ingest.models import Container, Driver, Tenant, hash_token
from tests.e2e import bursts, rootfs
from tests.e2e.dockerd import Dockerd
from tests.support.processes import IngestProcess, WebProcess

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "logsite"
BURST_LINES = 100_000
WAIT_S = 300  # a bound on waiting for rows, not a speed assertion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    token: str
    push_port: int
    web_port: int
    build_seconds: float


@pytest.fixture(scope="module")
def logsite_plugin(dockerd: Dockerd) -> InstalledPlugin:
    """driver/build_plugin.py run as a user would, against the test dockerd."""
    token = "lgs_" + secrets.token_urlsafe(24)
    push_port, web_port = free_port(), free_port()
    argv = [
        sys.executable,
        str(REPO / "driver" / "build_plugin.py"),
        *("-H", dockerd.host, "--name", PLUGIN, "--cache-dir", str(rootfs.cache_dir())),
        *("--url", f"http://127.0.0.1:{push_port}", "--read-url", f"http://127.0.0.1:{web_port}"),
        # Short retry and poll periods keep the test quick; the defaults are 30 s and 1 s.
        *("--set", "LOGSITE_RETRY_MAX_SECONDS=1", "--set", "LOGSITE_FOLLOW_POLL_SECONDS=0.2"),
    ]
    started = time.monotonic()
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=1800, env={**dockerd._cli_env, "LOGSITE_TOKEN": token}
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{dockerd.log_tail()}"
    seconds = time.monotonic() - started
    print(f"\nplugin built and enabled by driver/build_plugin.py in {seconds:.1f} s")
    plugin = dockerd.inspect(PLUGIN)
    assert plugin["Enabled"] is True
    assert plugin["Config"]["Network"]["Type"] == "host"  # so it reaches Logsite on 127.0.0.1
    return InstalledPlugin(PLUGIN, token, push_port, web_port, seconds)


@dataclass
class Logsite:
    driver: Driver
    driver_token: str
    tenant: Tenant
    start_ingest: Callable[[], IngestProcess]
    ingest: IngestProcess
    web: WebProcess

    def restart_ingest(self) -> IngestProcess:
        self.ingest = self.start_ingest()
        return self.ingest


@pytest.fixture
def logsite(logsite_plugin: InstalledPlugin, ingest, tmp_path: Path) -> Iterator[Logsite]:
    tenant = Tenant.objects.create(slug="e2e", name="E2E")
    driver = Driver(
        name="docker-plugin", kind="plugin", bind=f"127.0.0.1:{logsite_plugin.push_port}", tenant=tenant
    )
    # The installed plugin holds this token; the row gets its hash, as the admin would store it.
    driver.token_hash = hash_token(logsite_plugin.token)
    driver.save()

    def start() -> IngestProcess:
        # Same tmp_path and writer name each time, so a restarted ingest replays its spool.
        return ingest([driver.id], writer="plugin-e2e")

    web = WebProcess(tmp_path, logsite_plugin.web_port).start()
    try:
        yield Logsite(driver, logsite_plugin.token, tenant, start, start(), web)
    finally:
        web.stop()


# --- helpers --------------------------------------------------------------------------------


def rows(container_id: str) -> list[dict]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT l.id, (extract(epoch FROM l.ts) * 1000000)::bigint * 1000 + l.ts_ns AS ts_ns, "
            "l.stream, l.flags, l.line, l.attrs FROM logs l JOIN containers c ON c.id = l.ckey "
            "WHERE c.container_id = %s ORDER BY l.id",
            [container_id],
        )
        cols = [c.name for c in cur.description]
        found = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    for row in found:  # Django's cursor hands jsonb over as text
        row["attrs"] = json.loads(row["attrs"]) if row["attrs"] is not None else None
    return found


def stored_count(container_id: str) -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM logs l JOIN containers c ON c.id = l.ckey WHERE c.container_id = %s",
            [container_id],
        )
        return cur.fetchone()[0]


def wait_for_rows(container_id: str, count: int, dockerd: Dockerd, logsite: Logsite) -> float:
    """Seconds until at least `count` rows of the container are in Postgres."""
    started = time.monotonic()
    while (stored := stored_count(container_id)) < count:
        if time.monotonic() - started > WAIT_S:
            raise AssertionError(
                f"{stored} of {count} rows after {WAIT_S}s\n--- dockerd and plugin:\n{dockerd.log_tail(80)}"
                f"\n--- ingest:\n{logsite.ingest.log_tail()}"
            )
        time.sleep(0.2)
    return time.monotonic() - started


def elapsed_from(stored: list[dict]) -> float:
    (timing,) = [r["line"] for r in stored if bursts.is_timing(r["line"])]
    return bursts.elapsed(timing)


def run_burst(dockerd: Dockerd, image: str, tag: str, **script) -> str:
    container = dockerd.run(
        image, "sh", "-c", bursts.script(BURST_LINES, tag, **script), log_driver=PLUGIN, detach=True
    )
    assert dockerd.wait(container.container_id, timeout=WAIT_S) == 0
    return container.container_id


# --- tests ----------------------------------------------------------------------------------


def test_it_ships_short_long_and_stderr_lines_with_the_containers_metadata(
    dockerd: Dockerd, busybox_image: str, logsite: Logsite
):
    script = (
        "echo short-1; echo err-1 >&2; "
        "head -c 102400 /dev/zero | tr '\\0' a; echo; "  # 100 KiB: dockerd sends 7 fragments
        "head -c 32768 /dev/zero | tr '\\0' b; echo; "  # a multiple of 16 KiB: empty last fragment
        "echo err-2 >&2; echo short-2; printf no-newline-at-exit"
    )
    before = time.time_ns()
    container = dockerd.run(
        busybox_image,
        "sh",
        "-c",
        script,
        name="shop-web-1",
        log_driver=PLUGIN,
        log_opts={"labels": "team,tier", "env": "RELEASE"},
        env={"SERVICE_ID": "shop", "RELEASE": "2.1", "SECRET": "not-shipped"},
        labels={"team": "core", "tier": "web", "internal": "not-shipped"},
    )
    after = time.time_ns()

    wait_for_rows(container.container_id, 7, dockerd, logsite)
    stored = rows(container.container_id)
    stdout = [r["line"] for r in stored if r["stream"] == 1]
    stderr = [r["line"] for r in stored if r["stream"] == 2]
    assert stdout == ["short-1", "a" * 102400, "b" * 32768, "short-2", "no-newline-at-exit"]
    assert stderr == ["err-1", "err-2"]
    assert all(r["flags"] == 0 for r in stored)  # whole lines: nothing truncated or replaced
    assert all(before <= r["ts_ns"] <= after for r in stored)  # dockerd's time, not the send time
    env = {"env": {"RELEASE": "2.1"}}
    # dockerd sends the bytes left at exit as a fragment that never gets its last one.
    assert {r["line"][:20]: r["attrs"] for r in stored} == {
        **{line[:20]: env for line in [*stdout[:-1], *stderr]},
        "no-newline-at-exit": {**env, "partial_incomplete": True},
    }
    (meta,) = Container.objects.filter(container_id=container.container_id).values(
        "tenant", "service", "container_id", "name", "image", "labels", "driver_id", "host"
    )
    assert meta == {
        "tenant": "e2e",
        "service": "shop",
        "container_id": container.container_id,
        "name": "shop-web-1",
        "image": busybox_image,
        "labels": {"team": "core", "tier": "web"},
        "driver_id": logsite.driver.id,
        "host": socket.gethostname(),
    }


def test_it_refuses_to_start_a_container_with_an_unknown_log_option(
    dockerd: Dockerd, busybox_image: str, logsite_plugin: InstalledPlugin
):
    result = dockerd.run(
        busybox_image, "echo", "never", log_driver=PLUGIN, log_opts={"no-such-opt": "1"}, check=False
    )

    assert result.returncode != 0
    assert b"unknown log-opt no-such-opt" in result.stderr


def test_it_stores_a_burst_and_the_container_writes_as_fast_with_logsite_down(
    dockerd: Dockerd, busybox_image: str, logsite: Logsite
):
    up = run_burst(dockerd, busybox_image, "up")
    wait_for_rows(up, BURST_LINES + 1, dockerd, logsite)
    stored_up = rows(up)
    assert [r["line"] for r in stored_up[:-1]] == bursts.expected("up", BURST_LINES)  # all, in order, once

    logsite.ingest.stop()
    down = run_burst(dockerd, busybox_image, "down")  # completes: the container never waits
    assert stored_count(down) == 0
    logsite.restart_ingest()
    replay = wait_for_rows(down, BURST_LINES + 1, dockerd, logsite)
    stored_down = rows(down)
    assert [r["line"] for r in stored_down[:-1]] == bursts.expected("down", BURST_LINES)

    up_s, down_s = elapsed_from(stored_up), elapsed_from(stored_down)
    print(
        f"\ncontainer wrote {BURST_LINES} lines in {up_s:.2f} s with Logsite up "
        f"({BURST_LINES / max(up_s, 0.01):,.0f} lines/s) and in {down_s:.2f} s with Logsite down "
        f"({BURST_LINES / max(down_s, 0.01):,.0f} lines/s); the buffered lines reached Postgres "
        f"{replay:.1f} s after ingest was started again"
    )


def test_it_loses_nothing_when_ingest_stops_during_a_burst(
    dockerd: Dockerd, busybox_image: str, logsite: Logsite
):
    script = bursts.script(BURST_LINES, "outage", rounds=20, pause=0.25)
    container = dockerd.run(busybox_image, "sh", "-c", script, log_driver=PLUGIN, detach=True)
    wait_for_rows(container.container_id, 1, dockerd, logsite)

    logsite.ingest.stop()
    assert dockerd.wait(container.container_id, timeout=WAIT_S) == 0
    stored_before_restart = stored_count(container.container_id)
    assert stored_before_restart < BURST_LINES  # ingest really was down for part of the burst
    logsite.restart_ingest()
    wait_for_rows(container.container_id, BURST_LINES + 1, dockerd, logsite)

    lines = [r["line"] for r in rows(container.container_id) if not bursts.is_timing(r["line"])]
    assert sorted(set(lines)) == bursts.expected("outage", BURST_LINES)
    print(
        f"\n{stored_before_restart} of {BURST_LINES} lines were stored before ingest stopped; "
        f"after the restart all arrived ({len(lines) - len(set(lines))} of them twice)"
    )


def test_it_answers_docker_logs_from_logsite(dockerd: Dockerd, busybox_image: str, logsite: Logsite):
    script = (
        "for i in 1 2 3 4 5; do echo early-$i; done; echo oops >&2; sleep 1.5; "
        "for i in 1 2 3 4 5; do echo late-$i; done"
    )
    done = dockerd.run(busybox_image, "sh", "-c", script, log_driver=PLUGIN)
    wait_for_rows(done.container_id, 11, dockerd, logsite)
    stored = rows(done.container_id)
    ts_of = {r["line"]: r["ts_ns"] for r in stored}

    everything = dockerd.logs(done.container_id)
    assert everything.stdout.decode().split() == [f"early-{i}" for i in range(1, 6)] + [
        f"late-{i}" for i in range(1, 6)
    ]
    assert everything.stderr == b"oops\n"
    assert dockerd.logs(done.container_id, "--tail", "3").stdout == b"late-3\nlate-4\nlate-5\n"
    since = dockerd.logs(done.container_id, "--timestamps", "--since", format_rfc3339_ns(ts_of["late-1"]))
    assert [line.split(" ", 1)[1] for line in since.stdout.decode().splitlines()] == [
        f"late-{i}" for i in range(1, 6)
    ]
    # The timestamps are the lines' own, as stored: dockerd's, to the nanosecond.
    for line in since.stdout.decode().splitlines():
        ts, text = line.split(" ", 1)
        assert parse_rfc3339_ns(ts) == ts_of[text]
    until = dockerd.logs(done.container_id, "--until", format_rfc3339_ns(ts_of["early-5"]))
    assert until.stdout.decode().split() == [f"early-{i}" for i in range(1, 6)]

    # -f on a running container: the lines so far, then each new one, and it ends with the container.
    running = dockerd.run(
        busybox_image,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do echo follow-$i; sleep 0.4; done",
        log_driver=PLUGIN,
        detach=True,
    )
    wait_for_rows(running.container_id, 1, dockerd, logsite)
    followed = dockerd.docker("logs", "--follow", running.container_id, timeout=120)
    assert followed.stdout.decode().split() == [f"follow-{i}" for i in range(1, 9)]
    assert dockerd.inspect(running.container_id)["State"]["Running"] is False

    # Once the container is removed dockerd has nothing to ask the plugin about, but the lines
    # stay in Logsite and its read API (what the plugin calls) still serves them.
    dockerd.docker("rm", done.container_id)
    gone = dockerd.docker("logs", done.container_id, check=False)
    assert gone.returncode != 0
    assert b"No such container" in gone.stderr
    api = requests.get(
        f"{logsite.web.url}/api/v1/containers/{done.container_id}/logs",
        params={"tail": 2},
        headers={"Authorization": f"Bearer {logsite.driver_token}"},
        timeout=30,
    )
    assert api.status_code == 200
    assert [json.loads(line)["line"] for line in api.text.splitlines()] == ["late-4", "late-5"]

    # Proof that `docker logs` reads Logsite, not a local copy: without the web server it fails.
    logsite.web.stop()
    offline = dockerd.docker("logs", running.container_id, check=False)
    assert offline.returncode != 0
    assert b"cannot reach Logsite" in offline.stderr
