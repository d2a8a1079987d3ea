from django.urls import path

from search.consumers import LiveTailConsumer

websocket_urlpatterns = [
    path("ws/tail/", LiveTailConsumer.as_asgi()),
]
