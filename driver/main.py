"""Entry point: serve the plugin API on its unix socket until SIGTERM.

Settings come from the plugin's environment (config.json defaults, `docker plugin set`):
LOGSITE_URL, LOGSITE_READ_URL, LOGSITE_TOKEN, LOGSITE_HOST, LOGSITE_RETRY_MAX_SECONDS,
LOGSITE_FOLLOW_POLL_SECONDS, LOGSITE_PLUGIN_SOCKET, LOGSITE_STATE_DIR, LOG_LEVEL.
"""

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from driver.options import PluginEnv
from driver.plugin_api import Plugin

DEFAULT_SOCKET = "/run/docker/plugins/logsite.sock"
DEFAULT_STATE_DIR = "/var/lib/logsite-plugin"


async def serve(socket_path: Path, state_dir: Path, plugin_env: PluginEnv) -> None:
    plugin = Plugin(state_dir, plugin_env)
    await plugin.resume()
    runner_kwargs, site_kwargs = _shutdown_kwargs()
    runner = web.AppRunner(plugin.app(), access_log=None, **runner_kwargs)
    await runner.setup()
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)  # left by a previous run; dockerd connects by path
    site = web.UnixSite(runner, str(socket_path), **site_kwargs)
    await site.start()
    logging.getLogger("driver").info("listening on %s", socket_path)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await plugin.shutdown()
    await runner.cleanup()


def _shutdown_kwargs() -> tuple[dict[str, Any], dict[str, Any]]:
    """A `docker logs -f` stream must not hold up plugin shutdown for long.

    aiohttp 3.9 moved shutdown_timeout from the site to the runner; unknown runner keywords
    reach every connection's handler and make it fail, so 3.8 (Debian 12's) gets it on the site.
    """
    if tuple(int(p) for p in aiohttp.__version__.split(".")[:2]) >= (3, 9):
        return {"handler_cancellation": False, "shutdown_timeout": 5}, {}
    return {}, {"shutdown_timeout": 5}


def main() -> None:
    logging.basicConfig(
        # dockerd logs a plugin's stderr at level error, its stdout at info.
        stream=sys.stdout,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(
        serve(
            Path(os.environ.get("LOGSITE_PLUGIN_SOCKET", DEFAULT_SOCKET)),
            Path(os.environ.get("LOGSITE_STATE_DIR", DEFAULT_STATE_DIR)),
            PluginEnv.from_environ(),
        )
    )
