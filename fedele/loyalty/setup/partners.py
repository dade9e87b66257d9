"""What the coalition partners and settlements area registers at start-up: the monthly statements
job, the back-office navigation entry and the partner portal's place in the global search."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from fedele.shared.search import SearchHit


def partners_for_search(request: HttpRequest, query: str, limit: int) -> list[SearchHit]:
    """Global search box: partners by name or code, for staff who may see loyalty."""
    from django.db.models import Q

    from fedele.accounts.facade import actor_for
    from fedele.loyalty.selectors.partners import is_staff_reader, partner_list

    if not request.user.is_authenticated:
        return []
    actor = actor_for(request.user)
    if not is_staff_reader(actor):
        return []
    found = partner_list(actor=actor).filter(Q(name__icontains=query) | Q(code__icontains=query))[:limit]
    return [
        SearchHit(
            source=str(_("Partners")),
            title=partner.name,
            subtitle=f"{partner.code} · {partner.programme.code}",
            url=reverse("loyalty:partners_detail", args=[partner.public_id]),
        )
        for partner in found
    ]


def partner_home(request: HttpRequest) -> str | None:
    """A loyalty partner's staff land on their partner portal, not on the customers list."""
    from fedele.accounts.facade import actor_for
    from fedele.loyalty.models import Partner

    user = request.user
    if not user.is_authenticated:
        return None
    actor = actor_for(user)
    if not actor.is_partner or actor.organisation_id is None:
        return None
    if not Partner.objects.filter(organisation_id=actor.organisation_id).exists():
        return None
    return reverse("partner:partners_dashboard")


def register() -> None:
    from fedele.loyalty.jobs import partners  # noqa: F401  (registers the Celery task name)
    from fedele.shared import navigation, scheduler, search
    from fedele.shared.web import dashboard

    dashboard.register_home("loyalty_partner", partner_home)

    navigation.register(
        "loyalty", navigation.NavItem(_("Partners"), "loyalty:partners_list", "loyalty.view_loyalty")
    )
    search.register("loyalty_partners", partners_for_search)
    scheduler.register("loyalty-settlements-month", "loyalty.settlements_generate_month", 3600)
