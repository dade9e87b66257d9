"""URLconf for /help/ (namespace "help")."""

from __future__ import annotations

from fedele.support.web.urls import portal_urlpatterns

app_name = "help"
urlpatterns = portal_urlpatterns
