"""The support block on the customer page: open tickets and the latest ones, with a "New ticket" link."""

from __future__ import annotations

from django.http import HttpRequest

from fedele.accounts.facade import actor_for
from fedele.customers.facade import customer_summary
from fedele.shared.web.dashboard import DashboardWidget
from fedele.support.web import workspace_common as common

RECENT = 5
OPEN_LIMIT = 10


def support_panel(request: HttpRequest, customer_public_id: str) -> DashboardWidget | None:
    from fedele.support.selectors.tickets import visible_tickets

    if not request.user.is_authenticated:
        return None
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("support.view_ticket")):
        return None
    customer = customer_summary(str(customer_public_id))
    if customer is None:
        return None
    tickets = (
        visible_tickets(actor).filter(customer_id=customer.customer_id).select_related("status", "assignee")
    )
    open_rows = list(tickets.filter(status_kind__in=common.UNSOLVED_KINDS).order_by("-id")[: OPEN_LIMIT + 1])
    recent = list(tickets.exclude(status_kind__in=common.UNSOLVED_KINDS).order_by("-id")[:RECENT])
    return DashboardWidget(
        "support/_customer_panel.html",
        {
            "customer_id": str(customer.public_id),
            "open": [
                (row, common.name_of(row.status), common.next_due(row)) for row in open_rows[:OPEN_LIMIT]
            ],
            "more_open": len(open_rows) > OPEN_LIMIT,
            "recent": [(row, common.name_of(row.status)) for row in recent],
            "can_create": actor.can("support.work_tickets"),
        },
        order=20,
    )
