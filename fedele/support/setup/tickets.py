"""What the tickets area registers at start-up: the global search source for tickets."""

from __future__ import annotations

from django.http import HttpRequest

from fedele.shared.search import SearchHit


def search_tickets(request: HttpRequest, query: str, limit: int) -> list[SearchHit]:
    """Tickets by number, requester e-mail or full text, for users who may see tickets."""
    from fedele.accounts.facade import actor_for
    from fedele.support.selectors.tickets import ticket_search
    from fedele.support.services.tickets import ticket_url

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    actor = actor_for(user)
    if actor.is_portal_customer or not actor.can("support.view_ticket"):
        return []
    return [
        SearchHit(
            source="tickets",
            title=f"{ticket.number} · {ticket.subject}",
            subtitle=" · ".join(
                p for p in (ticket.status.code, ticket.requester_name or ticket.requester_email) if p
            ),
            url=ticket_url(ticket),
        )
        for ticket in ticket_search(actor=actor, query=query, limit=limit)
    ]


def register() -> None:
    from fedele.shared import search

    search.register("tickets", search_tickets)
