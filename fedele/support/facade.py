"""The only surface other modules may import from support. Returns contracts, not ORM objects.

Tickets for other modules (customer 360, contact center) and knowledge-base suggestions."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils.translation import get_language

from fedele.support.contracts import ArticleSummary, TicketSummary
from fedele.support.models import BusinessCalendar, StatusKind, Ticket

__all__ = [
    "ArticleSummary",
    "TicketSummary",
    "add_note",
    "calendar_exists",
    "calendar_is_open",
    "create_ticket",
    "open_tickets_for_customer",
    "recent_tickets_for_customer",
    "suggest_articles",
    "ticket_summary",
]

OPEN_KINDS = (StatusKind.NEW, StatusKind.OPEN, StatusKind.PENDING)
MAX_LIMIT = 100


def _summary(ticket: Ticket) -> TicketSummary:
    from fedele.support.services.tickets import ticket_url

    assignee = ticket.assignee
    return TicketSummary(
        public_id=ticket.public_id,
        number=ticket.number,
        subject=ticket.subject,
        status=ticket.status.code,
        status_kind=ticket.status_kind,
        priority=ticket.priority,
        channel=ticket.channel,
        customer_public_id=ticket.customer.public_id if ticket.customer else None,
        requester_email=ticket.requester_email,
        assignee_name=(assignee.get_full_name().strip() or assignee.email) if assignee else "",
        team_name=ticket.team.name if ticket.team else "",
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolution_due_at=ticket.resolution_due_at,
        sla_breached=ticket.sla_breached,
        url=ticket_url(ticket),
        status_label=ticket.status.name_it if _is_italian() else ticket.status.name_en,
    )


def _is_italian() -> bool:
    return (get_language() or "en").startswith("it")


def _tickets() -> QuerySet[Ticket]:
    return Ticket.objects.select_related("status", "assignee", "team", "customer")


def _is_uuid(value: str) -> bool:
    from fedele.support.selectors.tickets import _is_uuid as check

    return check(str(value))


def ticket_summary(public_id: str) -> TicketSummary | None:
    if not _is_uuid(public_id):
        return None
    ticket = _tickets().filter(public_id=str(public_id).strip()).first()
    return _summary(ticket) if ticket else None


def _for_customer(customer_public_id: str) -> QuerySet[Ticket]:
    if not _is_uuid(customer_public_id):
        return Ticket.objects.none()
    return _tickets().filter(customer__public_id=str(customer_public_id).strip())


def open_tickets_for_customer(customer_public_id: str, limit: int = 10) -> list[TicketSummary]:
    """The customer's unsolved tickets, newest first."""
    limit = max(0, min(limit, MAX_LIMIT))
    rows = _for_customer(customer_public_id).filter(status_kind__in=OPEN_KINDS).order_by("-id")[:limit]
    return [_summary(ticket) for ticket in rows]


def recent_tickets_for_customer(customer_public_id: str, limit: int = 10) -> list[TicketSummary]:
    """The customer's tickets in any status, most recently updated first."""
    limit = max(0, min(limit, MAX_LIMIT))
    rows = _for_customer(customer_public_id).order_by("-updated_at", "-id")[:limit]
    return [_summary(ticket) for ticket in rows]


def create_ticket(
    *,
    subject: str,
    body: str,
    channel: str,
    customer_public_id: str | None = None,
    requester_email: str = "",
    requester_name: str = "",
    priority: str | None = None,
    ticket_type: str | None = None,
    external_reference: str = "",
) -> TicketSummary:
    """Open a ticket for another module (e.g. the contact center after a call). Idempotent on
    ``external_reference``: the same reference returns the ticket created the first time.
    Raises ValidationFailed like the ticket service."""
    from fedele.support.services.tickets import ticket_create

    ticket = ticket_create(
        actor=None,
        subject=subject,
        body=body,
        channel=channel,
        customer_public_id=customer_public_id,
        requester_email=requester_email,
        requester_name=requester_name,
        priority=priority,
        ticket_type=ticket_type,
        external_source="api" if external_reference else "",
        external_id=external_reference,
    )
    summary = ticket_summary(str(ticket.public_id))
    assert summary is not None
    return summary


def add_note(ticket_public_id: str, body: str, author_name: str) -> None:
    """An internal note on a ticket, written by another module (NotFound / ValidationFailed)."""
    from fedele.support.services.tickets import message_add

    message_add(
        actor=None,
        ticket=str(ticket_public_id),
        kind="note",
        body=body,
        author_name=author_name,
        send_email=False,
    )


def suggest_articles(
    query: str, *, language: str = "it", for_agents: bool = True, limit: int = 5
) -> list[ArticleSummary]:
    """Knowledge-base articles for a text (a chat message, a call's wrap-up notes...), best first.

    Agents also get internal articles; customers never do. An article missing in ``language`` comes
    in the fallback language (the hit's own ``language`` says which)."""
    from django.urls import reverse

    from fedele.support.models import Visibility
    from fedele.support.selectors.kb_search import kb_search

    hits = kb_search(query, language=language, include_internal=for_agents, limit=max(1, min(limit, 20)))
    return [
        ArticleSummary(
            public_id=hit.article.public_id,
            language=hit.article.language,
            title=hit.article.title,
            summary=hit.article.summary,
            internal=hit.article.visibility == Visibility.INTERNAL,
            url=reverse("support:kb_article", args=[hit.article.public_id])
            if for_agents
            else reverse("help:kb_article", args=[hit.article.language, hit.article.slug]),
            score=round(hit.score, 4),
        )
        for hit in hits
    ]


def _calendar(code: str) -> BusinessCalendar | None:
    """A business calendar by its name or its public id (the contact center's queues store one)."""
    value = str(code or "").strip()
    if not value:
        return None
    found = BusinessCalendar.objects.filter(name=value).first()
    if found is None and _is_uuid(value):
        found = BusinessCalendar.objects.filter(public_id=value).first()
    return found


def calendar_exists(code: str) -> bool:
    return _calendar(code) is not None


def calendar_is_open(code: str, at: datetime) -> bool:
    """Whether the business calendar (name or public id) is open at ``at`` (its own time zone,
    holidays and closed days); an empty code means always open. Unknown code → NotFound."""
    from fedele.shared.errors import NotFound
    from fedele.support.calendars import clock_for

    if not str(code or "").strip():
        return True
    calendar = _calendar(code)
    if calendar is None:
        raise NotFound(f"No business calendar {code!r}.", code="calendar_not_found")
    return clock_for(calendar).is_open(at)
