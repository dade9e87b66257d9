"""What the rewards catalogue and redemptions area registers at start-up: the navigation entries, the
job that cancels redemptions whose points hold timed out, and a home dashboard card with the items
waiting to be shipped."""

from __future__ import annotations

from django.http import HttpRequest

from fedele.shared.web.dashboard import DashboardWidget


def _fulfilment_widget(request: HttpRequest) -> DashboardWidget | None:
    """Staff who can ship rewards see how many wait; nothing when the queue is empty."""
    from fedele.accounts.facade import actor_for
    from fedele.loyalty.selectors.rewards import fulfilment_queue

    user = request.user
    if not user.is_authenticated:
        return None
    actor = actor_for(user)
    if actor.is_portal_customer or not actor.can("loyalty.operate_loyalty"):
        return None
    waiting = fulfilment_queue().count()
    if not waiting:
        return None
    return DashboardWidget(
        template="loyalty/rewards/_dashboard_widget.html", context={"waiting": waiting}, order=65
    )


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    import fedele.loyalty.jobs.rewards  # noqa: F401  (registers the Celery task the scheduler names)
    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem
    from fedele.shared.web import dashboard

    navigation.register("loyalty", NavItem(_("Rewards"), "loyalty:rewards_list", "loyalty.view_loyalty"))
    navigation.register(
        "loyalty", NavItem(_("Redemptions"), "loyalty:rewards_redemptions", "loyalty.view_loyalty")
    )
    scheduler.register("loyalty-rewards-timeouts", "loyalty.rewards_reservations_cleanup", 60)
    dashboard.register("loyalty-rewards-fulfilment", _fulfilment_widget)
