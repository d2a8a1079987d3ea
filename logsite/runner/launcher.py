"""`manage.py run`, step by step.

1. Lock the data directory (one `run` per installation).
2. Start the embedded Postgres and Redis for whichever of DATABASE_URL and REDIS_URL is not set.
3. Migrate, and make sure a superuser exists.
4. Start web, ingest, the Celery worker and beat; print where to open Logsite once web answers.
5. On SIGTERM/SIGINT/SIGHUP: stop web, ingest, worker and beat together and wait for them
   (ingest drains), then stop the embedded Redis and Postgres. A second signal kills at once.
"""

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from django.conf import settings

from logsite.runner import RunError
from logsite.runner.app_processes import app_specs
from logsite.runner.embedded_pg import EmbeddedPostgres
from logsite.runner.embedded_redis import EmbeddedRedis
from logsite.runner.privileges import die_with_parent
from logsite.runner.supervisor import Child, Supervisor, describe_exit

SERVICE_STOP_TIMEOUT_S = 60.0
WEB_READY_TIMEOUT_S = 60.0
SETUP_ENV_NAMES = ("DATABASE_URL", "REDIS_URL")


def is_configured(name: str) -> bool:
    return bool(os.environ.get(name) or os.environ.get(name + "_FILE"))


@dataclass
class WebAddress:
    host: str
    port: int

    @property
    def local_host(self) -> str:
        """Where this machine reaches the listener (a wildcard bind is reached on loopback)."""
        if self.host in ("", "0.0.0.0"):
            return "127.0.0.1"
        if self.host == "::":
            return "::1"
        return self.host

    @property
    def url(self) -> str:
        host = self.local_host
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"


