"""What the member self-service portal area registers at start-up: the portal customer's "Club" card
on the home dashboard (balance, tier, a way into /club/; an invitation to join when the customer is
not a member yet and a programme is open)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import get_language

from fedele.shared.web.dashboard import DashboardWidget


def club_widget(request: HttpRequest) -> DashboardWidget | None:
    from fedele.accounts.facade import actor_for
    from fedele.loyalty.selectors import club as selectors

    user: Any = request.user
    if not user.is_authenticated:
        return None
    actor = actor_for(user)
    customer = selectors.portal_customer(actor)
    if customer is None:
        return None
    language = (get_language() or "it")[:2]
    members = selectors.memberships(str(customer.public_id))
    member = selectors.choose_membership(members, request.session.get("club_programme"))
    if member is None:
        open_programmes = selectors.enrolment_programmes(str(customer.public_id))
        if not open_programmes:
            return None
        return DashboardWidget(
            template="loyalty/club/_widget.html",
            context={"member": None, "programme_name": open_programmes[0].name(language)},
            order=55,
        )
    return DashboardWidget(
        template="loyalty/club/_widget.html",
        context={
            "member": member,
            "programme_name": member.programme.name(language),
            "currency": member.programme.currency_name(language),
            "tier_name": member.tier.name(language) if member.tier is not None else "",
            "value_eur": selectors.points_value(member.programme, member.available),
        },
        order=55,
    )


def register() -> None:
    from fedele.shared.web import dashboard

    dashboard.register("loyalty-club", club_widget)
