"""A real ingest process with one HTTP push driver per tenant, and a websocket client that
drives the real routed ASGI application (origin check, session/token auth, URL router)."""

import asyncio
import json
import uuid

import pytest
import requests
from channels.testing import WebsocketCommunicator

from accounts.models import ApiToken
from tests.base import make_driver


class Pusher:
    def __init__(self, urls: dict[str, tuple[str, str]]):
        self.urls = urls  # tenant slug -> (push url, driver token)

    def push_sync(self, tenant: str, lines: list[str], container: str = "web-1", **fields) -> None:
        url, token = self.urls[tenant]
        body = "\n".join(
            json.dumps(
                {"line": line, "container_id": f"{container}-id", "container_name": container, **fields}
            )
            for line in lines
        )
        response = requests.post(
            url, data=body.encode(), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert response.status_code == 200, response.text

    async def push(self, tenant: str, lines: list[str], container: str = "web-1", **fields) -> None:
        await asyncio.to_thread(self.push_sync, tenant, lines, container, **fields)


@pytest.fixture
def channel_prefix(settings):
    """A prefix of our own per test, so that no other run's fan-out reaches these sockets."""
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["prefix"] = f"{layers['default']['CONFIG']['prefix']}-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = layers
    return layers["default"]["CONFIG"]["prefix"]


@pytest.fixture
def pusher(actors, ingest, channel_prefix, unused_tcp_port_factory) -> Pusher:
    urls = {}
    drivers = []
    for tenant in (actors.tenant_a, actors.tenant_b):
        port = unused_tcp_port_factory()
        driver, token = make_driver("http", f"127.0.0.1:{port}", tenant=tenant)
        drivers.append(driver.id)
        urls[tenant.slug] = (f"http://127.0.0.1:{port}/api/v1/push", token)
    ingest(drivers, LOGSITE_BATCH_WAIT_MS=20)
    return Pusher(urls)


def token_for(user) -> str:
    return ApiToken.issue(user, "test")[1]


class TailClient:
    """WebsocketCommunicator plus the bookkeeping a tail client keeps."""

    def __init__(self, headers: list[tuple[bytes, bytes]]):
        from logsite.asgi import application

        self.comm = WebsocketCommunicator(application, "/ws/tail/", headers=headers)
        self.lines: list[list] = []
        self.containers: dict[str, dict] = {}
        self.messages: list[dict] = []

    @classmethod
    def with_token(cls, token: str) -> "TailClient":
        return cls([(b"origin", b"http://localhost"), (b"authorization", f"Bearer {token}".encode())])

    async def connect(self):
        return await self.comm.connect(timeout=10)

    async def subscribe(self, query: str = "", **options) -> list[dict]:
        """Subscribes and returns the messages up to and including {"type": "live"}."""
        await self.comm.send_json_to({"type": "subscribe", "query": query, **options})
        return await self.until(lambda m: m["type"] in ("live", "error"))

    async def receive(self, timeout: float = 10) -> dict:
        message = await self.comm.receive_json_from(timeout=timeout)
        self.messages.append(message)
        if message["type"] == "lines":
            self.containers.update(message["containers"])
            self.lines.extend(message["lines"])
        return message

    async def until(self, predicate, timeout: float = 20) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        got = []
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no matching message in {timeout}s; got {got[-5:]}")
            message = await self.receive(timeout=left)
            got.append(message)
            if predicate(message):
                return got

    async def until_lines(self, count: int, timeout: float = 20) -> list[str]:
        if len(self.lines) < count:
            await self.until(lambda _m: len(self.lines) >= count, timeout)
        return self.texts()

    def texts(self) -> list[str]:
        return [line[6] for line in self.lines]

    def last_ids(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for line in self.lines:
            last[str(line[0])] = max(last.get(str(line[0]), 0), line[1])
        return last

    async def close(self):
        await self.comm.disconnect()
