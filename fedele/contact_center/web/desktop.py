"""The desktop area's pages under /contact-center/: the agent desktop, wallboards, interval reports and
canned replies (one module each; this file gathers their routes)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from fedele.contact_center.web import desktop_agent, desktop_reports, desktop_settings, desktop_wallboard

urlpatterns: list[URLPattern | URLResolver] = [
    *desktop_agent.urlpatterns,
    *desktop_wallboard.urlpatterns,
    *desktop_reports.urlpatterns,
    *desktop_settings.urlpatterns,
]
