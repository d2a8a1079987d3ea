"""What the HTTP receivers (splunk, journal) share: an aiohttp site on the driver's bind and
the token check. The HTTP push receiver predates this and keeps its own copy."""

import base64
import binascii

from aiohttp import web

from ingest.receivers.base import Receiver
from ingest.receivers.http_push import SHUTDOWN_GRACE_S, split_bind, token_ok
from ingest.receivers.listen import owned_by
from ingest.record import Record


def token_from_basic(header: str) -> str:
    """The password of `Authorization: Basic` (curl sends it for a URL like http://x:TOKEN@host)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


class HttpReceiver(Receiver):
    def __init__(self, driver, pipeline, max_body_bytes: int):
        super().__init__(driver, pipeline)
        self.max_body_bytes = max_body_bytes
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def own(self, record: Record) -> Record:
        return owned_by(record, self.driver)

    def token_ok(self, token: str) -> bool:
        return token_ok(self.driver, token)

    async def start(self) -> None:
        host, port = split_bind(self.driver.bind)
        # auto_decompress off: bodies are inflated by us, with a cap (gzip bombs).
        self._runner = web.AppRunner(
            self.make_app(), auto_decompress=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, reuse_port=self.reuse_port or None)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
