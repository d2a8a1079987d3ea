"""One supervisor for a set of child processes.

Each child's stdout and stderr are merged and printed line by line behind its name. A child that
dies unexpectedly is restarted after a delay that doubles up to RESTART_DELAY_MAX_S. Stopping sends
the child its own stop signal, waits, and only then kills; whatever the child left in its process
group is killed too, so a stopped supervisor leaves nothing behind.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from logsite.runner import RunError
from logsite.runner.privileges import die_with_parent

RESTART_DELAY_FIRST_S = 1.0
RESTART_DELAY_MAX_S = 30.0
# A child that stayed up this long was healthy: its next failure starts the backoff over.
STABLE_AFTER_S = 60.0
READ_CHUNK = 65536
# Longer output lines are printed in pieces instead of buffering without bound.
MAX_LINE_BYTES = 65536
SUPERVISOR_NAME = "run"


@dataclass
class Spec:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    stop_signal: int = signal.SIGTERM
    restart: bool = True
    # Run as another account (the embedded Postgres when we are root).
    uid: int | None = None
    gid: int | None = None


@dataclass
class Child:
    spec: Spec
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    returncode: int | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task | None = None
    pump: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Supervisor:
    def __init__(self, out: TextIO = sys.stdout, name_width: int = 8):
        self.out = out
        self.name_width = name_width
        self.children: list[Child] = []

    def say(self, name: str, text: str) -> None:
        for line in text.splitlines() or [""]:
            try:
                self.out.write(f"{name:>{self.name_width}} | {line}\n")
                self.out.flush()
            except (OSError, ValueError):  # our own stdout is gone; the children must still be stopped
                pass

    def note(self, text: str) -> None:
        self.say(SUPERVISOR_NAME, text)

    async def start(self, spec: Spec) -> Child:
        child = Child(spec)
        try:
            await self._spawn(child)
        except OSError as e:
            raise RunError(f"cannot start {spec.name}: {e}") from e
        self.children.append(child)
        child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{spec.name}")
        return child

    async def _spawn(self, child: Child) -> None:
        spec = child.spec
        extra = {}
        if spec.uid is not None:
            extra = {"user": spec.uid, "group": spec.gid, "extra_groups": []}
        child.proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops
            # the children in order (the databases last) instead of all of them at once.
            start_new_session=True,
            preexec_fn=die_with_parent(spec.stop_signal),
            **extra,
        )
        child.started_at = time.monotonic()
        child.pump = asyncio.create_task(self.pump(spec.name, child.proc.stdout))
        self.note(f"{spec.name} started (pid {child.proc.pid})")

    async def pump(self, name: str, stream: asyncio.StreamReader) -> None:
        """Print a stream line by line behind `name` until it ends."""
        pending = b""
        while chunk := await stream.read(READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.say(name, line.rstrip(b"\r").decode("utf-8", "replace"))
            if len(pending) > MAX_LINE_BYTES:
                self.say(name, pending.decode("utf-8", "replace"))
                pending = b""
        if pending:
            self.say(name, pending.decode("utf-8", "replace"))

    async def _watch(self, child: Child) -> None:
        delay = RESTART_DELAY_FIRST_S
        while True:
            returncode = await child.proc.wait()
            # Let the child's last words print before ours; a grandchild may hold the pipe open.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.pump), 1.0)
            self._kill_leftovers(child)
            if child.stop_requested.is_set() or not child.spec.restart:
                # Some servers (uvicorn) re-raise the stop signal on their way out: that is a clean stop.
                clean = returncode in (0, -child.spec.stop_signal)
                self.note(f"{child.spec.name} stopped" + ("" if clean else f" ({describe_exit(returncode)})"))
                child.returncode = returncode
                child.exited.set()
                return
            uptime = time.monotonic() - child.started_at
            if uptime >= STABLE_AFTER_S:
                delay = RESTART_DELAY_FIRST_S
            self.note(
                f"{child.spec.name} exited ({describe_exit(returncode)}) after {uptime:.0f}s; "
                f"restarting in {delay:.0f}s"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.stop_requested.wait(), delay)
            if child.stop_requested.is_set():
                child.returncode = returncode
                child.exited.set()
                return
            delay = min(delay * 2, RESTART_DELAY_MAX_S)
            child.restarts += 1
            try:
                await self._spawn(child)
            except OSError as e:
                self.note(f"{child.spec.name} cannot start: {e}")
                child.returncode = -1
                child.exited.set()
                return

    def _kill_leftovers(self, child: Child) -> None:
        # The child led its own process group; anything still in it is an orphan of this child.
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        self.note(f"killed processes {child.spec.name} left behind")

    async def stop(self, child: Child, timeout: float) -> int | None:
        """Send the child its stop signal, wait up to `timeout`, then kill it. Returns its exit code."""
        child.stop_requested.set()
        if child.running:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(child.spec.stop_signal)
            try:
                await asyncio.wait_for(asyncio.shield(child.exited.wait()), timeout)
            except TimeoutError:
                self.note(f"{child.spec.name} did not stop within {timeout:.0f}s; killing it")
                self.kill(child)
        await child.exited.wait()
        return child.returncode

    def kill(self, child: Child) -> None:
        if child.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    async def stop_all(self, children: list[Child], timeout: float) -> None:
        await asyncio.gather(*(self.stop(c, timeout) for c in children))
