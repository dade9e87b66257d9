"""What the routing area registers at start-up: the router's periodic job and the routing settings
entry of the "Contact center" navigation."""

from __future__ import annotations

ROUTER_EVERY_SECONDS = 5


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    scheduler.register("contact-center-router", "contact_center.route_pending", ROUTER_EVERY_SECONDS)
    navigation.register(
        "contact_center",
        NavItem(
            _("Routing settings"), "contact_center:routing_settings", "contact_center.manage_contact_center"
        ),
    )
