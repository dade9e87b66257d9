"""The field service block on the customer page: open work orders (next first) and the installed base."""

from __future__ import annotations

from django.http import HttpRequest

from fedele.accounts.facade import actor_for
from fedele.field_service import facade
from fedele.shared.web.dashboard import DashboardWidget

ORDERS = 5
EQUIPMENT = 8


def field_service_panel(request: HttpRequest, customer_public_id: str) -> DashboardWidget | None:
    if not request.user.is_authenticated:
        return None
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("field_service.view_field_service")):
        return None
    return DashboardWidget(
        "field_service/_customer_panel.html",
        {
            "customer_id": str(customer_public_id),
            "orders": facade.open_work_orders(str(customer_public_id), limit=ORDERS),
            "equipment": facade.customer_equipment(str(customer_public_id), limit=EQUIPMENT),
            "can_manage": actor.can("field_service.manage_field_service"),
        },
        order=30,
    )
