from __future__ import annotations

from django.urls import path

from fedele.contact_center.consumers import websocket_urlpatterns as contact_center_websockets
from fedele.shared.consumers import NotificationConsumer
from fedele.support.consumers import QueueConsumer, TicketPresenceConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/support/tickets/<uuid:public_id>/", TicketPresenceConsumer.as_asgi()),
    path("ws/support/queue/", QueueConsumer.as_asgi()),
    *contact_center_websockets,
]
