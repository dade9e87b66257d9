from __future__ import annotations

from django.urls import path

from fedele.shared.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]
