import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from accounts.ws_auth import ApiTokenWebsocketMiddleware  # noqa: E402
from search.routing import websocket_urlpatterns  # noqa: E402

# Serving /static/ from the app keeps `manage.py run` one process per role with no collectstatic
# step; the files are the admin's and our own few assets, so Django's file view is fast enough.
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.LOGSITE_SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(ApiTokenWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
