"""The five endpoints dockerd calls on the plugin socket.

dockerd POSTs JSON with Go field names and sends no Content-Type, so bodies are read raw. It
reads `Err` from every answer: empty means success.
"""

import asyncio
import hashlib
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from driver import readlogs
from driver.container import ContainerInfo, InfoError
from driver.options import OptionError, PluginEnv, parse_options
from driver.stream import Stream, StreamError

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"^[0-9A-Za-z_-]{1,128}$")


class Plugin:
    def __init__(self, state_dir: Path, plugin_env: PluginEnv) -> None:
        self.streams_dir = state_dir / "streams"
        self.env = plugin_env
        self.streams: dict[str, Stream] = {}
        # Streams whose FIFO is gone but whose buffer still has lines for Logsite.
        self.draining: list[Stream] = []
        self._read_session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/Plugin.Activate", self.activate)
        app.router.add_post("/LogDriver.Capabilities", self.capabilities)
        app.router.add_post("/LogDriver.StartLogging", self.start_logging)
        app.router.add_post("/LogDriver.StopLogging", self.stop_logging)
        app.router.add_post("/LogDriver.ReadLogs", self.read_logs)
        return app

    async def activate(self, request: web.Request) -> web.Response:
        return _answer({"Implements": ["LogDriver"]})

    async def capabilities(self, request: web.Request) -> web.Response:
        # dockerd decodes a `Cap` wrapper; a bare {"ReadLogs": true} would read as false.
        return _answer({"Cap": {"ReadLogs": True}, "Err": ""})

    async def start_logging(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            file = body.get("File")
            if not isinstance(file, str) or not file:
                return _error("StartLogging needs File")
            info = ContainerInfo.from_json(body.get("Info"))
            options = parse_options(info, self.env)
        except (InfoError, OptionError, ValueError) as exc:
            return _error(str(exc))
        if file in self.streams:
            return _error(f"already logging {file}")
        directory = self.streams_dir / _dir_name(file)
        stream = Stream(file, info, options, directory, self.env.retry_max_s)
        try:
            Stream.save_start(directory, _without_unused_env(body, {"TENANT_ID", "SERVICE_ID", *options.env}))
            await stream.attach()
        except (StreamError, OSError) as exc:
            shutil.rmtree(directory, ignore_errors=True)
            return _error(str(exc))
        self._track(stream)
        log.info("%s: logging started (%s)", stream.name, file)
        return _answer({"Err": ""})

    async def stop_logging(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
        except ValueError as exc:
            return _error(str(exc))
        stream = self.streams.get(body.get("File", ""))
        if stream is None:
            log.warning("StopLogging for unknown file %r", body.get("File"))
        else:
            # Answer now and keep reading: dockerd closes its end of the FIFO only after this
            # reply, so the lines still in the pipe arrive afterwards, up to EOF.
            stream.stop_requested = True
            log.info("%s: stop requested; draining the FIFO", stream.name)
        return _answer({"Err": ""})

    async def read_logs(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _body(request)
            info = ContainerInfo.from_json(body.get("Info"))
            options = parse_options(info, self.env)
            cfg = readlogs.ReadConfig.from_json(body.get("Config"))
        except (InfoError, OptionError, readlogs.ReadError, ValueError) as exc:
            return _error(str(exc))
        if self._read_session is None:
            self._read_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        reader = readlogs.LogsiteReader(self._read_session, options, info.container_id)
        return await readlogs.serve(
            request, reader, cfg, lambda: self.is_logging(info.container_id), self.env.follow_poll_s
        )

    def is_logging(self, container_id: str) -> bool:
        return any(s.info.container_id == container_id for s in self.streams.values())

    def _track(self, stream: Stream) -> None:
        self.streams[stream.file] = stream

        async def forget() -> None:
            await stream.done.wait()
            if self.streams.get(stream.file) is stream:
                del self.streams[stream.file]

        asyncio.get_running_loop().create_task(forget())

    def _track_draining(self, stream: Stream) -> None:
        self.draining.append(stream)

        async def forget() -> None:
            await stream.done.wait()
            self.draining.remove(stream)

        asyncio.get_running_loop().create_task(forget())

    async def resume(self) -> None:
        """Pick up streams a previous run of the plugin left: re-attach or just drain them."""
        if not self.streams_dir.is_dir():
            return
        for directory in sorted(self.streams_dir.iterdir()):
            try:
                body = json.loads((directory / "start.json").read_text())
                info = ContainerInfo.from_json(body["Info"])
                options = parse_options(info, self.env)
            except (OSError, ValueError, KeyError, InfoError, OptionError) as exc:
                log.error("cannot resume %s (%s); leaving it in place", directory, exc)
                continue
            stream = Stream(body["File"], info, options, directory, self.env.retry_max_s)
            try:
                await stream.attach()
                self._track(stream)
                log.info("%s: re-attached to %s", stream.name, stream.file)
            except StreamError:
                stream.drain_only()
                self._track_draining(stream)
                log.info(
                    "%s: FIFO gone; delivering %d buffered lines", stream.name, stream.sender.pending_lines
                )

    async def shutdown(self) -> None:
        await asyncio.gather(*(s.shutdown() for s in [*self.streams.values(), *self.draining]))
        if self._read_session is not None:
            await self._read_session.close()


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("request body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object")
    return body


def _without_unused_env(body: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """The container env holds its secrets; only the variables this stream uses go to disk."""
    info = dict(body["Info"])
    env = [item for item in info.get("ContainerEnv") or [] if isinstance(item, str)]
    info["ContainerEnv"] = [item for item in env if item.partition("=")[0] in keep]
    return {**body, "Info": info}


def _dir_name(file: str) -> str:
    name = Path(file).name
    return name if _SAFE_NAME.match(name) else hashlib.sha256(file.encode()).hexdigest()[:40]


def _answer(payload: dict[str, Any]) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(), content_type="application/vnd.docker.plugins.v1.2+json"
    )


def _error(message: str) -> web.Response:
    log.warning("answering dockerd with an error: %s", message)
    return _answer({"Err": message})
