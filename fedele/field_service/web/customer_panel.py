"""The field service block on the customer page (filled in below)."""

from __future__ import annotations

from django.http import HttpRequest

from fedele.shared.web.dashboard import DashboardWidget


def field_service_panel(request: HttpRequest, customer_public_id: str) -> DashboardWidget | None:
    return None
