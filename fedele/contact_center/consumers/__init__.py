"""Contact-center websocket routes, one list per area (mounted in config/routing.py)."""

from __future__ import annotations

from fedele.contact_center.consumers import desktop, messaging

websocket_urlpatterns = [*desktop.urlpatterns, *messaging.urlpatterns]
