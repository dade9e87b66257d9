"""The partner portal under /partner/ (namespace "partner")."""

from __future__ import annotations

from fedele.loyalty.web import partners

app_name = "partner"

urlpatterns = [*partners.partner_urlpatterns]
