"""The member self-service portal under /club/ (namespace "club")."""

from __future__ import annotations

from fedele.loyalty.web import club

app_name = "club"

urlpatterns = [*club.urlpatterns]
