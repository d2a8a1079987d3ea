"""Bearer API tokens on websockets (the CLI's `logsite tail`), next to the session login.

Runs inside AuthMiddlewareStack: a valid `Authorization: Bearer lsu_…` header replaces the
session user; anything else leaves the session's answer (often anonymous) in place, and the
consumer refuses anonymous sockets.
"""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from accounts.middleware import TOKEN_PREFIX, user_for_token


def bearer_token(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, clear = value.decode("latin-1").partition(" ")
            clear = clear.strip()
            if scheme.lower() == "bearer" and clear.startswith(TOKEN_PREFIX):
                return clear
    return None


class ApiTokenWebsocketMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        clear = bearer_token(scope)
        if clear is not None:
            user = await database_sync_to_async(user_for_token)(clear)
            if user is not None:
                scope = dict(scope, user=user)
        return await super().__call__(scope, receive, send)
