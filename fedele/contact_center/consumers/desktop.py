"""The desktop area's websocket consumers (auth + groups only) and their routes."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
