"""Pages of the surveys area (CSAT report, NPS campaigns)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
