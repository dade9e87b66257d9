"""Knowledge base pages: agents under /support/kb/, customers under /help/kb/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
portal_urlpatterns: list[URLPattern | URLResolver] = []
