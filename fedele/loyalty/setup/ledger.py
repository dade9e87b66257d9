"""What the members, balances, ledger and reservations area registers at start-up: the "Members"
navigation entry, the periodic ledger jobs, members in the global search (by card number) and the
loyalty block of the customer 360 page."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from fedele.shared.search import SearchHit

# A loyalty programme's members are "soci" in Italian, a team's "membri": the context keeps them apart.
MEMBERS_CONTEXT = "loyalty programme"


def members_for_search(request: HttpRequest, query: str, limit: int) -> list[SearchHit]:
    """Global search box: members by card number (digits, spaces allowed), for staff readers."""
    from fedele.accounts.facade import actor_for
    from fedele.loyalty.selectors.members import is_staff_reader, member_queryset

    digits = query.replace(" ", "")
    if not request.user.is_authenticated or not digits.isdigit() or len(digits) < 4:
        return []
    actor = actor_for(request.user)
    if not is_staff_reader(actor):
        return []
    found = member_queryset(actor, query=digits).order_by("card_number")[:limit]
    return [
        SearchHit(
            source=str(_("Loyalty members")),
            title=member.card_number,
            subtitle=f"{member.customer.display_name} · {member.programme.code}",
            url=reverse("loyalty:members_detail", args=[member.public_id]),
        )
        for member in found
    ]


def register() -> None:
    from fedele.loyalty.jobs import ledger  # noqa: F401  (registers the Celery task names)
    from fedele.loyalty.web.members import customer_panel
    from fedele.shared import navigation, scheduler, search
    from fedele.shared.web import panels

    navigation.register(
        "loyalty",
        navigation.NavItem(
            pgettext_lazy(MEMBERS_CONTEXT, "Members"), "loyalty:members_list", "loyalty.view_loyalty"
        ),
    )
    scheduler.register("loyalty-lots-mature", "loyalty.lots_mature_due", 600)
    scheduler.register("loyalty-lots-expire", "loyalty.lots_expire_due", 3600)
    scheduler.register("loyalty-reservations-expire", "loyalty.reservations_expire_due", 60)
    scheduler.register("loyalty-expiry-notices", "loyalty.expiry_notices_send", 86400)
    search.register("loyalty_members", members_for_search)
    panels.register("loyalty", customer_panel)
