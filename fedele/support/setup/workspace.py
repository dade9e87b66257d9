"""What the workspace area registers at start-up: navigation, the customer-page panel, notifications."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation
    from fedele.shared.web import panels
    from fedele.support.services import notify  # noqa: F401  (subscribes to support.ticket_created)
    from fedele.support.web.customer_panel import support_panel

    navigation.register("service", navigation.NavItem(_("Tickets"), "support:queue", "support.view_ticket"))
    navigation.register(
        "service", navigation.NavItem(_("New ticket"), "support:ticket_new", "support.work_tickets")
    )
    panels.register("support", support_panel)
