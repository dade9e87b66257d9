"""What the routing area registers at start-up (scheduler jobs)."""

from __future__ import annotations

ROUTER_EVERY_SECONDS = 5


def register() -> None:
    from fedele.shared import scheduler

    scheduler.register("contact-center-router", "contact_center.route_pending", ROUTER_EVERY_SECONDS)