class Launcher:
    def __init__(self, data_dir: Path, web: WebAddress, stop_timeout: float, out: TextIO = sys.stdout):
        self.data_dir = data_dir
        self.web = web
        self.stop_timeout = stop_timeout
        self.supervisor = Supervisor(out)
        self.services: list[Child] = []  # embedded Postgres and Redis: stopped last
        self.embedded: dict[str, EmbeddedPostgres | EmbeddedRedis] = {}
        self.signals = 0
        self.started_at = time.monotonic()

    def note(self, text: str) -> None:
        self.supervisor.note(text)

    async def run(self) -> int:
        self.stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        lock = self._lock_data_dir()
        try:
            return await self._run()
        finally:
            lock.close()

    async def _run(self) -> int:
        startup = asyncio.create_task(self._start())
        stop = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        if not startup.done():
            startup.cancel()
        try:
            await startup
        except asyncio.CancelledError:
            pass
        except RunError as e:
            self.note(f"cannot start: {e}")
            status = 1
        except Exception:
            self.note("cannot start:\n" + traceback.format_exc())
            status = 1
        else:
            await stop
        stop.cancel()
        await self._stop()
        return status

    def _on_signal(self, signum: int) -> None:
        self.signals += 1
        if self.signals == 1:
            self.note(f"{signal.Signals(signum).name}: stopping (send it again to kill everything at once)")
            self.stop_requested.set()
            return
        self.note(f"{signal.Signals(signum).name} again: killing every process")
        for child in self.supervisor.children:
            child.stop_requested.set()  # killed on purpose: not to be restarted
            self.supervisor.kill(child)

    def _lock_data_dir(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / "run.lock", "w")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunError(f"another `manage.py run` is using {self.data_dir}") from None
        return handle

    # --- start --------------------------------------------------------------------------------
    async def _start(self) -> None:
        env = dict(os.environ)
        env.update({"PYTHONUNBUFFERED": "1", "LOGSITE_DATA_DIR": str(self.data_dir)})
        if not is_configured("DATABASE_URL"):
            pg = EmbeddedPostgres(self.data_dir)
            env["DATABASE_URL"] = await self._start_embedded(pg, env)
            if await pg.ensure_database():
                self.note("created the logsite database")
        if not is_configured("REDIS_URL"):
            env["REDIS_URL"] = await self._start_embedded(EmbeddedRedis(self.data_dir), env)
        admin = await self._setup(env)
        apps = {}
        for spec in app_specs(env, self.web.host, self.web.port):
            apps[spec.name] = await self.supervisor.start(spec)
        status = await self._wait_web(apps["web"])
        self._banner(env, admin, status)

    async def _start_embedded(self, service: EmbeddedPostgres | EmbeddedRedis, env: dict[str, str]) -> str:
        for line in await asyncio.to_thread(service.prepare):
            self.note(line)
        child = await self.supervisor.start(service.spec(dict(env)))
        self.services.append(child)
        await service.wait_ready(child)
        self.embedded[service.name] = service
        return service.url

    async def _setup(self, env: dict[str, str]) -> dict:
        """`manage.py setup`: migrations and the first superuser; returns the superuser result."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "setup",
            "--json",
            env=env,
            cwd=str(settings.BASE_DIR),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        self.note(f"setup started (pid {proc.pid}): migrations, first superuser")
        try:
            progress = asyncio.create_task(self.supervisor.pump("setup", proc.stderr))
            out = await proc.stdout.read()
            await proc.wait()
            await progress
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RunError(f"setup failed ({describe_exit(proc.returncode)}); see its output above")
        return json.loads(out.decode().strip().splitlines()[-1])

    async def _wait_web(self, web: Child) -> str:
        """Wait until web answers HTTP; returns its status line for /healthz."""
        deadline = time.monotonic() + WEB_READY_TIMEOUT_S
        while True:
            if web.restarts or not web.running:
                raise RunError("web stopped during start-up (is the port in use?); its output above says why")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
                return await asyncio.wait_for(self._get_healthz(), 5)
            if time.monotonic() > deadline:
                raise RunError(f"web did not answer on {self.web.url} within {WEB_READY_TIMEOUT_S:.0f}s")
            await asyncio.sleep(0.2)

    async def _get_healthz(self) -> str:
        reader, writer = await asyncio.open_connection(self.web.local_host, self.web.port)
        try:
            host = f"[{self.web.local_host}]" if ":" in self.web.local_host else self.web.local_host
            writer.write(f"GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            status = (await reader.readuntil(b"\r\n")).decode("latin-1").strip()
        finally:
            writer.close()
        if not status.startswith("HTTP/"):
            raise OSError(f"not an HTTP answer: {status!r}")
        return status

    def _banner(self, env: dict[str, str], admin: dict, healthz_status: str) -> None:
        url = self.web.url
        lines = [f"Logsite is running ({time.monotonic() - self.started_at:.1f}s to start)."]
        lines.append(f"  open      {url}   (admin: {url}admin/)")
        if self.web.host in ("", "0.0.0.0", "::"):
            lines.append(f"            listening on all interfaces, port {self.web.port}")
            if not os.environ.get("LOGSITE_ALLOWED_HOSTS"):
                lines.append("            set LOGSITE_ALLOWED_HOSTS to the names other machines use for it")
        if admin["password"]:
            lines.append(f"  login     {admin['username']} / {admin['password']}")
            lines.append("            (generated now and shown only this once; only its hash is stored)")
        elif admin["created"]:
            lines.append(f"  login     {admin['username']} with LOGSITE_ADMIN_PASSWORD")
        else:
            lines.append(f"  login     {admin['username']} (existing superuser; a lost password is reset")
            lines.append(f"            with `manage.py changepassword {admin['username']}`)")
        if " 200 " not in f"{healthz_status} ":
            lines.append(f"  warning   /healthz answered {healthz_status!r}: check LOGSITE_ALLOWED_HOSTS")
        lines.append(f"  data      {self.data_dir}")
        for name in ("postgres", "redis"):
            where = "embedded, " + str(self.embedded[name].url) if name in self.embedded else "external"
            lines.append(f"  {name:<9} {where}")
        if self.embedded:
            # Embedded URLs carry no secrets; external ones may, so they are never echoed.
            exports = " ".join(
                f"{name}='{env[name]}'" for name in SETUP_ENV_NAMES if name in env and not is_configured(name)
            )
            lines.append("  other manage.py commands against this instance need:")
            lines.append(f"    export {exports}")
        lines.append("  stop with Ctrl-C or SIGTERM")
        self.note("\n".join(lines))

    # --- stop ---------------------------------------------------------------------------------
    async def _stop(self) -> None:
        apps = [c for c in self.supervisor.children if c not in self.services]
        if any(c.running or not c.exited.is_set() for c in apps):
            self.note("stopping " + ", ".join(c.spec.name for c in apps if not c.exited.is_set()))
            await self.supervisor.stop_all(apps, self.stop_timeout)
        if self.services:
            self.note("stopping the embedded " + " and ".join(c.spec.name for c in self.services))
            await self.supervisor.stop_all(self.services, SERVICE_STOP_TIMEOUT_S)
        self.note("stopped")
