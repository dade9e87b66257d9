"""What the fraud and abuse guards area registers at start-up: the guard on every earn, the review
queue in the navigation and a home dashboard card with the open flags for reviewers."""

from __future__ import annotations

from django.http import HttpRequest

from fedele.shared.web.dashboard import DashboardWidget


def _open_flags_widget(request: HttpRequest) -> DashboardWidget | None:
    from fedele.accounts.facade import actor_for
    from fedele.loyalty.selectors.fraud import can_review, open_flag_count

    user = request.user
    if not user.is_authenticated or not can_review(actor_for(user)):
        return None
    return DashboardWidget(
        template="loyalty/fraud/_dashboard_widget.html", context={"open_flags": open_flag_count()}, order=60
    )


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.loyalty import hooks
    from fedele.loyalty.services.fraud import earn_guards_many, fraud_check_earn
    from fedele.shared import navigation
    from fedele.shared.navigation import NavItem
    from fedele.shared.web import dashboard

    hooks.on_earn_many(fraud_check_earn, earn_guards_many)
    navigation.register(
        "loyalty", NavItem(_("Fraud review"), "loyalty:fraud_queue", "loyalty.review_loyalty_fraud")
    )
    dashboard.register("loyalty-fraud", _open_flags_widget)
